"""Compiled kernels and launch checking: the core validates launch arguments once, here.

A :class:`CompiledKernel` precomputes one checker per parameter so that a
launch with good arguments costs a few attribute tests per argument. Any
mismatch falls to a slow path that names the parameter and says what to pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ._errors import InvalidArgumentError, InvalidHandleError
from ._hazards import pointer_modes
from ._memory import Array
from .backend import Dim3, Executable
from .kernel.types import FLOAT_MAX, INT_RANGES, ScalarType

if TYPE_CHECKING:
    from ._device import Device
    from .kernel import ir

I32_MAX = 2**31 - 1
_MANTISSA = {ScalarType.F16: 10, ScalarType.BF16: 7, ScalarType.F32: 23}
ROUNDS_FINITE = {t: m + 2.0 ** (math.frexp(m)[1] - 2 - _MANTISSA[t]) for t, m in FLOAT_MAX.items() if t in _MANTISSA}
"""Doubles below a type's largest value plus half an ulp round to a finite value; from there on to inf."""
F32_MAX = ROUNDS_FINITE[ScalarType.F32]


class CompiledKernel:
    """A kernel compiled for one device (``dev.compile(k)``); launches check against it."""

    def __init__(self, device: Device, source: Any, kernel: ir.Kernel, impl: Executable) -> None:
        self.device = device
        self.source = source
        self.ir = kernel
        self.impl = impl
        self.name = kernel.name
        modes = pointer_modes(kernel)
        self._checks: list[Callable[[Any], Any]] = [self._checker(p, bool(w)) for p, w in zip(kernel.params, modes)]
        self._bind = _binder(self._checks)
        self._dims: dict[Any, tuple[Dim3, Dim3]] = {}

    def report(self) -> Any:
        """The backend's compile report (the FPGA's synthesis report, say), or None."""
        return self.impl.report()

    def __getitem__(self, config: Any) -> Any:
        return self.source[config]

    def __repr__(self) -> str:
        return f"<hal.CompiledKernel {self.name} on {self.device.spec}>"

    # ---------------------------------------------------------------- args
    def bind(self, args: Sequence[Any]) -> list[Any]:
        """The arguments as the backend takes them: an immutable :class:`BufferArg` per pointer
        (valid even if the Array is freed before the launch runs), checked scalars."""
        if len(args) != len(self._checks):
            names = ", ".join(p.name for p in self.ir.params)
            raise InvalidArgumentError(f"kernel {self.name!r} takes {len(self._checks)} arguments ({names}), "
                                       f"got {len(args)}")
        return self._bind(args)

    def _checker(self, param: ir.Param, written: bool) -> Callable[[Any], Any]:
        device, kname = self.device, self.name
        if param.pointer:
            dtype = param.type.np_dtype
            if written:  # a read-only array has no cached _arg: it falls to the error
                def check_written(a: Any) -> Any:
                    if type(a) is Array and a.device is device and a.dtype == dtype and a._block.buffer is not None:
                        arg = a._arg
                        if arg is not None or not a._block.readonly:
                            return arg or a._launch_arg()
                    raise _pointer_error(kname, param, a, device)
                return check_written

            def check_pointer(a: Any) -> Any:
                if type(a) is Array and a.device is device and a.dtype == dtype and a._block.buffer is not None:
                    return a._arg or a._launch_arg()
                raise _pointer_error(kname, param, a, device)
            return check_pointer
        if param.type is ScalarType.BOOL:
            def check_bool(a: Any) -> Any:
                if type(a) is bool:
                    return a
                if isinstance(a, (np.bool_, int, np.integer)) and int(a) in (0, 1):
                    return bool(a)
                raise _scalar_error(kname, param, a, "a bool")
            return check_bool
        if param.type.is_float:
            top = ROUNDS_FINITE.get(param.type, math.inf)
            largest = FLOAT_MAX[param.type]

            def check_float(a: Any) -> Any:
                if type(a) is float and -top < a < top:
                    return a
                if isinstance(a, (int, float, np.integer, np.floating)) and not isinstance(a, (bool, np.bool_)):
                    try:
                        value = float(a)
                    except OverflowError:  # an int beyond any float
                        value = math.nan
                    if -top < value < top or (isinstance(a, (float, np.floating)) and not math.isfinite(value)):
                        return value  # in range, or an explicit inf/nan
                    raise _scalar_error(kname, param, a, f"a real number within the {param.type.value} range "
                                                         f"(|x| <= {largest:.7g}; inf and nan are "
                                                         "passed as is)")
                raise _scalar_error(kname, param, a, "a real number")
            return check_float
        lo, hi = INT_RANGES[param.type]

        def check_int(a: Any) -> Any:
            if type(a) is int and lo <= a <= hi:
                return a
            if isinstance(a, (int, np.integer)) and not isinstance(a, (bool, np.bool_)) and lo <= int(a) <= hi:
                return int(a)
            raise _scalar_error(kname, param, a, f"an integer in [{lo}, {hi}]")
        return check_int

    # ---------------------------------------------------------------- dims
    def dims(self, grid: Any, block: Any) -> tuple[Dim3, Dim3]:
        """Checked 3-d grid and block; cached for exact int keys (1.0 and True equal 1 as keys)."""
        if (type(grid) is int or _exact_ints(grid)) and (type(block) is int or _exact_ints(block)):
            dims = self._dims.get((grid, block))
            if dims is None:
                dims = self._check_dims(grid, block)
                if len(self._dims) < 256:
                    self._dims[grid, block] = dims
            return dims
        return self._check_dims(grid, block)

    def _check_dims(self, grid: Any, block: Any) -> tuple[Dim3, Dim3]:
        info = self.device.info
        g = _dim3(grid, "grid", self.name, 0)
        b = _dim3(block, "block", self.name, 1)
        if b[0] * b[1] * b[2] > info.max_block_size:
            raise InvalidArgumentError(f"block {b} of kernel {self.name!r} has {b[0] * b[1] * b[2]} threads; "
                                       f"{info.name} allows at most {info.max_block_size} per block")
        for axis in range(3):
            if b[axis] > info.max_block_dims[axis]:
                raise InvalidArgumentError(f"block dimension {axis} of kernel {self.name!r} is {b[axis]}; "
                                           f"{info.name} allows at most {info.max_block_dims[axis]}")
            if g[axis] > info.max_grid_dims[axis]:
                raise InvalidArgumentError(f"grid dimension {axis} of kernel {self.name!r} is {g[axis]}; "
                                           f"{info.name} allows at most {info.max_grid_dims[axis]}")
            if g[axis] * b[axis] > I32_MAX:
                raise InvalidArgumentError(
                    f"global size {g[axis] * b[axis]} in dimension {axis} of kernel {self.name!r} exceeds "
                    f"the i32 range of thread indices; split the work into several launches or loop inside "
                    f"the kernel")
        return g, b


