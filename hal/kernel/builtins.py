"""The intrinsics of the kernel language: ``hal.global_id``, ``hal.shared``, ``hal.sqrt``, ...

They are real Python objects so that kernel source can refer to them through
ordinary imports (``hal.global_id(0)``, ``from hal import global_id``); the
frontend recognises them by identity while reading the AST. They have no host
meaning: calling one outside a kernel raises :class:`InvalidArgumentError`.
"""

from __future__ import annotations

from typing import Any, NoReturn

from .._errors import InvalidArgumentError

__all__ = [
    "Builtin",
    "global_id", "local_id", "group_id", "local_size", "num_groups", "global_size",
    "shared", "local", "barrier", "fence",
    "atomic_add", "atomic_min", "atomic_max", "atomic_exchange", "atomic_cas", "atomic_and", "atomic_or", "atomic_xor",
    "sqrt", "exp", "log", "sin", "cos", "tanh", "abs", "min", "max",
    "floor", "ceil", "fma", "pow",
    "subgroup_size", "subgroup_local_id", "shuffle", "shuffle_xor", "shuffle_up", "shuffle_down",
    "subgroup_reduce_add", "subgroup_reduce_max", "subgroup_reduce_min",
    "subgroup_any", "subgroup_all", "subgroup_ballot", "subgroup_scan_inclusive_add", "subgroup_scan_exclusive_add",
    "group_reduce_add", "group_reduce_max", "group_reduce_min",
    "erf", "erfc", "exp2", "log2", "log10", "log1p", "expm1", "rsqrt", "tan", "asin", "acos", "atan", "atan2",
    "sinh", "cosh", "trunc", "round", "copysign", "hypot", "isnan", "isinf", "isfinite",
    "popcount", "clz", "ctz",
]


