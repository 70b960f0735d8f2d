"""The objects that ``@hal.kernel`` and ``@hal.func`` return.

A kernel is parsed lazily, once, on first use: decorating is free and a compile
error surfaces where the kernel is first launched or compiled. ``kernel[grid,
block](...)`` is the launch hot path, so it only packs its arguments and hands
them to the queue, which validates everything once.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

from .._errors import InvalidArgumentError

if TYPE_CHECKING:
    from . import ir


def _check_function(fn: Any, decorator: str) -> None:
    if not isinstance(fn, types.FunctionType):
        raise InvalidArgumentError(f"{decorator} decorates a plain Python function (def ...), not {fn!r}")


def _where(fn: types.FunctionType) -> str:
    return f"{fn.__code__.co_filename}:{fn.__code__.co_firstlineno}"


class KernelFunction:
    """A ``@hal.kernel``: launch it with ``kernel[grid, block](*args)``."""

    def __init__(self, fn: types.FunctionType) -> None:
        _check_function(fn, "@hal.kernel")
        self.fn = fn
        self._ir: ir.Kernel | None = None
        self._compiled: dict[Any, Any] = {}
        """Device -> its CompiledKernel: compiled code lives exactly as long as the kernel object."""
        functools.update_wrapper(self, fn)

    @property
    def name(self) -> str:
        return self.fn.__name__

    @property
    def ir(self) -> ir.Kernel:
        """The typed IR, parsed on first use; raises CompileError if the source is outside the language."""
        if self._ir is None:
            from .frontend import parse_kernel

            self._ir = parse_kernel(self.fn)
        return self._ir

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
        return f"<hal.kernel {self.name} at {_where(self.fn)}>"


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
