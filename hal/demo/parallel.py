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
from .nn import MLP
from .outer import Outer, OuterOptimizer, flatten, views
from .placement import Placer, Tensor
from .report import Progress, size, table
from .train import REFERENCE, TOLERANCE, Config, DeviceResult, agreement, train_on


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
    max_loss_diff: float | None = None
    agrees: bool | None = None

    @property
    def label(self) -> str:
        if self.sync_every is None or self.outer is None:
            return "gradients every step"
        return f"{self.outer.label} every {self.sync_every} steps"


@dataclass(frozen=True)
class ParallelDemo:
    config: Config
    reference: DeviceResult
    tolerance: float
    runs: list[ParallelResult] = field(default_factory=list)
    total_wall_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def train_parallel(devices: Sequence[hal.Device], data: Digits, config: Config, sync_every: int | None = None,
                   fallback: hal.Device | None = None, stream: TextIO | None = None,
                   outer: Outer | None = None) -> ParallelResult:
    """Train one replica per device on shards of every batch (see the module's docstring);
    ``outer`` (plain averaging by default) is the outer step of a run with ``sync_every``."""
    n = len(devices)
    placers = [Placer(d, fallback) for d in devices]
    replicas = [MLP(p, (data.features, *config.hidden, 10), config.seed) for p in placers]
    if sync_every is not None:
        outer = outer or Outer()
        optimizer = OuterOptimizer(outer, replicas, devices)
    else:
        outer = None
    steps_per_epoch = data.steps_per_epoch(config.batch)
    bar = Progress(f"{n} devices", steps_per_epoch * config.epochs, stream)
    losses: list[float] = []
    with hal.profile() as prof:
        start = time.perf_counter()
        for epoch in range(config.epochs):
            pending: list[list[Tensor]] = []
            for i, (x, t) in enumerate(data.batches(config.batch, epoch, config.seed)):
                shards = [(p.tensor(x[s]), p.tensor(t[s])) for p, s in zip(placers, np.array_split(np.arange(len(x)), n))]
                if sync_every is None:
                    results = [m.gradients(xs, ts, scale=1.0 / len(x)) for m, (xs, ts) in zip(replicas, shards)]
                    summed = _all_reduce([grads for _, grads in results], devices)
                    for m, grads in zip(replicas, summed):
                        m.update(grads, config.lr, config.momentum)
                    pending.append([step_losses for step_losses, _ in results])
                else:
                    pending.append([m.train_step(xs, ts, config.lr, config.momentum).losses
                                    for m, (xs, ts) in zip(replicas, shards)])
                    if (epoch * steps_per_epoch + i + 1) % sync_every == 0:
                        optimizer.step(replicas)
                bar.update(epoch * steps_per_epoch + i + 1)
            losses += [float(np.concatenate([s.numpy() for s in step]).mean()) for step in pending]
            bar.update(bar.done, f"loss {losses[-1]:.4f}")
        if sync_every is not None and (config.epochs * steps_per_epoch) % sync_every:
            optimizer.step(replicas)  # evaluate the global model
        accuracy = float(np.mean(replicas[0].predict(placers[0].tensor(data.x_test)) == data.y_test))
        wall = time.perf_counter() - start
    bar.close(f"loss {losses[-1]:.4f} acc {accuracy:.3f}")
    records = [r for r in prof.records if r.kind == "collective"]
    return ParallelResult([d.spec for d in devices], sync_every, outer, accuracy, losses[-1], losses, wall,
                          len(records) // n, [sum(r.nbytes for r in records if r.device == d.spec) for d in devices])


def _all_reduce(per_replica: list[list[Tensor]], devices: Sequence[hal.Device]) -> list[list[Tensor]]:
    """Sum each tensor over the replicas: one flat all-reduce instead of one per tensor."""
    flats = [flatten(tensors, dev) for tensors, dev in zip(per_replica, devices)]
    hal.collective.all_reduce(flats)
    return [views(flat, tensors) for flat, tensors in zip(flats, per_replica)]


def run_parallel(specs: Sequence[str], config: Config, sync_every: Sequence[int] = (), fallback: str = "cpu",
                 stream: TextIO | None = None, outers: Sequence[Outer] = (Outer(),)) -> ParallelDemo:
    """The one-device reference, then data-parallel training on ``specs`` with gradients
    all-reduced every step (checked against the reference), then once per ``sync_every`` and
    outer step."""
    start = time.perf_counter()
    devices = [hal.device(s) for s in specs]
    if len({d.spec for d in devices}) != len(devices):
        raise hal.InvalidArgumentError(f"--data-parallel needs distinct devices, one replica each; got {list(specs)}")
    for d in devices:
        d.info  # noqa: B018 - opens it: bring-up (a Ray cluster for remote devices) is not training time
    fallback_dev = hal.device(fallback)
    data = load_digits(seed=config.seed, limit=config.limit)
    reference = train_on(hal.device(REFERENCE), data, config, fallback_dev, stream)
    grads = train_parallel(devices, data, config, None, fallback_dev, stream)
    diff, ok = agreement(grads.losses, reference.losses)
    runs = [replace(grads, max_loss_diff=diff, agrees=ok)]
    runs += [train_parallel(devices, data, config, h, fallback_dev, stream, outer) for h in sync_every
             for outer in outers]
    return ParallelDemo(config, reference, TOLERANCE, runs, time.perf_counter() - start)


def summary(result: ParallelDemo) -> str:
    ref = result.reference
    rows = [[f"{ref.device} alone", "-", f"{ref.accuracy:.3f}", f"{ref.final_loss:.4f}", f"{ref.wall_s:.2f}", "-",
             "-", "reference"]]
    for r in result.runs:
        check = "-" if r.agrees is None else f"{'yes' if r.agrees else 'NO'} ({r.max_loss_diff:.1e})"
        rows.append([r.label, ",".join(r.devices), f"{r.accuracy:.3f}", f"{r.final_loss:.4f}", f"{r.wall_s:.2f}",
                     str(r.collectives), " / ".join(size(b) for b in r.moved_bytes), check])
    out = [table(["run", "devices", "test acc", "final loss", "wall s", "collectives", "moved per device",
                  f"matches {ref.device}"], rows)]
    first = result.runs[0]
    verdict = "matches" if first.agrees else "DOES NOT match"
    out.append(f"\ndata-parallel training with gradients all-reduced every step {verdict} the {ref.device} loss "
               f"curve within {result.tolerance:g} at every step (same global batch {result.config.batch}); "
               f"total wall time {result.total_wall_s:.1f} s")
    return "\n".join(out)
