"""``hal demo --data-parallel``: one replica of the model per device, every batch split among them.

Replicas start from the same host-initialised weights. Two ways keep them in step:

* gradients (the default): each replica computes the gradient of its shard, scaled by
  1 / the global batch, and one ``hal.collective.all_reduce`` per step sums them (every
  parameter's gradient in one flat array), so every replica holds the global batch's
  gradient and applies the same update. The replicas stay identical, and with the same
  global batch the loss curve matches one device's within the demo's tolerance (the order
  of the sums is all that differs).
* ``--sync-every H`` (local SGD): each replica trains on its shard alone and every H steps an
  outer step (:mod:`.outer`) combines them: plain averaging, or DiLoCo's Nesterov step on the
  averaged delta; the deltas may travel compressed (``--compress int8``). About 1/H of the
  traffic (and a quarter of it again at int8), what weakly linked machines need.

Bytes moved per device come from the collectives' profile records.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, TextIO

import numpy as np

import hal

from .data import Digits, load_digits
from .elastic import Churn, Event, LocalSGD
from .nn import MLP
from .outer import Outer, flatten, views
from .placement import Placer, Tensor
from .report import Progress, size, table
from .train import REFERENCE, TOLERANCE, Config, DeviceResult, agreement, test_accuracy, train_on


@dataclass(frozen=True)
class ParallelResult:
    """One data-parallel run; ``sync_every`` None: gradients all-reduced every step (``outer``
    None), else an outer step every ``sync_every`` steps."""

    devices: list[str]
    sync_every: int | None
    outer: Outer | None
    accuracy: float
    final_loss: float
    losses: list[float]
    wall_s: float
    collectives: int
    moved_bytes: list[int]
    """Bytes each device sent and received in collectives."""
    collective_s: list[float]
    """Wall seconds each device spent in collectives (over an emulated link: its waits too)."""
    events: list[Event] = field(default_factory=list)
    churn: str | None = None
    """The membership changes the run was asked to make."""
    curve: list[tuple[int, float, float]] = field(default_factory=list)
    """(step, seconds into the run, test accuracy) as training went."""

    def seconds_to(self, accuracy: float) -> float | None:
        """Seconds into the run when the test accuracy first reached ``accuracy`` (None: never)."""
        return next((s for _, s, acc in self.curve if acc >= accuracy), None)
    max_loss_diff: float | None = None
    agrees: bool | None = None

    @property
    def label(self) -> str:
        if self.sync_every is None or self.outer is None:
            return "gradients every step"
        return f"{self.outer.label} every {self.sync_every} steps" + (f", {self.churn}" if self.churn else "")


@dataclass(frozen=True)
class ParallelDemo:
    config: Config
    reference: DeviceResult
    tolerance: float
    runs: list[ParallelResult] = field(default_factory=list)
    total_wall_s: float = 0.0
    link: str | None = None
    """The emulated link every remote worker sends over, if any."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def train_parallel(devices: Sequence[hal.Device], data: Digits, config: Config, sync_every: int | None = None,
                   fallback: hal.Device | None = None, stream: TextIO | None = None,
                   outer: Outer | None = None, churn: Churn | None = None,
                   evaluate_every: int | None = None) -> ParallelResult:
    """Train one replica per device on shards of every batch (see the module's docstring);
    ``outer`` (plain averaging by default) is the outer step of a run with ``sync_every``, in
    which replicas may die or join (``churn``, :mod:`.elastic`). Test accuracy is measured after
    every outer step, or every ``evaluate_every`` steps (default: each epoch) without them."""
    with hal.profile() as prof:
        if sync_every is None:
            losses, curve, wall = _every_step(list(devices), data, config, fallback, stream, evaluate_every)
            specs, events, accuracy = [d.spec for d in devices], [], curve[-1][2]
        else:
            outer = outer or Outer()
            run = LocalSGD(list(devices), data, config, sync_every, outer, fallback, churn).run(stream)
            losses, accuracy, wall, specs, events = run.losses, run.accuracy, run.wall_s, run.devices, run.events
            curve = run.curve
    records = [r for r in prof.records if r.kind == "collective"]
    return ParallelResult(specs, sync_every, outer if sync_every is not None else None, accuracy, losses[-1],
                          losses, wall, len({(r.name, r.start_s) for r in records}),
                          [sum(r.nbytes for r in records if r.device == s) for s in specs],
                          [sum(r.wall_s for r in records if r.device == s) for s in specs], events,
                          churn.describe() if churn is not None and sync_every is not None else None, curve)


def _every_step(devices: list[hal.Device], data: Digits, config: Config, fallback: hal.Device | None,
                stream: TextIO | None, evaluate_every: int | None) -> tuple[list[float], list[tuple[int, float, float]],
                                                                          float]:
    """Gradients all-reduced every step: losses, the accuracy curve, wall seconds."""
    n = len(devices)
    placers = [Placer(d, fallback) for d in devices]
    replicas = [MLP(p, (data.features, *config.hidden, 10), config.seed) for p in placers]
    steps_per_epoch = data.steps_per_epoch(config.batch)
    bar = Progress(f"{n} devices", steps_per_epoch * config.epochs, stream)
    losses: list[float] = []
    curve: list[tuple[int, float, float]] = []
    every, total = evaluate_every or steps_per_epoch, steps_per_epoch * config.epochs
    start = time.perf_counter()
    for epoch in range(config.epochs):
        pending: list[list[Tensor]] = []
        for i, (x, t) in enumerate(data.batches(config.batch, epoch, config.seed)):
            shards = [(p.tensor(x[s]), p.tensor(t[s])) for p, s in zip(placers, np.array_split(np.arange(len(x)), n))]
            results = [m.gradients(xs, ts, scale=1.0 / len(x)) for m, (xs, ts) in zip(replicas, shards)]
            summed = _all_reduce([grads for _, grads in results], devices)
            for m, grads in zip(replicas, summed):
                m.update(grads, config.lr, config.momentum)
            pending.append([step_losses for step_losses, _ in results])
            step = epoch * steps_per_epoch + i + 1
            if step % every == 0 or step == total:
                curve.append((step, time.perf_counter() - start, test_accuracy(replicas[0], placers[0], data)))
            bar.update(step)
        losses += [float(np.concatenate([s.numpy() for s in read]).mean()) for read in pending]
        bar.update(bar.done, f"loss {losses[-1]:.4f}")
    wall = time.perf_counter() - start
    bar.close(f"loss {losses[-1]:.4f} acc {curve[-1][2]:.3f}")
    return losses, curve, wall


