"""Generic kernels: specialised at launch over dtype variables and ``hal.Const`` parameters.

``T = hal.dtype_var("T")`` and ``x: hal.Ptr[T]`` make a kernel generic over ``T``: each launch
binds ``T`` to the dtype of the array passed for ``x``. A parameter ``n: hal.Const[hal.i32]``
is a compile-time constant of each launch. Every distinct (dtypes, constants) combination is
one specialisation, a plain :class:`~hal.kernel.function.KernelFunction` parsed with those
bindings and compiled once per device; the launch path finds it with one generated key
function and one dict lookup (:meth:`Specializer.select`), and drops the constants from the
arguments (they are not parameters of the specialisation's IR).
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .._errors import InvalidArgumentError
from ._source import ParamType, _parse_source, _signature
from .types import INT_RANGES, ConstType, DTypeVar, PtrType, ScalarType

if TYPE_CHECKING:
    from .function import KernelFunction

_DTYPE_NAMES = ", ".join(t.np_dtype.name for t in ScalarType)
_MAX_KEYS = 4096
"""Raw launch keys remembered per generic kernel (distinct specialisations are never dropped)."""


@dataclass(frozen=True)
class Signature:
    """A kernel's parameters as annotated, and what makes it generic."""

    name: str
    params: tuple[tuple[str, ParamType], ...]
    variables: tuple[DTypeVar, ...]
    """Dtype variables, in the order of the first pointer parameter binding each."""
    binders: tuple[tuple[int, DTypeVar], ...]
    """(parameter index, variable) of every ``hal.Ptr[T]`` parameter."""
    constants: tuple[tuple[int, ConstType], ...]
    """(parameter index, type) of every ``hal.Const`` parameter."""

    @property
    def generic(self) -> bool:
        return bool(self.variables or self.constants)


def signature(fn: types.FunctionType) -> Signature:
    """Read a kernel's signature; a dtype variable no ``hal.Ptr`` parameter binds is a CompileError."""
    src = _parse_source(fn, "kernel")
    params = tuple(_signature(src, "kernel"))
    binders = tuple((i, t.elem) for i, (_, t) in enumerate(params)
                    if isinstance(t, PtrType) and isinstance(t.elem, DTypeVar))
    variables = tuple(dict.fromkeys(v for _, v in binders))
    for i, (name, t) in enumerate(params):
        if isinstance(t, DTypeVar) and t not in variables:
            arg = src.node.args.args[i] if i < len(src.node.args.args) else src.node
            src.error(arg, f"parameter '{name}' of kernel '{fn.__name__}' has dtype variable {t.name}, which no "
                           f"parameter binds: a generic kernel takes {t.name} from the dtype of an array, so add a "
                           f"hal.Ptr[{t.name}] parameter, or annotate '{name}' with a concrete type such as hal.f32")
    constants = tuple((i, t) for i, (_, t) in enumerate(params) if isinstance(t, ConstType))
    return Signature(fn.__name__, params, variables, binders, constants)


