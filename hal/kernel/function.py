"""The objects that ``@hal.kernel`` and ``@hal.func`` return.

A kernel is parsed lazily, once, on first use: decorating is free and a compile
error surfaces where the kernel is first launched or compiled. ``kernel[grid,
block](...)`` is the launch hot path, so it only packs its arguments and hands
them to the queue, which validates everything once.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NoReturn

from .._errors import InvalidArgumentError
from .types import DTypeVar, ScalarType

if TYPE_CHECKING:
    from . import ir
    from .generic import Specializer

_UNKNOWN: Any = object()
"""Not looked at yet (whether a kernel is generic is read from its signature on first launch)."""


def _check_function(fn: Any, decorator: str) -> None:
    if not isinstance(fn, types.FunctionType):
        raise InvalidArgumentError(f"{decorator} decorates a plain Python function (def ...), not {fn!r}")


def _where(fn: types.FunctionType) -> str:
    return f"{fn.__code__.co_filename}:{fn.__code__.co_firstlineno}"


class KernelFunction:
    """A ``@hal.kernel``: launch it with ``kernel[grid, block](*args)``.

    A generic kernel (``hal.Ptr[T]`` of a ``hal.dtype_var``, ``hal.Const`` parameters) is
    specialised per launch (:mod:`hal.kernel.generic`); each specialisation is a KernelFunction
    of its own, with ``bindings`` and ``constants`` fixed.
    """

    def __init__(self, fn: types.FunctionType, *, bindings: Mapping[DTypeVar, ScalarType] | None = None,
                 constants: Mapping[str, int | float | bool] | None = None) -> None:
        _check_function(fn, "@hal.kernel")
        self.fn = fn
        self._ir: ir.Kernel | None = None
        self._compiled: dict[Any, Any] = {}
        """Device -> its CompiledKernel: compiled code lives exactly as long as the kernel object."""
        self.bindings: Mapping[DTypeVar, ScalarType] = dict(bindings or {})
        self.constants: Mapping[str, int | float | bool] = dict(constants or {})
        self._specializer: Any = _UNKNOWN
        functools.update_wrapper(self, fn)

    @property
    def name(self) -> str:
        return self.fn.__name__

    @property
    def ir(self) -> ir.Kernel:
        """The typed IR, parsed on first use; raises CompileError if the source is outside the language
        (or the kernel is generic: its specialisations have IR, see :meth:`specialize`)."""
        if self._ir is None:
            from .frontend import parse_kernel

            self._ir = parse_kernel(self.fn, self.bindings, self.constants)
        return self._ir

    @property
    def specializer(self) -> Specializer | None:
        """What picks a generic kernel's specialisation for a launch's arguments; None for a plain kernel
        (and for a specialisation). The launch path asks for it when no compiled kernel is cached."""
        if self._specializer is _UNKNOWN:
            from .generic import Specializer, signature

            sig = None if self.bindings or self.constants else signature(self.fn)
            self._specializer = Specializer(self, sig) if sig is not None and sig.generic else None
        specializer: Specializer | None = self._specializer
        return specializer

    def specialize(self, **bindings: Any) -> KernelFunction:
        """One specialisation of a generic kernel: ``k.specialize(T=hal.f32, BLOCK=256)`` (dtype variables
        by name, ``hal.Const`` parameters by parameter name). It takes the arguments without the constants."""
        specializer = self.specializer
        if specializer is None:
            raise InvalidArgumentError(f"kernel '{self.name}' is not generic (no hal.dtype_var or hal.Const "
                                       "parameter): launch or compile it as it is")
        return specializer.by_name(bindings)

    def __getitem__(self, key: Any) -> Launch:
        if type(key) is tuple:
            if len(key) == 2:
                return Launch(self, key[0], key[1], None)
            if len(key) == 3 and (key[2] is None or hasattr(key[2], "launch")):
                return Launch(self, key[0], key[1], key[2])
        raise InvalidArgumentError(
            f"launch kernel '{self.name}' as {self.name}[grid, block](...) or "
            f"{self.name}[grid, block, queue](...) with a hal.Queue, not {self.name}[{key!r}]"
        )

    def __call__(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise InvalidArgumentError(
            f"kernel '{self.name}' cannot be called like a Python function; "
            f"launch it with {self.name}[grid, block](...)"
        )

    def __repr__(self) -> str:
        bound = [f"{v.name}={t.value}" for v, t in self.bindings.items()]
        bound += [f"{k}={v!r}" for k, v in self.constants.items()]
        return f"<hal.kernel {self.name}{'[' + ', '.join(bound) + ']' if bound else ''} at {_where(self.fn)}>"


class Launch:
    """``kernel[grid, block(, queue)]``: a pending launch; calling it enqueues the kernel."""

    __slots__ = ("kernel", "grid", "block", "queue")

    def __init__(self, kernel: KernelFunction, grid: Any, block: Any, queue: Any) -> None:
        self.kernel = kernel
        self.grid = grid
        self.block = block
        self.queue = queue

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs:
            raise InvalidArgumentError(f"kernel '{self.kernel.name}' takes its arguments by position, in the "
                                       f"order of its parameters; got keywords {', '.join(kwargs)}")
        queue = self.queue
        if queue is None:
            queue = _default_queue(args)
        return queue.launch(self.kernel, self.grid, self.block, *args)

    def __repr__(self) -> str:
        return f"{self.kernel.name}[{self.grid!r}, {self.block!r}, {self.queue!r}]"


default_device_queue: Callable[[], Any] | None = None
"""The default queue of ``hal.device()``, installed by the core (which sits above this package)."""


def _default_queue(args: tuple[Any, ...]) -> Any:
    """The default queue of the first argument's device, else of ``hal.device()``."""
    for arg in args:
        queue = getattr(getattr(arg, "device", None), "default_queue", None)
        if queue is not None:
            return queue
    assert default_device_queue is not None, "hal (the core) installs it on import"
    return default_device_queue()


class DeviceFunction:
    """A ``@hal.func``: a device function inlined into the kernels that call it."""

    def __init__(self, fn: types.FunctionType) -> None:
        _check_function(fn, "@hal.func")
        self.fn = fn
        self._parsed: Any = None  # the frontend's cached parse, see _inline._FuncSource
        functools.update_wrapper(self, fn)

    @property
    def name(self) -> str:
        return self.fn.__name__

    def __call__(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise InvalidArgumentError(
            f"hal.func '{self.name}' is kernel syntax; call it only inside @hal.kernel / @hal.func"
        )

    def __repr__(self) -> str:
        return f"<hal.func {self.name} at {_where(self.fn)}>"


def func(fn: types.FunctionType) -> DeviceFunction:
    """``@hal.func``: declare a device function that kernels may call."""
    return DeviceFunction(fn)