def _all_reduce(per_replica: list[list[Tensor]], devices: Sequence[hal.Device]) -> list[list[Tensor]]:
    """Sum each tensor over the replicas: one flat all-reduce instead of one per tensor."""
    flats = [flatten(tensors, dev) for tensors, dev in zip(per_replica, devices)]
    hal.collective.all_reduce(flats)
    return [views(flat, tensors) for flat, tensors in zip(flats, per_replica)]


def run_parallel(specs: Sequence[str], config: Config, sync_every: Sequence[int] = (), fallback: str = "cpu",
                 stream: TextIO | None = None, outers: Sequence[Outer] = (Outer(),), link: str | None = None,
                 churn: Churn | None = None) -> ParallelDemo:
    """The one-device reference, then data-parallel training on ``specs`` with gradients
    all-reduced every step (checked against the reference), then once per ``sync_every`` and
    outer step (with ``churn``'s kills and joins). ``link`` (say "100mbit/50ms") puts every
    device on an emulated link: they must be remote."""
    start = time.perf_counter()
    devices = [open_device(s, link) for s in specs]
    if len({d.spec for d in devices}) != len(devices):
        raise hal.InvalidArgumentError(f"--data-parallel needs distinct devices, one replica each; got {list(specs)}")
    for d in devices:
        d.info  # noqa: B018 - opens it: bring-up (a Ray cluster for remote devices) is not training time
    if churn is not None and churn.join is not None:
        churn.join.info  # noqa: B018
    fallback_dev = hal.device(fallback)
    data = load_digits(seed=config.seed, limit=config.limit)
    reference = train_on(hal.device(REFERENCE), data, config, fallback_dev, stream)
    grads = train_parallel(devices, data, config, None, fallback_dev, stream,
                           evaluate_every=min(sync_every) if sync_every else None)
    diff, ok = agreement(grads.losses, reference.losses)
    runs = [replace(grads, max_loss_diff=diff, agrees=ok)]
    runs += [train_parallel(devices, data, config, h, fallback_dev, stream, outer) for h in sync_every
             for outer in outers]
    if churn is not None and sync_every:  # last: a killed worker stays dead
        runs.append(train_parallel(devices, data, config, sync_every[-1], fallback_dev, stream, outers[-1], churn))
    return ParallelDemo(config, reference, TOLERANCE, runs, time.perf_counter() - start, link)


def open_device(spec: str, link: str | None) -> hal.Device:
    """The device ``spec``, on an emulated ``link`` if one is given (remote devices only)."""
    if link is None:
        return hal.device(spec)
    if spec.partition(":")[0] != "remote":
        raise hal.InvalidArgumentError(f"--link emulates the network of remote devices; {spec!r} is local. Name "
                                       "remote devices (--data-parallel remote:0,remote:1) or drop --link")
    return hal.device(spec, link=link)


def summary(result: ParallelDemo) -> str:
    ref = result.reference
    rows = [[f"{ref.device} alone", "-", f"{ref.accuracy:.3f}", f"{ref.final_loss:.4f}", f"{ref.wall_s:.2f}", "-",
             "-", "-", "-", "-", "reference"]]
    base, goal = max(result.runs[0].moved_bytes), result.runs[0].accuracy
    for r in result.runs:
        check = "-" if r.agrees is None else f"{'yes' if r.agrees else 'NO'} ({r.max_loss_diff:.1e})"
        most, reached = max(r.moved_bytes), r.seconds_to(goal)
        rows.append([r.label, ",".join(d.partition("(")[0] for d in r.devices), f"{r.accuracy:.3f}", f"{r.final_loss:.4f}", f"{r.wall_s:.2f}",
                     f"{max(r.collective_s):.2f}", "never" if reached is None else f"{reached:.2f}",
                     str(r.collectives), size(most),
                     f"{base / most:.0f}x fewer" if r is not result.runs[0] and most else "-", check])
    out = [table(["run", "devices", "test acc", "final loss", "wall s", "in collectives s", f"s to acc {goal:.3f}",
                  "collectives", "moved per device (most)", "bytes", f"matches {ref.device}"], rows)]
    for r in result.runs:
        for e in r.events:
            out.append(f"{r.label}: step {e.step} ({e.wall_s:.1f} s): {e.device} {e.kind}: {e.detail}")
    first = result.runs[0]
    verdict = "matches" if first.agrees else "DOES NOT match"
    out.append(f"\ndata-parallel training with gradients all-reduced every step {verdict} the {ref.device} loss "
               f"curve within {result.tolerance:g} at every step (same global batch {result.config.batch}); "
               f"total wall time {result.total_wall_s:.1f} s")
    if result.link:
        out.append(f"every worker sends over an EMULATED {result.link} link (a token bucket in the worker, see "
                   "plugins/hal_remote/README.md): wall and collective times include its waits")
    return "\n".join(out)