class Builtin:
    """A kernel-language intrinsic; ``kind`` says how the frontend lowers it."""

    def __init__(self, name: str, kind: str, doc: str) -> None:
        self.name = name
        self.kind = kind  # "thread", "array", "barrier", "atomic", "math", "lane", "collective" or "fence"
        self.__doc__ = doc
        self.__name__ = name
        self.__qualname__ = name

    def __call__(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise InvalidArgumentError(
            f"hal.{self.name} is kernel syntax; call it only inside @hal.kernel / @hal.func"
        )

    def __repr__(self) -> str:
        return f"hal.{self.name}"

    def __reduce__(self) -> str:
        return self.name


def _thread(name: str, what: str) -> Builtin:
    return Builtin(name, "thread", f"``hal.{name}(d)``: {what} in dimension d (0, 1 or 2), as i32.")


def _atomic(op: str, operands: str) -> Builtin:
    return Builtin(f"atomic_{op}", "atomic",
                   f"``hal.atomic_{op}(p, i, {operands})``: atomically update ``p[i]``; returns the old value.")


def _math(name: str, what: str) -> Builtin:
    return Builtin(name, "math", what)


global_id = _thread("global_id", "this thread's index in the whole grid")
local_id = _thread("local_id", "this thread's index in its work-group")
group_id = _thread("group_id", "this work-group's index in the grid")
local_size = _thread("local_size", "threads per work-group")
num_groups = _thread("num_groups", "work-groups in the grid")
global_size = _thread("global_size", "threads in the grid")

shared = Builtin("shared", "array",
                 "``x = hal.shared(dtype, n)``: n elements of work-group memory (n a compile-time constant).")
local = Builtin("local", "array",
                "``x = hal.local(dtype, n)``: a per-thread array of n elements (n a compile-time constant).")
barrier = Builtin("barrier", "barrier",
                  "``hal.barrier()``: every thread of the work-group waits here; shared memory is then visible.")

atomic_add = _atomic("add", "v")
atomic_min = _atomic("min", "v")
atomic_max = _atomic("max", "v")
atomic_exchange = _atomic("exchange", "v")
atomic_and = _atomic("and", "v")
atomic_or = _atomic("or", "v")
atomic_xor = _atomic("xor", "v")
atomic_cas = _atomic("cas", "compare, value")

sqrt = _math("sqrt", "Square root (floats).")
exp = _math("exp", "e**x (floats).")
log = _math("log", "Natural logarithm (floats).")
sin = _math("sin", "Sine (floats).")
cos = _math("cos", "Cosine (floats).")
tanh = _math("tanh", "Hyperbolic tangent (floats).")
abs = _math("abs", "Absolute value (any numeric type).")  # noqa: A001 - kernel spelling
min = _math("min", "Minimum of two or more values of one type; NaN propagates.")  # noqa: A001
max = _math("max", "Maximum of two or more values of one type; NaN propagates.")  # noqa: A001
floor = _math("floor", "Round down, keeping the float type.")
ceil = _math("ceil", "Round up, keeping the float type.")
fma = _math("fma", "``fma(a, b, c)``: a * b + c with one rounding (floats).")
pow = _math("pow", "``pow(a, b)``: a ** b (floats).")  # noqa: A001


# ------------------------------------------------------------ subgroups and work-groups
fence = Builtin("fence", "fence", "``hal.fence(scope='device')``: a sequentially consistent memory fence for the "
                                  "work-group (``'group'``) or the whole device (``'device'``); waits for nobody.")


def _lane(name: str, what: str) -> Builtin:
    return Builtin(name, "lane", f"``hal.{name}()``: {what}, as i32.")


def _collective(name: str, what: str) -> Builtin:
    return Builtin(name, "collective", what + " Every work-item of the subgroup (work-group) must reach it: "
                   "not in thread-dependent control flow.")


subgroup_size = _lane("subgroup_size", "work-items per subgroup on this device (a power of two; 1 on a CPU)")
subgroup_local_id = _lane("subgroup_local_id", "this work-item's lane in its subgroup: linear local id % "
                                               "subgroup_size()")
shuffle = _collective("shuffle", "``hal.shuffle(v, lane)``: ``v`` of lane ``lane`` of this subgroup; a lane "
                                 "that does not exist gives this work-item's own ``v``.")
shuffle_xor = _collective("shuffle_xor", "``hal.shuffle_xor(v, mask)``: ``hal.shuffle(v, subgroup_local_id() ^ "
                                         "mask)``, ``mask`` in ``[0, subgroup_size())``.")
shuffle_up = _collective("shuffle_up", "``hal.shuffle_up(v, delta)``: ``hal.shuffle(v, subgroup_local_id() - delta)``"
                                       " (own ``v`` in the first ``delta`` lanes), ``delta`` in ``[0, subgroup_size())``.")
shuffle_down = _collective("shuffle_down", "``hal.shuffle_down(v, delta)``: ``hal.shuffle(v, subgroup_local_id() + "
                                           "delta)`` (own ``v`` in the last ``delta`` lanes), ``delta`` in "
                                           "``[0, subgroup_size())``.")
subgroup_any = _collective("subgroup_any", "``hal.subgroup_any(p)``: whether ``p`` is true in some lane of the "
                                           "subgroup (bool).")
subgroup_all = _collective("subgroup_all", "``hal.subgroup_all(p)``: whether ``p`` is true in every lane of the "
                                           "subgroup (bool).")
subgroup_ballot = _collective("subgroup_ballot", "``hal.subgroup_ballot(p)``: a u64 with bit ``i`` set for each "
                                                 "lane ``i`` of the subgroup where ``p`` is true.")
subgroup_scan_inclusive_add = _collective(
    "subgroup_scan_inclusive_add", "``hal.subgroup_scan_inclusive_add(v)``: the sum of ``v`` over lanes "
    "``0..subgroup_local_id()``, in a fixed order (see hal.kernel.ir).")
subgroup_scan_exclusive_add = _collective(
    "subgroup_scan_exclusive_add", "``hal.subgroup_scan_exclusive_add(v)``: the sum of ``v`` over the lanes before "
    "this one (0 in lane 0).")
subgroup_reduce_add = _collective("subgroup_reduce_add", "``hal.subgroup_reduce_add(v)``: the sum of ``v`` over "
                                                         "the subgroup, in a fixed tree order (see hal.kernel.ir).")
subgroup_reduce_max = _collective("subgroup_reduce_max", "``hal.subgroup_reduce_max(v)``: the maximum of ``v`` "
                                                         "over the subgroup (NaN propagates).")
subgroup_reduce_min = _collective("subgroup_reduce_min", "``hal.subgroup_reduce_min(v)``: the minimum of ``v`` "
                                                         "over the subgroup (NaN propagates).")
group_reduce_add = _collective("group_reduce_add", "``hal.group_reduce_add(v)``: the sum of ``v`` over the "
                                                   "work-group, in a fixed tree order; also a barrier.")
group_reduce_max = _collective("group_reduce_max", "``hal.group_reduce_max(v)``: the maximum of ``v`` over the "
                                                   "work-group (NaN propagates); also a barrier.")
group_reduce_min = _collective("group_reduce_min", "``hal.group_reduce_min(v)``: the minimum of ``v`` over the "
                                                   "work-group (NaN propagates); also a barrier.")
erf = _math("erf", "Error function (floats).")
erfc = _math("erfc", "Complementary error function, 1 - erf(x) without cancellation (floats).")
exp2 = _math("exp2", "2**x (floats).")
log2 = _math("log2", "Base-2 logarithm (floats).")
log10 = _math("log10", "Base-10 logarithm (floats).")
log1p = _math("log1p", "log(1 + x), accurate near 0 (floats).")
expm1 = _math("expm1", "exp(x) - 1, accurate near 0 (floats).")
rsqrt = _math("rsqrt", "1 / sqrt(x) (floats).")
tan = _math("tan", "Tangent (floats).")
asin = _math("asin", "Arc sine (floats); NaN outside [-1, 1].")
acos = _math("acos", "Arc cosine (floats); NaN outside [-1, 1].")
atan = _math("atan", "Arc tangent (floats).")
atan2 = _math("atan2", "``atan2(y, x)``: the angle of the point (x, y), in [-pi, pi] (floats).")
sinh = _math("sinh", "Hyperbolic sine (floats).")
cosh = _math("cosh", "Hyperbolic cosine (floats).")
trunc = _math("trunc", "Round toward zero, keeping the float type.")
round = _math("round", "Round to the nearest integer, ties to even (as numpy.rint), keeping the float type.")  # noqa: A001
copysign = _math("copysign", "``copysign(x, y)``: the magnitude of x with the sign of y (floats; exact).")
hypot = _math("hypot", "``hypot(x, y)``: sqrt(x*x + y*y) without overflow or underflow on the way (floats).")
isnan = _math("isnan", "Whether x is NaN (floats); returns bool.")
isinf = _math("isinf", "Whether x is +inf or -inf (floats); returns bool.")
isfinite = _math("isfinite", "Whether x is neither NaN nor infinite (floats); returns bool.")
popcount = _math("popcount", "The number of set bits of an integer, in its type (exact).")
clz = _math("clz", "Leading zero bits of an integer's bit pattern, in its type; its width for 0.")
ctz = _math("ctz", "Trailing zero bits of an integer's bit pattern, in its type; its width for 0.")
