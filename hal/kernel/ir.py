"""The typed kernel IR: the exchange format between the language and every backend.

Structured (no SSA, no gotos) so that an emitter prints it almost line for
line and an interpreter walks it with masks. Every node is a frozen
dataclass; every expression carries its :class:`ScalarType`; every statement
carries the source line it came from (for compile errors and device faults).

Semantics that every backend implements exactly (the reference interpreter
in :mod:`hal.kernel.interpreter` defines them):

* Integer arithmetic wraps (two's complement). ``floordiv`` and ``mod`` have
  Python's floor meaning for negative operands; an integer ``floordiv`` or
  ``mod`` by zero gives 0. ``div`` is float-only. ``shl``/``shr`` take the
  shift count modulo the bit width; ``shr`` is arithmetic for signed types.
* Float arithmetic is IEEE round-to-nearest, no contraction into FMA (only
  the ``fma`` call fuses), no fast-math. ``min``/``max`` propagate NaN like
  ``numpy.minimum``/``numpy.maximum``. ``mod`` on floats is Python's (sign of
  the divisor).
* ``and``/``or`` short-circuit and ``Select`` evaluates only the chosen side.
* Loads and stores out of the buffer's bounds are a ``DeviceFault`` where a
  backend checks them (always on simulated devices).
* ``Barrier`` must be reached by every thread of the work-group, or by none.
* Atomics return the old value; concurrent atomics on one address are applied
  in the reference order: increasing ``linear group id * threads per group +
  linear local id``, where linear ids run x fastest (``x + X * (y + Y * z)``).
  For a 1-D launch that is ``global_id(0)``. Duplicate plain stores: the last
  thread in that order wins (other backends may pick any writer: a race).
* Integer ``pow`` with a negative exponent truncates the real result toward
  zero. Float-to-int casts of NaN or out-of-range values are unspecified,
  except to the 8/16-bit integers: the float truncates to ``i32`` (unspecified
  outside its range) and then wraps.
* Subgroups (see :class:`Collective`): a backend compiles a kernel for one
  subgroup size ``S`` (a power of two, the device's ``DeviceInfo.subgroup_size``).
  Work-item of linear local id ``l`` is lane ``l % S`` of subgroup ``l // S``; the
  last subgroup of a work-group holds ``threads per group % S`` lanes when that
  is not zero.
* Narrow types (``f16 bf16 i8 u8 i16 u16``) are storage only: they appear in
  parameters, buffers, variables, constants, loads, stores and ``Cast``; a
  ``Unary``, ``Binary`` or ``Call`` never computes in one (the frontend
  promotes operands to ``f32``/``i32``). ``f16``/``bf16`` widen exactly; a
  cast *to* ``f16`` or ``bf16`` rounds the exact source value once to nearest
  even (from ``f64`` or an integer too: never through ``f32``); NaN stays NaN
  with its sign. ``u64`` is a full integer type.

Bump :data:`IR_VERSION` on any change a backend could observe.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from .types import ScalarType

IR_VERSION = 3

Space = Literal["global", "shared", "local"]
"""Where a buffer lives: a pointer parameter, work-group memory, or a per-thread array."""

BINARY_OPS = (
    "add", "sub", "mul", "div", "floordiv", "mod", "pow",
    "bitand", "bitor", "bitxor", "shl", "shr",
    "eq", "ne", "lt", "le", "gt", "ge",
    "and", "or",
)
"""Comparisons yield ``bool``; ``and``/``or`` take and yield ``bool`` and short-circuit."""

UNARY_OPS = ("neg", "not", "invert")
MATH_FUNCS = (
    "sqrt", "exp", "log", "sin", "cos", "tanh", "abs", "min", "max",
    "floor", "ceil", "fma", "pow",
    "erf", "erfc", "exp2", "log2", "log10", "log1p", "expm1", "rsqrt", "tan", "asin", "acos", "atan", "atan2",
    "sinh", "cosh", "trunc", "round", "copysign", "hypot", "isnan", "isinf", "isfinite",
)
"""A ``Call`` computes in its ``type`` (arguments of that type), except :data:`PREDICATES`. The accuracy
each backend owes per function is :data:`hal.kernel.accuracy.ACCURACY`."""
BIT_FUNCS = ("popcount", "clz", "ctz")
"""Integer calls, exact, in the operand's type ``T``: set bits, leading and trailing zero bits of
its ``T.bits``-bit pattern (``clz(0)`` and ``ctz(0)`` are ``T.bits``)."""
PREDICATES = ("isnan", "isinf", "isfinite")
"""Calls whose ``type`` is ``bool``; the argument keeps its float type."""
THREAD_INDICES = ("global_id", "local_id", "group_id", "local_size", "num_groups", "global_size")
SUBGROUP_INDICES = ("subgroup_size", "subgroup_local_id")
"""Thread indices of the subgroup (always ``dim`` 0): ``S``, and this work-item's lane ``l % S``."""
ATOMIC_OPS = ("add", "min", "max", "exchange", "cas", "and", "or", "xor")
BITWISE_ATOMICS = ("and", "or", "xor")
"""Atomics of integers only: ``p[i] = p[i] & v`` (``|``, ``^``)."""
REDUCE_OPS = ("reduce_add", "reduce_max", "reduce_min")
SHUFFLE_OPS = ("shuffle", "shuffle_xor", "shuffle_up", "shuffle_down")
"""Collectives of ``(value, i32)``: the lane, or the mask / distance that names it."""
VOTE_OPS = ("any", "all", "ballot")
"""Collectives of a ``bool``: ``any``/``all`` give a ``bool``, ``ballot`` a ``u64`` of lane bits."""
SCAN_OPS = ("scan_inclusive_add", "scan_exclusive_add")
COLLECTIVE_OPS = {"subgroup": (*SHUFFLE_OPS, *REDUCE_OPS, *VOTE_OPS, *SCAN_OPS), "group": REDUCE_OPS}
"""The operations of a :class:`Collective`, by scope."""
MEMORY_ORDERS = ("relaxed", "acquire", "release", "acq_rel", "seq_cst")
"""C11's memory orders, for :class:`AtomicRMW` (``order``); see docs/memory-model.md."""
FENCE_SCOPES = ("group", "device")
"""Who a :class:`Fence` orders memory for: the work-group, or every work-item of the device."""


