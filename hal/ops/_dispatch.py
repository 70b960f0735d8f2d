"""Operator dispatch: which implementation runs ``hal.ops.<op>`` on a device, chosen once.

Native implementations arrive as :class:`OpImpl` values, from the ``hal_ops``
hook of plugins (start-up) or from :func:`register` (in-process). For each
``(op, device)`` the highest-priority native whose ``backends``/``accepts``
match wins; without one, the portable kernel-language implementation runs on
any device that declares ``Feature.KERNELS``; otherwise the op raises
``UnsupportedError``. The choice is cached, so a call pays one dict lookup.
Nothing falls back at call time: an ``UnsupportedError`` from the chosen
implementation reaches the caller.

Calling convention. The public op validates everything once (devices equal,
dtypes, shapes, scalars, axis normalised), allocates ``out`` when it is None
and picks the queue; an implementation only does the work and never repeats
those checks. Its ``fn`` is called as below (``queue`` is a ``hal.Queue`` of
the operands' device; arrays are C-contiguous ``hal.Array``):

* ``gemm``: ``fn(a, b, out, *, alpha, beta, trans_a, trans_b, queue)``.
  ``out = alpha * op(a) @ op(b) + beta * out`` with ``op(x) = x.T`` when
  ``trans_x``; a and b are 2-D; float32/float64 with out of the same dtype, or
  int8 with an int32 out (int arithmetic wrapping, alpha/beta ints). When
  ``beta == 0`` out is write-only (its old contents, NaN included, are ignored).
* ``binary`` (add sub mul div maximum minimum): ``fn(op_name, a, b, out, *, queue)``;
  a and b have out's shape and dtype, or one of them (never both) is a Python float.
* ``unary`` (relu gelu sigmoid tanh exp log sqrt): ``fn(op_name, x, out, *, queue)``.
  gelu is the tanh form ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``.
* ``reduce`` (sum max mean): ``fn(op_name, x, out, *, axis, queue)``; axis is a
  non-negative int < x.ndim; out has x's shape without that axis.
* ``softmax``: ``fn(x, out, *, axis, queue)``; axis a non-negative int.
* ``conv2d``: ``fn(x, w, out, *, stride, padding, queue)``; x NCHW, w KCRS, out
  NKPQ; stride and padding are (height, width) int pairs (stride >= 1, padding >= 0).
* ``transpose``: ``fn(x, out, *, axes, queue)``; axes a full permutation tuple.

An ``OpImpl`` names either one operator (``"add"``) or a family (``"binary"``,
``"unary"``, ``"reduce"``) that serves every operator of it; the ``fn`` of
either gets the family's signature above (op_name first for the families).
A family impl that cannot do one of its ops raises ``UnsupportedError`` for
it, which is what the caller sees (register per-op names to avoid that).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._errors import InvalidArgumentError, UnsupportedError
from .._features import Feature

if TYPE_CHECKING:
    from .._device import Device

FAMILIES: dict[str, tuple[str, ...]] = {
    "gemm": ("gemm",),
    "binary": ("add", "sub", "mul", "div", "maximum", "minimum"),
    "unary": ("relu", "gelu", "sigmoid", "tanh", "exp", "log", "sqrt"),
    "reduce": ("sum", "max", "mean"),
    "softmax": ("softmax",),
    "conv2d": ("conv2d",),
    "transpose": ("transpose",),
}
FAMILY_OF: dict[str, str] = {op: family for family, ops in FAMILIES.items() for op in ops}
"""Operator name -> the family whose calling convention it uses."""


@dataclass(frozen=True)
class OpImpl:
    """A native implementation of one operator (or family) for some devices."""

    op: str
    """An operator name (``"gemm"``, ``"add"``) or a family (``"binary"``, ``"unary"``, ``"reduce"``)."""
    fn: Callable[..., Any]
    priority: int = 0
    """Higher wins; at equal priority an impl for the exact op beats a family one, then the later registered."""
    backends: frozenset[str] | None = None
    """Backend names served (``frozenset({"cpu"})``); None: any backend."""
    accepts: Callable[[Device], bool] | None = None
    """A further test of the device (its features, say), run once per device."""

    def __post_init__(self) -> None:
        if self.op not in FAMILY_OF and self.op not in FAMILIES:
            names = ", ".join(sorted(set(FAMILY_OF) | set(FAMILIES)))
            raise InvalidArgumentError(f"OpImpl for unknown operator {self.op!r}; known names: {names}")
        if not callable(self.fn):
            raise InvalidArgumentError(f"OpImpl({self.op!r}).fn must be callable, got {self.fn!r}")

    def serves(self, op: str, device: Device) -> bool:
        return ((self.op == op or self.op == FAMILY_OF[op])
                and (self.backends is None or device.backend.name in self.backends)
                and (self.accepts is None or bool(self.accepts(device))))


class Dispatcher:
    """The natives known in this process and the per-(op, device) choice made from them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._registered: list[OpImpl] = []
        self._cache: dict[tuple[str, Device], Callable[..., Any]] = {}

    def register(self, impl: OpImpl) -> OpImpl:
        """Add a native in-process (tests, notebooks); choices made before are recomputed."""
        if not isinstance(impl, OpImpl):
            raise InvalidArgumentError(f"hal.ops.register takes a hal.ops.OpImpl, got {type(impl).__name__}")
        with self._lock:
            self._registered.append(impl)
            self._cache.clear()
        return impl

    def unregister(self, impl: OpImpl) -> None:
        """Remove a native added with :meth:`register`."""
        with self._lock:
            if impl not in self._registered:
                raise InvalidArgumentError(f"{impl!r} was not registered with hal.ops.register")
            self._registered.remove(impl)
            self._cache.clear()

    def clear_cache(self) -> None:
        """Forget every choice (after plugins were added in-process); the next call chooses again."""
        with self._lock:
            self._cache.clear()

    def lookup(self, op: str, device: Device) -> Callable[..., Any]:
        """The implementation of ``op`` on ``device`` (cached after the first call)."""
        fn = self._cache.get((op, device))
        if fn is None:
            fn = self._choose(op, device)
            with self._lock:
                self._cache[(op, device)] = fn
        return fn

    def choice(self, op: str, device: Device) -> OpImpl | None:
        """The native that serves ``op`` on ``device``, or None when the portable kernel does."""
        from .._plugins import registry

        best: tuple[int, int, int] | None = None
        chosen: OpImpl | None = None
        for order, impl in enumerate([*registry.ops_impls(), *self._registered]):
            if not isinstance(impl, OpImpl) or not impl.serves(op, device):
                continue
            key = (impl.priority, impl.op == op, order)
            if best is None or key > best:
                best, chosen = key, impl
        return chosen

    def portable_for(self, op: str, device: Device) -> Callable[..., Any]:
        """The portable implementation, or UnsupportedError when the device runs no kernels."""
        if Feature.KERNELS not in device.info.features:
            raise UnsupportedError(f"hal.ops.{op} cannot run on {device.info.name} ({device.spec}): it runs no "
                                   f"kernels and no plugin provides a native {op}", feature=Feature.KERNELS.value)
        from ._portable import PORTABLE  # kernels are built on first use only

        return PORTABLE[FAMILY_OF[op]]

    def _choose(self, op: str, device: Device) -> Callable[..., Any]:
        native = self.choice(op, device)
        return native.fn if native is not None else self.portable_for(op, device)


dispatcher = Dispatcher()
register = dispatcher.register
unregister = dispatcher.unregister
