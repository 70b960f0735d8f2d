"""The outer step of local-SGD training: what replicas that trained apart for H steps agree on.

Every replica keeps a copy of the *global* parameters (the anchor, identical everywhere) and
trains its own copy of them from there. Every H steps each replica's delta ``anchor - params``
is summed over the replicas with one ``hal.collective.all_reduce`` (compressed, with error
feedback, when asked) and divided by their number: the outer gradient. Then, on every replica:

* ``average``: ``anchor -= delta`` -- the replicas' mean, plain model averaging;
* ``diloco``: Nesterov momentum on the outer gradient (DiLoCo, arXiv 2311.08105, section 2):
  ``v = mu * v + delta; anchor -= lr * (delta + mu * v)``, with the paper's lr 0.7, mu 0.9.

Every replica receives the same bits from the all-reduce and runs the same operations, so the
anchors stay identical without a broadcast; the replicas restart from a copy of the anchor.
Only the deltas move: one parameter-sized all-reduce per outer step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import hal

from .nn import F32, MLP
from .placement import Tensor

Method = Literal["average", "diloco"]
METHODS: tuple[Method, ...] = ("average", "diloco")


@dataclass(frozen=True)
class Outer:
    """How the outer step combines the replicas; ``compress`` is ``hal.collective``'s ("int8",
    "int4") or None for full precision."""

    method: Method = "average"
    lr: float = 0.7
    momentum: float = 0.9
    compress: str | None = None

    @property
    def label(self) -> str:
        name = "parameters averaged" if self.method == "average" else f"DiLoCo (lr {self.lr:g}, Nesterov {self.momentum:g})"
        return name + (f", {self.compress} deltas" if self.compress else "")


class OuterOptimizer:
    """The anchors, outer momentum and compression residuals of a set of replicas, one flat
    array of each per replica's device."""

    def __init__(self, outer: Outer, replicas: Sequence[MLP], devices: Sequence[hal.Device]) -> None:
        if outer.method not in METHODS:
            raise hal.InvalidArgumentError(f"outer method must be one of {', '.join(METHODS)}, got {outer.method!r}")
        if not (outer.lr > 0 and 0 <= outer.momentum < 1):
            raise hal.InvalidArgumentError(f"the outer step needs lr > 0 and 0 <= momentum < 1, got lr {outer.lr}, "
                                           f"momentum {outer.momentum}")
        self.outer = outer
        self.devices = list(devices)
        self.anchors = [flatten(m.params, d) for m, d in zip(replicas, devices)]
        size = self.anchors[0].size
        self.velocity = [d.zeros((size,), F32) for d in devices] if outer.method == "diloco" else None
        self.residuals = [d.zeros((size,), F32) for d in devices] if outer.compress else None

    def step(self, replicas: Sequence[MLP]) -> list[int]:
        """One outer step: every replica leaves it holding the new global parameters. A device
        fault before the update (the all-reduce) is raised with every anchor untouched; the
        replicas whose device faults during their own update are returned, to be dropped."""
        deltas = [flatten(m.params, d) for m, d in zip(replicas, self.devices)]
        for anchor, delta in zip(self.anchors, deltas):
            hal.ops.sub(anchor, delta, out=delta)
        hal.collective.all_reduce(deltas, compress=self.outer.compress, residuals=self.residuals)
        missed = []
        for i, (m, delta) in enumerate(zip(replicas, deltas)):
            try:
                self._update(i, m, delta, len(replicas))
            except hal.DeviceFault:
                missed.append(i)
        return missed

    def _update(self, i: int, model: MLP, delta: hal.Array, n: int) -> None:
        dev, anchor = self.devices[i], self.anchors[i]
        hal.ops.mul(delta, 1.0 / n, out=delta)
        if self.velocity is not None:
            v, mu = self.velocity[i], self.outer.momentum
            hal.ops.mul(v, mu, out=v)
            hal.ops.add(v, delta, out=v)
            hal.ops.add(delta, hal.ops.mul(v, mu), out=delta)
            hal.ops.mul(delta, self.outer.lr, out=delta)
        hal.ops.sub(anchor, delta, out=anchor)
        model.params = views(_copy(anchor, dev), model.params)

    def drop(self, i: int) -> None:
        """Forget replica ``i`` (its device failed)."""
        for per_device in (self.devices, self.anchors, self.velocity, self.residuals):
            if per_device is not None:
                del per_device[i]

    def join(self, model: MLP, device: hal.Device) -> None:
        """Add a replica on ``device``: it receives the global parameters (and outer momentum) from
        the first replica and starts from them."""
        self.devices.append(device)
        self.anchors.append(_copy(self.anchors[0], device))
        if self.velocity is not None:
            self.velocity.append(_copy(self.velocity[0], device))
        if self.residuals is not None:
            self.residuals.append(device.zeros((self.anchors[0].size,), F32))
        model.params = views(_copy(self.anchors[-1], device), model.params)

    def forget_residuals(self) -> None:
        """Zero the error-feedback residuals (after an all-reduce that failed part way: they may
        hold one call's update twice); costs at most one call's compression error."""
        for r in self.residuals or ():
            r.device.default_queue.fill(r, 0.0)


def _copy(src: hal.Array, dev: hal.Device) -> hal.Array:
    """A copy of ``src`` on ``dev`` (through the host when it lives elsewhere)."""
    out = dev.empty(src.shape, src.dtype)
    dev.default_queue.copy(out, src)
    return out


def flatten(tensors: list[Tensor], dev: hal.Device) -> hal.Array:
    """The tensors' values one after the other in one new 1-D array on ``dev``."""
    flat = dev.empty((sum(math.prod(t.shape) for t in tensors),), F32)
    at = 0
    for t in tensors:
        arr = t.array_on(dev)
        dev.default_queue.copy(flat[at:at + arr.size].reshape(arr.shape), arr)
        at += arr.size
    return flat


def views(flat: hal.Array, like: list[Tensor]) -> list[Tensor]:
    """Tensors viewing consecutive parts of ``flat``, shaped like ``like``."""
    out, at = [], 0
    for t in like:
        count = math.prod(t.shape)
        out.append(Tensor(flat[at:at + count].reshape(t.shape)))
        at += count
    return out
