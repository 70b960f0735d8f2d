"""Operator placement: run each framework operator on the requested device when it can,
else on a fallback device, moving data explicitly and counting what the moves cost.

Why here and not in ``hal.ops``: hal's contract is that a backend never
silently falls back (``UnsupportedError`` reaches the caller), so ``hal.ops``
stays a mechanism and the policy (where to go instead, and whether moving the
data is worth it) belongs to the framework, which knows its own graph.

Values are immutable :class:`Tensor` s with one copy per device they have been
needed on, so a copy made once stays valid and is never made twice. An
:class:`Op` lists implementations in order of preference (a fused kernel, then
a composition of ``hal.ops``); the :class:`Placer` tries them on the requested
device, then on the fallback, and caches the first that does not raise
``UnsupportedError``, per operator, for the rest of the run. Kernel
implementations are compiled before any input moves (so rejection costs
nothing); a ``hal.ops`` composition is rejected at its first unsupported call,
which is why every implementation writes only fresh outputs.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import hal


class Tensor:
    """An immutable value with one ``hal.Array`` copy per device it has been used on."""

    __slots__ = ("_copies", "shape", "dtype")

    def __init__(self, array: hal.Array) -> None:
        self._copies: dict[hal.Device, hal.Array] = {array.device: array}
        self.shape, self.dtype = array.shape, array.dtype

    @property
    def home(self) -> hal.Device:
        """The device that produced the value."""
        return next(iter(self._copies))

    def array_on(self, device: hal.Device, moves: Moves | None = None) -> hal.Array:
        """The copy on ``device``, made (through the host, counted in ``moves``) when missing."""
        arr = self._copies.get(device)
        if arr is None:
            src = self._copies[self.home]
            start = time.perf_counter()
            arr = device.empty(self.shape, self.dtype)
            device.default_queue.copy(arr, src)
            if moves is not None:
                moves.add(src.device, device, arr.nbytes, time.perf_counter() - start)
            self._copies[device] = arr
        return arr

    def numpy(self) -> np.ndarray:
        return self._copies[self.home].numpy()


@dataclass
class Moves:
    """Copies between devices made for placement: count, bytes, host wall time, per direction."""

    count: int = 0
    nbytes: int = 0
    wall_s: float = 0.0
    routes: Counter[str] = field(default_factory=Counter)

    def add(self, src: hal.Device, dst: hal.Device, nbytes: int, wall_s: float) -> None:
        self.count += 1
        self.nbytes += nbytes
        self.wall_s += wall_s
        self.routes[f"{src.spec} -> {dst.spec}"] += nbytes


@dataclass(frozen=True)
class Impl:
    """One way to compute an operator: ``fn(device, *arrays, **params)`` returns new Arrays.

    ``kernels`` are compiled on the device before the inputs move, so a device
    that cannot run them is rejected for free.
    """

    name: str
    fn: Callable[..., hal.Array | tuple[hal.Array, ...]]
    kernels: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Op:
    """A framework operator: implementations in order of preference."""

    name: str
    impls: tuple[Impl, ...]


@dataclass(frozen=True)
class Placement:
    """Where an operator runs, with which implementation, and why (the refusals before it)."""

    op: str
    device: str
    impl: str
    fallback: bool
    refused: tuple[str, ...] = ()


class Placer:
    """Places operators on ``device``, or on ``fallback`` (the CPU by default) when it refuses."""

    def __init__(self, device: hal.Device, fallback: hal.Device | None = None) -> None:
        self.device = device
        self.fallback = fallback if fallback is not None else hal.device("cpu")
        self.moves = Moves()
        self.placements: dict[str, Placement] = {}
        self.calls: Counter[str] = Counter()
        self._chosen: dict[str, tuple[hal.Device, Impl]] = {}

    def __call__(self, op: Op, *inputs: Tensor, **params: Any) -> tuple[Tensor, ...]:
        """Run ``op``; always a tuple of outputs (``(y,) = placer(op, x)``)."""
        self.calls[op.name] += 1
        chosen = self._chosen.get(op.name)
        if chosen is not None:
            dev, impl = chosen
            return _wrap(impl.fn(dev, *self._gather(inputs, dev), **params))
        return self._place(op, inputs, params)

    def _place(self, op: Op, inputs: Sequence[Tensor], params: dict[str, Any]) -> tuple[Tensor, ...]:
        refused: list[str] = []
        candidates = [self.device] + ([self.fallback] if self.fallback is not self.device else [])
        for dev in candidates:
            for impl in op.impls:
                try:
                    for kernel in impl.kernels:
                        dev.compile(kernel)
                    result = impl.fn(dev, *self._gather(inputs, dev), **params)
                except hal.UnsupportedError as exc:
                    refused.append(f"{impl.name} on {dev.spec}: {exc}")
                    continue
                self._chosen[op.name] = (dev, impl)
                self.placements[op.name] = Placement(op.name, dev.spec, impl.name, dev is not self.device,
                                                     tuple(refused))
                return _wrap(result)
        raise hal.UnsupportedError(f"no device can run the framework operator {op.name!r}: "
                                   + "; ".join(refused), feature=op.name)

    def _gather(self, inputs: Sequence[Tensor], dev: hal.Device) -> list[hal.Array]:
        return [t.array_on(dev, self.moves) for t in inputs]

    def tensor(self, host: np.ndarray) -> Tensor:
        """Host data uploaded to the requested device, asynchronously (``host`` must stay unchanged)."""
        arr = self.device.empty(host.shape, host.dtype)
        self.device.default_queue.copy(arr, host, blocking=False)
        return Tensor(arr)


def _wrap(result: hal.Array | tuple[hal.Array, ...]) -> tuple[Tensor, ...]:
    return tuple(Tensor(a) for a in result) if isinstance(result, tuple) else (Tensor(result),)
