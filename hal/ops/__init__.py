"""Standard operators with one signature on every device.

``hal.ops.gemm(a, b)`` runs the best implementation the device has: a native
one registered by a plugin (``hal_ops`` hook) or with :func:`register`, else
the portable kernel-language version on any device that runs kernels, else
``hal.UnsupportedError``. The choice is made once per (operator, device).
``hal.ops.portable.<op>`` forces the kernel-language version (tests, comparisons).
Implementations' calling conventions: :mod:`hal.ops._dispatch`.
"""

from __future__ import annotations

from types import SimpleNamespace

from ._api import Operators
from ._dispatch import FAMILIES, FAMILY_OF, OpImpl, dispatcher, register, unregister

_dispatched = Operators(dispatcher.lookup)

gemm = _dispatched.gemm
add = _dispatched.add  # type: ignore[attr-defined]
sub = _dispatched.sub  # type: ignore[attr-defined]
mul = _dispatched.mul  # type: ignore[attr-defined]
div = _dispatched.div  # type: ignore[attr-defined]
maximum = _dispatched.maximum  # type: ignore[attr-defined]
minimum = _dispatched.minimum  # type: ignore[attr-defined]
relu = _dispatched.relu  # type: ignore[attr-defined]
gelu = _dispatched.gelu  # type: ignore[attr-defined]
sigmoid = _dispatched.sigmoid  # type: ignore[attr-defined]
tanh = _dispatched.tanh  # type: ignore[attr-defined]
exp = _dispatched.exp  # type: ignore[attr-defined]
log = _dispatched.log  # type: ignore[attr-defined]
sqrt = _dispatched.sqrt  # type: ignore[attr-defined]
sum = _dispatched.sum  # type: ignore[attr-defined]  # noqa: A001 - numpy spelling
max = _dispatched.max  # type: ignore[attr-defined]  # noqa: A001
mean = _dispatched.mean  # type: ignore[attr-defined]
softmax = _dispatched.softmax
conv2d = _dispatched.conv2d
transpose = _dispatched.transpose

OPERATORS: tuple[str, ...] = tuple(FAMILY_OF)
"""Every operator name."""

_portable = Operators(dispatcher.portable_for)
portable = SimpleNamespace(**{op: getattr(_portable, op) for op in OPERATORS})
"""The same operators, forced onto their portable kernel-language implementations."""

__all__ = ["FAMILIES", "OPERATORS", "OpImpl", "portable", "register", "unregister", *OPERATORS]