# ----------------------------------------------------------------- expressions
@dataclass(frozen=True)
class Const:
    value: int | float | bool
    type: ScalarType


@dataclass(frozen=True)
class Var:
    """A scalar: a parameter, a local variable or a loop variable."""

    name: str
    type: ScalarType


@dataclass(frozen=True)
class Load:
    buffer: str
    space: Space
    index: Expr
    type: ScalarType


@dataclass(frozen=True)
class Unary:
    op: str
    operand: Expr
    type: ScalarType


@dataclass(frozen=True)
class Binary:
    op: str
    lhs: Expr
    rhs: Expr
    type: ScalarType


@dataclass(frozen=True)
class Select:
    """``a if cond else b``: only the chosen side is evaluated."""

    cond: Expr
    if_true: Expr
    if_false: Expr
    type: ScalarType


@dataclass(frozen=True)
class Cast:
    value: Expr
    type: ScalarType


@dataclass(frozen=True)
class Call:
    """A math function from :data:`MATH_FUNCS` or a bit function from :data:`BIT_FUNCS`."""

    func: str
    args: tuple[Expr, ...]
    type: ScalarType


@dataclass(frozen=True)
class ThreadIndex:
    """One of :data:`THREAD_INDICES` in dimension 0, 1 or 2, or of :data:`SUBGROUP_INDICES`
    (dimension 0); always ``i32``."""

    kind: str
    dim: int
    type: ScalarType = ScalarType.I32


Expr = Const | Var | Load | Unary | Binary | Select | Cast | Call | ThreadIndex


def call_type(call: Call) -> ScalarType:
    """The type a math ``Call`` computes in: its ``type``, or for a predicate its argument's."""
    return call.args[0].type if call.func in PREDICATES and call.args else call.type


# ------------------------------------------------------------------ statements
@dataclass(frozen=True)
class Assign:
    target: str
    value: Expr
    line: int


@dataclass(frozen=True)
class Store:
    buffer: str
    space: Space
    index: Expr
    value: Expr
    line: int