class Specializer:
    """Finds (and creates, once) the specialisation of a generic kernel for a launch's arguments."""

    def __init__(self, kernel: KernelFunction, sig: Signature) -> None:
        self.kernel = kernel
        self.sig = sig
        self._key = _key_function(sig)
        self._strip = _strip_function(sig)
        self._by_key: dict[Any, KernelFunction] = {}
        self._by_binding: dict[tuple[Any, ...], KernelFunction] = {}

    def select(self, args: Sequence[Any]) -> tuple[KernelFunction, Sequence[Any]]:
        """The specialisation for ``args`` and the arguments it takes (constants removed)."""
        try:
            spec = self._by_key.get(self._key(args))
        except (AttributeError, IndexError, TypeError):  # not an array, too few arguments, unhashable
            spec = None
        if spec is None:
            spec = self._miss(args)
        return spec, (self._strip(args) if self._strip is not None else args)

    def _miss(self, args: Sequence[Any]) -> KernelFunction:
        sig = self.sig
        if len(args) != len(sig.params):
            names = ", ".join(name for name, _ in sig.params)
            raise InvalidArgumentError(f"kernel {sig.name!r} takes {len(sig.params)} arguments ({names}), "
                                       f"got {len(args)}")
        bindings: dict[DTypeVar, tuple[ScalarType, str]] = {}
        for i, var in sig.binders:
            name, arg = sig.params[i][0], args[i]
            type_ = _dtype_of(sig.name, name, var, arg)
            seen = bindings.setdefault(var, (type_, name))
            if seen[0] is not type_:
                raise InvalidArgumentError(
                    f"kernel {sig.name!r}: dtype variable {var.name} is {seen[0].np_dtype} from parameter "
                    f"'{seen[1]}' but {type_.np_dtype} from parameter '{name}'; pass arrays of one dtype (or "
                    f"give the parameters different dtype variables)")
        constants = {sig.params[i][0]: _constant(sig.name, sig.params[i][0], c, args[i]) for i, c in sig.constants}
        spec = self.specialization({v: t for v, (t, _) in bindings.items()}, constants)
        try:
            key = self._key(args)
            if len(self._by_key) < _MAX_KEYS:
                self._by_key[key] = spec
        except (AttributeError, IndexError, TypeError):
            pass
        return spec

    def specialization(self, bindings: Mapping[DTypeVar, ScalarType],
                       constants: Mapping[str, int | float | bool]) -> KernelFunction:
        """The one KernelFunction of these bindings (created on first use, then kept)."""
        canon = (tuple(bindings[v] for v in self.sig.variables), tuple(constants[self.sig.params[i][0]]
                                                                        for i, _ in self.sig.constants))
        spec = self._by_binding.get(canon)
        if spec is None:
            from .function import KernelFunction

            spec = KernelFunction(self.kernel.fn, bindings=bindings, constants=constants)
            self._by_binding[canon] = spec
        return spec

    def by_name(self, given: Mapping[str, Any]) -> KernelFunction:
        """``kernel.specialize(T=hal.f32, BLOCK=256)``: bindings named by variable and constant."""
        sig = self.sig
        wanted = [v.name for v in sig.variables] + [sig.params[i][0] for i, _ in sig.constants]
        if sorted(given) != sorted(wanted):
            raise InvalidArgumentError(f"kernel {sig.name!r} is specialised by {', '.join(wanted) or 'nothing'}; "
                                       f"got {', '.join(sorted(given)) or 'nothing'}")
        bindings: dict[DTypeVar, ScalarType] = {}
        for v in sig.variables:
            value = given[v.name]
            try:
                bindings[v] = value if isinstance(value, ScalarType) else ScalarType.from_dtype(value)
            except (KeyError, TypeError):
                raise InvalidArgumentError(f"kernel {sig.name!r}: {v.name} must be a hal scalar type such as "
                                           f"hal.f32 (or its numpy dtype), got {value!r}") from None
        constants = {sig.params[i][0]: _constant(sig.name, sig.params[i][0], c, given[sig.params[i][0]])
                     for i, c in sig.constants}
        return self.specialization(bindings, constants)


def _dtype_of(kname: str, pname: str, var: DTypeVar, arg: Any) -> ScalarType:
    dtype = getattr(arg, "dtype", None)
    try:
        if dtype is None:
            raise TypeError("not an array")
        return ScalarType.from_dtype(dtype)
    except (KeyError, TypeError):
        got = f"an array of {dtype}" if dtype is not None else type(arg).__name__
        raise InvalidArgumentError(f"argument {pname!r} of kernel {kname!r} is hal.Ptr[{var.name}] and binds "
                                   f"{var.name}: pass a hal.Array of a kernel scalar dtype ({_DTYPE_NAMES}), "
                                   f"got {got}") from None


def _constant(kname: str, pname: str, const: ConstType, value: Any) -> int | float | bool:
    """A launch's value of a ``hal.Const`` parameter, as a Python number of its type."""
    t = const.type
    where = f"argument {pname!r} of kernel {kname!r} is {const!r}, a compile-time constant of each launch"
    if t is ScalarType.BOOL:
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        raise InvalidArgumentError(f"{where}: pass True or False, got {value!r} ({type(value).__name__})")
    if t.is_int:
        lo, hi = INT_RANGES[t]
        if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)) and lo <= int(value) <= hi:
            return int(value)
        raise InvalidArgumentError(f"{where}: pass a Python int in [{lo}, {hi}], got {value!r} "
                                   f"({type(value).__name__})")
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
        return float(value)
    raise InvalidArgumentError(f"{where}: pass a Python number, got {value!r} ({type(value).__name__})")


def _key_function(sig: Signature) -> Callable[[Sequence[Any]], Any]:
    """``args -> (args[i].dtype, ..., type(args[j]), args[j], ...)``, generated: one call per launch."""
    parts = [f"args[{i}].dtype" for i, _ in sig.binders]
    parts += [f"type(args[{i}]), args[{i}]" for i, _ in sig.constants]
    code = f"def key(args):\n    return ({', '.join(parts)}{',' if len(parts) == 1 else ''})\n"
    env: dict[str, Any] = {}
    exec(code, env)  # noqa: S102 - generated from parameter positions only
    key: Callable[[Sequence[Any]], Any] = env["key"]
    return key


def _strip_function(sig: Signature) -> Callable[[Sequence[Any]], Sequence[Any]] | None:
    """``args -> the arguments without the constants``, generated; None when there are none."""
    if not sig.constants:
        return None
    skip = {i for i, _ in sig.constants}
    keep = [f"args[{i}]" for i in range(len(sig.params)) if i not in skip]
    code = f"def strip(args):\n    return ({', '.join(keep)}{',' if len(keep) == 1 else ''})\n"
    env: dict[str, Any] = {}
    exec(code, env)  # noqa: S102 - generated from parameter positions only
    strip: Callable[[Sequence[Any]], Sequence[Any]] = env["strip"]
    return strip