def _binder(checks: Sequence[Callable[[Any], Any]]) -> Callable[[Sequence[Any]], list[Any]]:
    """``args -> [check0(args[0]), check1(args[1]), ...]`` as one generated function: the launch
    path then pays one call per argument and no loop."""
    n = len(checks)
    code = f"def bind(args):\n    return [{', '.join(f'c{i}(args[{i}])' for i in range(n))}]\n"
    env: dict[str, Any] = {f"c{i}": check for i, check in enumerate(checks)}
    exec(code, env)  # noqa: S102 - generated from the parameter count only
    bind: Callable[[Sequence[Any]], list[Any]] = env["bind"]
    return bind


def _exact_ints(value: Any) -> bool:
    """An int or a tuple of ints, with no bool or float among them."""
    if type(value) is int:
        return True
    if type(value) is not tuple:
        return False
    for v in value:
        if type(v) is not int:
            return False
    return True


def _dim3(value: Any, what: str, kname: str, minimum: int) -> Dim3:
    items = value if isinstance(value, (tuple, list)) else (value,)
    if not 1 <= len(items) <= 3 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                           for v in items):
        raise InvalidArgumentError(f"{what} of kernel {kname!r} must be an int or a tuple of 1 to 3 ints, "
                                   f"got {value!r}")
    dims = [int(v) for v in items] + [1] * (3 - len(items))
    if any(d < minimum for d in dims):
        raise InvalidArgumentError(f"{what} of kernel {kname!r} must have every dimension >= {minimum}, "
                                   f"got {value!r}")
    return (dims[0], dims[1], dims[2])


def _pointer_error(kname: str, param: ir.Param, a: Any, device: Device) -> Exception:
    where = f"argument {param.name!r} of kernel {kname!r}"
    if not isinstance(a, Array):
        hint = "; copy it to the device first with dev.array(...)" if isinstance(a, np.ndarray) else ""
        return InvalidArgumentError(f"{where} must be a hal.Array of {param.type.np_dtype}, "
                                    f"got {type(a).__name__}{hint}")
    if a.freed:
        return InvalidHandleError(f"{where} was freed; pass a live array")
    if a.device is not device:
        return InvalidArgumentError(f"{where} lives on {a.device.spec} but the launch runs on {device.spec}; "
                                    f"copy it with q.copy(...) or launch on a queue of {a.device.spec}")
    if a.readonly and a.dtype == param.type.np_dtype:
        return a._readonly_error(f"kernel {kname!r} (through parameter {param.name!r})")
    try:
        declare = f"; convert on the host or declare the parameter as hal.Ptr[hal.{ScalarType.from_dtype(a.dtype)}]"
    except KeyError:
        declare = ""
    return InvalidArgumentError(f"{where} must hold {param.type.np_dtype}, got {a.dtype}{declare}")


def _scalar_error(kname: str, param: ir.Param, a: Any, expected: str) -> Exception:
    return InvalidArgumentError(f"argument {param.name!r} of kernel {kname!r} is a {param.type.value} scalar "
                                f"and needs {expected}, got {a!r} ({type(a).__name__})")