@dataclass(frozen=True)
class AtomicRMW:
    """``result = hal.atomic_<op>(buffer, index, *operands)``; ``result`` may be None.

    ``cas`` takes ``(compare, value)`` and stores ``value`` where the old value
    equals ``compare``; the others take one operand. ``order`` is one of :data:`MEMORY_ORDERS`
    with C11's meaning at device scope: ``acquire`` (and stronger) makes what the thread that
    released the value wrote before visible to this thread's later loads; ``release`` (and
    stronger) publishes this thread's earlier stores to whoever acquires the value.
    """

    op: str
    buffer: str
    space: Space
    index: Expr
    operands: tuple[Expr, ...]
    result: str | None
    type: ScalarType
    line: int
    order: str = "relaxed"


@dataclass(frozen=True)
class If:
    cond: Expr
    then: tuple[Stmt, ...]
    orelse: tuple[Stmt, ...]
    line: int


@dataclass(frozen=True)
class For:
    """``for var in range(start, stop, step)``: bounds and step evaluated once.

    A zero step is a ``DeviceFault``; a negative step counts down as in Python.
    """

    var: str
    start: Expr
    stop: Expr
    step: Expr
    body: tuple[Stmt, ...]
    line: int


@dataclass(frozen=True)
class While:
    cond: Expr
    body: tuple[Stmt, ...]
    line: int


@dataclass(frozen=True)
class Break:
    line: int


@dataclass(frozen=True)
class Continue:
    line: int


@dataclass(frozen=True)
class Return:
    """Bare return: the thread finishes."""

    line: int


@dataclass(frozen=True)
class Barrier:
    line: int


@dataclass(frozen=True)
class Fence:
    """``hal.fence(scope)``: a sequentially consistent fence (C11 ``atomic_thread_fence(seq_cst)``)
    for the work-items of ``scope`` (:data:`FENCE_SCOPES`). It orders this work-item's memory
    accesses; unlike :class:`Barrier` it waits for nobody and may sit in divergent control flow."""

    scope: str
    line: int


@dataclass(frozen=True)
class Collective:
    """``result = hal.<scope>_<op>(*args)``: a value exchanged between the work-items of a subgroup
    (``scope="subgroup"``) or of the whole work-group (``"group"``).

    Like :class:`Barrier`, every work-item of the subgroup (of the work-group) reaches it, or none.
    ``args`` is ``(value,)`` for the reductions, votes and scans and ``(value, lane)`` /
    ``(value, mask)`` / ``(value, delta)`` (``i32``) for :data:`SHUFFLE_OPS`; ``type`` is the value's
    and the result's type, except for a vote (value ``bool``; ``any``/``all`` give ``bool``,
    ``ballot`` gives ``u64``).

    * ``shuffle``: the value of lane ``lane`` of this subgroup; ``shuffle_xor``: of lane
      ``subgroup_local_id ^ mask``; ``shuffle_up``: of lane ``subgroup_local_id - delta``;
      ``shuffle_down``: of lane ``subgroup_local_id + delta``. A lane outside ``[0, lanes of this
      subgroup)`` (negative, ``>= S``, or missing from a partial last subgroup) gives the work-item its
      *own* value (CUDA's ``__shfl_up/down_sync``). A ``mask``/``delta`` outside ``[0, S)`` means the
      kernel assumed another subgroup size: a ``DeviceFault`` where the backend checks it.
    * ``any``/``all``: whether the value is true in some / every lane of the subgroup; ``ballot``:
      bit ``i`` set for each lane ``i`` where it is true.
    * ``scan_inclusive_add``: lane ``i`` gets ``x[0] + ... + x[i]`` of its subgroup, combined in the
      fixed Hillis-Steele order (for ``s = 1, 2, 4, ...`` while ``s < S``: ``x[i] = x[i - s] + x[i]``
      for every lane ``i >= s``, all lanes at once); ``scan_exclusive_add``: lane ``i`` gets the
      inclusive result of lane ``i - 1``, and lane 0 gets 0.
    * ``reduce_add/max/min``: every work-item gets the reduction of the values of its subgroup (of
      its work-group), combined in one fixed tree over linear local ids ``0..n-1``: for ``s = 1, 2,
      4, ...`` while ``s < n``, ``x[i] = x[i] op x[i + s]`` for every ``i`` that is a multiple of
      ``2 s`` with ``i + s < n``; the result is ``x[0]``. ``op`` is the IR's ``add`` (wrapping for
      integers) or its NaN-propagating ``max``/``min``. Since subgroups are aligned runs of ``S``
      (a power of two) lanes, a group reduction equals this tree over the subgroup reductions, so
      every backend is bit-identical to the reference interpreter for a given ``S`` and group size.
    * A group collective is also a work-group barrier (shared memory is then visible).
    """

    scope: Literal["subgroup", "group"]
    op: str
    args: tuple[Expr, ...]
    result: str
    type: ScalarType
    line: int


