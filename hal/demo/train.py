"""``hal demo``: train the MLP on every device, check that they agree, report what it cost.

Each device trains from the same host-initialised weights on the same batches;
the CPU device's loss curve is the reference that every other device's curve
must match within :data:`TOLERANCE` (a result computed on one device checked on
another). Costs come from ``hal.profile()``: launches and host<->device bytes
per device, and simulated device time (the sum of the modelled command times).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

import numpy as np

import hal

from .data import Digits, load_digits
from .nn import MLP
from .placement import Placer
from .report import Progress, size, table

TOLERANCE = 1e-4
"""Largest allowed |loss - reference loss| at any step. float32 results differ in their last
bits between devices (summation order, fused multiply-add); SGD carries the differences
forward; over this run they stay near 1e-6 on the mean batch loss (~2.3 at
the start). 1e-4 leaves room for longer runs and still catches any wrong gradient, which moves
the curve by far more within a few steps."""
REFERENCE = "cpu"
LAUNCH_KINDS = frozenset({"kernel", "op", "native"})


@dataclass(frozen=True)
class Config:
    epochs: int = 10
    batch: int = 128
    hidden: tuple[int, ...] = (32,)
    lr: float = 0.1
    momentum: float = 0.9
    seed: int = 0
    limit: int | None = None
    """Use only this many samples (tests)."""


@dataclass(frozen=True)
class DeviceResult:
    """One device's run. ``device_s`` is simulated seconds (an analytic estimate; ``model`` names the
    preset) and None on a real device; bytes and launches count what ran on this device itself."""

    device: str
    name: str
    model: str | None
    accuracy: float
    final_loss: float
    losses: list[float]
    wall_s: float
    device_s: float | None
    h2d_bytes: int
    d2h_bytes: int
    launches: int
    fallback_launches: int
    moves: int
    moved_bytes: int
    move_wall_s: float
    placement: dict[str, str]
    max_loss_diff: float | None = None
    agrees: bool | None = None


@dataclass(frozen=True)
class DemoResult:
    config: Config
    reference: str
    tolerance: float
    results: list[DeviceResult] = field(default_factory=list)
    total_wall_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def train_on(device: hal.Device, data: Digits, config: Config, fallback: hal.Device | None = None,
             stream: TextIO | None = None) -> DeviceResult:
    """Train from scratch on ``device``; operators it refuses run on ``fallback`` (the CPU)."""
    placer = Placer(device, fallback)
    steps_per_epoch = data.steps_per_epoch(config.batch)
    bar = Progress(device.spec, steps_per_epoch * config.epochs, stream)
    losses: list[float] = []
    with hal.profile() as prof:
        start = time.perf_counter()
        model = MLP(placer, (data.features, *config.hidden, 10), config.seed)
        for epoch in range(config.epochs):
            pending = []
            for i, (x, t) in enumerate(data.batches(config.batch, epoch, config.seed)):
                pending.append(model.train_step(placer.tensor(x), placer.tensor(t), config.lr, config.momentum))
                bar.update(epoch * steps_per_epoch + i + 1)
            losses += [float(s.losses.numpy().mean()) for s in pending]  # read once per epoch: no stalls
            bar.update(bar.done, f"loss {losses[-1]:.4f}")
        accuracy = float(np.mean(model.predict(placer.tensor(data.x_test)) == data.y_test))
        wall = time.perf_counter() - start
    bar.close(f"loss {losses[-1]:.4f} acc {accuracy:.3f}")
    mine = [r for r in prof.records if r.device == device.spec]
    fallback_spec = placer.fallback.spec
    return DeviceResult(
        device=device.spec, name=device.info.name, model=device.info.model, accuracy=accuracy,
        final_loss=losses[-1], losses=losses, wall_s=wall,
        device_s=sum(r.device_s for r in mine) if device.info.simulated else None,
        h2d_bytes=sum(r.nbytes for r in mine if r.kind == "copy_h2d"),
        d2h_bytes=sum(r.nbytes for r in mine if r.kind == "copy_d2h"),
        launches=sum(r.kind in LAUNCH_KINDS for r in mine),
        fallback_launches=sum(r.kind in LAUNCH_KINDS and r.device == fallback_spec
                              for r in prof.records) if fallback_spec != device.spec else 0,
        moves=placer.moves.count, moved_bytes=placer.moves.nbytes, move_wall_s=placer.moves.wall_s,
        placement={p.op: f"{p.device} ({p.impl})" for p in placer.placements.values()})


def test_accuracy(model: MLP, placer: Placer, data: Digits) -> float:
    """The model's accuracy on the test split (a host read: it waits for the model's work)."""
    return float(np.mean(model.predict(placer.tensor(data.x_test)) == data.y_test))


def agreement(losses: Sequence[float], reference: Sequence[float], tolerance: float = TOLERANCE) -> tuple[float, bool]:
    """Largest per-step |loss - reference| and whether it is within ``tolerance`` (curves of
    different lengths never agree)."""
    if len(losses) != len(reference):
        return float("inf"), False
    diff = float(np.max(np.abs(np.asarray(losses) - np.asarray(reference)))) if losses else 0.0
    return diff, diff <= tolerance


def run_demo(specs: Sequence[str] | None, config: Config, fallback: str = "cpu",
             stream: TextIO | None = None) -> DemoResult:
    """Train on each device (every usable one by default); the CPU reference always runs first."""
    start = time.perf_counter()
    devices = [hal.device(s) for s in specs] if specs else hal.devices()
    reference = hal.device(REFERENCE)
    devices = [reference] + [d for d in devices if d is not reference]
    fallback_dev = hal.device(fallback)
    for d in devices:
        d.info  # noqa: B018 - opens it: bring-up (a Ray cluster for remote devices) is not training time
    data = load_digits(seed=config.seed, limit=config.limit)
    results = [train_on(d, data, config, fallback_dev, stream) for d in devices]
    ref = results[0].losses
    checked = [results[0]]
    for r in results[1:]:
        diff, ok = agreement(r.losses, ref)
        checked.append(DeviceResult(**{**asdict(r), "max_loss_diff": diff, "agrees": ok}))
    return DemoResult(config, reference.spec, TOLERANCE, checked, time.perf_counter() - start)


# ---------------------------------------------------------------- report
def summary(result: DemoResult) -> str:
    rows = []
    for r in result.results:
        check = "reference" if r.agrees is None else f"{'yes' if r.agrees else 'NO'} ({r.max_loss_diff:.1e})"
        rows.append([r.device, r.name, f"{r.accuracy:.3f}", f"{r.final_loss:.4f}", f"{r.wall_s:.2f}",
                     f"{r.device_s * 1e3:.2f}" if r.device_s is not None else "-",
                     f"{size(r.h2d_bytes)} / {size(r.d2h_bytes)}",
                     f"{r.launches}" + (f" + {r.fallback_launches}" if r.fallback_launches else ""),
                     f"{r.moves} ({size(r.moved_bytes)}, {r.move_wall_s:.2f} s)" if r.moves else "-", check])
    out = [table(["device", "name", "test acc", "final loss", "wall s", "sim ms*", "H2D / D2H", "launches",
                  "moves to fallback", f"matches {result.reference}"], rows)]
    for r in result.results:
        elsewhere = {op: where for op, where in r.placement.items() if not where.startswith(r.device + " ")}
        if elsewhere:
            out.append(f"\nplacement on {r.device}: " + "; ".join(f"{op} -> {w}" for op, w in elsewhere.items())
                       + f"; everything else on {r.device}")
    models = [f"  {r.device}: {r.model}" for r in result.results if r.device_s is not None]
    if models:
        out.append("\n* simulated device time: analytic estimates, sum of modelled command times\n"
                   + "\n".join(models))
    ok = all(r.agrees is not False for r in result.results)
    verdict = ("all devices match" if ok else "MISMATCH:") + f" the {result.reference} loss curve within " \
              f"{result.tolerance:g} at every step"
    bad = [r.device for r in result.results if r.agrees is False]
    out.append(f"\n{verdict}{' ' + ', '.join(bad) if bad else ''}; total wall time {result.total_wall_s:.1f} s")
    return "\n".join(out)