Stmt = Assign | Store | AtomicRMW | If | For | While | Break | Continue | Return | Barrier | Fence | Collective


# --------------------------------------------------------------- declarations
@dataclass(frozen=True)
class Param:
    """A kernel parameter: a scalar, or (``pointer=True``) a global buffer of ``type``."""

    name: str
    type: ScalarType
    pointer: bool


@dataclass(frozen=True)
class ArrayDecl:
    """``hal.shared(type, size)`` (space ``shared``) or ``hal.local(type, size)`` (``local``)."""

    name: str
    type: ScalarType
    size: int
    space: Space


@dataclass(frozen=True)
class Kernel:
    """One kernel, after inlining every ``@hal.func``: what a backend compiles."""

    name: str
    params: tuple[Param, ...]
    variables: tuple[tuple[str, ScalarType], ...]
    """Every local scalar (loop variables and inliner temporaries included) and its type."""
    arrays: tuple[ArrayDecl, ...]
    body: tuple[Stmt, ...]
    source_file: str = ""
    source_line: int = 0
    version: int = IR_VERSION
    _hash: list[str] = field(default_factory=list, compare=False, repr=False)

    @property
    def shared_bytes(self) -> int:
        """Bytes of work-group memory one work-group needs."""
        return sum(a.size * a.type.np_dtype.itemsize for a in self.arrays if a.space == "shared")

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no whitespace): stable across processes."""
        return json.dumps(_encode(self), sort_keys=True, separators=(",", ":"))

    @staticmethod
    def from_json(text: str) -> Kernel:
        data = json.loads(text)
        if data.get("version") != IR_VERSION:
            raise ValueError(f"IR version {data.get('version')} is not this hal's IR_VERSION {IR_VERSION}")
        kernel = _decode(data)
        assert isinstance(kernel, Kernel)
        return kernel

    def hash(self) -> str:
        """SHA-256 of the canonical JSON: the cache key of compiled code."""
        if not self._hash:
            self._hash.append(hashlib.sha256(self.to_json().encode()).hexdigest())
        return self._hash[0]


_NODES: dict[str, type] = {
    cls.__name__: cls
    for cls in (Const, Var, Load, Unary, Binary, Select, Cast, Call, ThreadIndex, Assign, Store,
                AtomicRMW, If, For, While, Break, Continue, Return, Barrier, Fence, Collective, Param, ArrayDecl,
                Kernel)
}


def _encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {"node": type(value).__name__}
        for f in dataclasses.fields(value):
            if f.name.startswith("_"):
                continue
            out[f.name] = _encode(getattr(value, f.name))
        return out
    if isinstance(value, ScalarType):
        return value.value
    if isinstance(value, tuple):
        return [_encode(v) for v in value]
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return {"float": repr(value)}
    return value


def _decode(value: Any, hint: str = "") -> Any:
    if isinstance(value, dict) and "float" in value and len(value) == 1:
        return float(value["float"])
    if isinstance(value, dict):
        cls = _NODES[value["node"]]
        kwargs = {}
        for f in dataclasses.fields(cls):
            if f.name.startswith("_") or f.name not in value:
                continue
            kwargs[f.name] = _decode(value[f.name], f.name)
        return cls(**kwargs)
    if isinstance(value, list):
        if hint == "variables":
            return tuple((name, ScalarType(t)) for name, t in value)
        return tuple(_decode(v) for v in value)
    if hint == "type" and isinstance(value, str):
        return ScalarType(value)
    return value


def walk_statements(body: tuple[Stmt, ...]) -> Any:
    """Every statement of a body, nested ones included, in source order."""
    for stmt in body:
        yield stmt
        if isinstance(stmt, If):
            yield from walk_statements(stmt.then)
            yield from walk_statements(stmt.orelse)
        elif isinstance(stmt, (For, While)):
            yield from walk_statements(stmt.body)


def children(expr: Expr) -> tuple[Expr, ...]:
    """The direct sub-expressions of an expression."""
    if isinstance(expr, Unary):
        return (expr.operand,)
    if isinstance(expr, Binary):
        return (expr.lhs, expr.rhs)
    if isinstance(expr, Select):
        return (expr.cond, expr.if_true, expr.if_false)
    if isinstance(expr, Cast):
        return (expr.value,)
    if isinstance(expr, Call):
        return expr.args
    if isinstance(expr, Load):
        return (expr.index,)
    return ()


def statement_expressions(stmt: Stmt) -> tuple[Expr, ...]:
    """The expressions a statement evaluates itself (not those of nested statements)."""
    if isinstance(stmt, Assign):
        return (stmt.value,)
    if isinstance(stmt, Store):
        return (stmt.index, stmt.value)
    if isinstance(stmt, AtomicRMW):
        return (stmt.index, *stmt.operands)
    if isinstance(stmt, Collective):
        return stmt.args
    if isinstance(stmt, (If, While)):
        return (stmt.cond,)
    if isinstance(stmt, For):
        return (stmt.start, stmt.stop, stmt.step)
    return ()


def json_schema() -> dict[str, Any]:
    """The published JSON schema of the IR (draft 2020-12), generated from the node classes."""
    defs: dict[str, Any] = {}
    for name, cls in _NODES.items():
        props: dict[str, Any] = {"node": {"const": name}}
        required = ["node"]
        for f in dataclasses.fields(cls):
            if f.name.startswith("_"):
                continue
            props[f.name] = _schema_of(f.name, str(f.type))
            if f.default is dataclasses.MISSING:
                required.append(f.name)
        defs[name] = {"type": "object", "properties": props, "required": required,
                      "additionalProperties": False}
    expr = {"oneOf": [{"$ref": f"#/$defs/{n}"} for n in
                      ("Const", "Var", "Load", "Unary", "Binary", "Select", "Cast", "Call", "ThreadIndex")]}
    stmt = {"oneOf": [{"$ref": f"#/$defs/{n}"} for n in
                      ("Assign", "Store", "AtomicRMW", "If", "For", "While", "Break", "Continue",
                       "Return", "Barrier", "Fence", "Collective")]}
    defs["Expr"] = expr
    defs["Stmt"] = stmt
    defs["ScalarType"] = {"enum": [t.value for t in ScalarType]}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://hal.dev/schemas/kernel-ir-v{IR_VERSION}.json",
        "title": f"hal kernel IR, version {IR_VERSION}",
        "$ref": "#/$defs/Kernel",
        "$defs": defs,
    }


def _schema_of(name: str, annotation: str) -> dict[str, Any]:
    if name == "type":
        return {"$ref": "#/$defs/ScalarType"}
    if name == "variables":
        return {"type": "array", "items": {"type": "array", "prefixItems": [
            {"type": "string"}, {"$ref": "#/$defs/ScalarType"}], "minItems": 2, "maxItems": 2}}
    if "tuple[Stmt" in annotation:
        return {"type": "array", "items": {"$ref": "#/$defs/Stmt"}}
    if "tuple[Expr" in annotation:
        return {"type": "array", "items": {"$ref": "#/$defs/Expr"}}
    if "tuple[Param" in annotation:
        return {"type": "array", "items": {"$ref": "#/$defs/Param"}}
    if "tuple[ArrayDecl" in annotation:
        return {"type": "array", "items": {"$ref": "#/$defs/ArrayDecl"}}
    if annotation == "Expr":
        return {"$ref": "#/$defs/Expr"}
    if name == "space":
        return {"enum": ["global", "shared", "local"]}
    if name == "scope":
        return {"enum": list(COLLECTIVE_OPS)}
    if name == "value":
        return {"oneOf": [{"type": ["integer", "number", "boolean"]},
                          {"type": "object", "properties": {"float": {"type": "string"}}}]}
    if annotation in ("int",):
        return {"type": "integer"}
    if annotation == "bool":
        return {"type": "boolean"}
    if annotation == "str | None":
        return {"type": ["string", "null"]}
    return {"type": "string"}
