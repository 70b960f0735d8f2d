"""Which ``for`` loops run "work-items innermost": once per work-group, the work-item loop inside.

A work-item's own loop, run work-item after work-item, strides through memory and never
vectorises. Interchanged, each trip runs a phase over all work-items (a straight-line lane
loop that gcc vectorises across work-items), and each work-item still performs its own
iterations in its own order, so results are bit-identical. Two kinds qualify:

* *uniform* loops: start, stop and step the same for every work-item of the group (a k-loop);
* *lane-varying* loops: uniform stop and step, a start that differs per work-item (a grid-stride
  loop ``range(global_id(0), n, global_size(0))``). The group runs the largest trip count; on
  trip ``t`` a work-item is active (a mask, which gcc turns into masked vector operations)
  while ``start + t * step`` is still inside its range. Its start is recomputed in the lane loop
  (so an index like ``gid + t * stride`` stays affine), hence it may read no memory and no
  variable the loop changes. When its body is a single phase the emitter strip-mines it: each
  strip of consecutive work-items runs all its trips with its variables in registers, and so
  does a uniform loop with a short constant trip count (:func:`constant_trips`).

Both need a body without barriers, ``while``, ``break``/``continue``/``return`` or atomics (whose
order across work-items is defined); nested ``for`` loops directly in the body qualify when
they do themselves. Everything else runs work-item by work-item, as before.
"""

from __future__ import annotations

from . import ir
from .analysis import Uniformity
from .types import ScalarType

_BLOCKING = (ir.Barrier, ir.While, ir.Break, ir.Continue, ir.Return, ir.AtomicRMW, ir.Collective)


def interchangeable(s: ir.Stmt, uniform: Uniformity, types: dict[str, ScalarType]) -> bool:
    """Whether ``s`` is a ``for`` loop that may run once per work-group with work-items innermost."""
    if not isinstance(s, ir.For) or not _simple_body(s.body, uniform, types):
        return False
    return all(uniform.is_uniform(e) for e in (s.start, s.stop, s.step)) or lane_varying(s, uniform, types)


def lane_varying(s: ir.For, uniform: Uniformity, types: dict[str, ScalarType]) -> bool:
    """A ``for`` with uniform stop and step whose start differs per work-item but can be recomputed
    on every trip: it reads no memory, neither the loop variable nor anything the body assigns.
    32-bit loop variables only: ``start + t * step`` is then exact in int64."""
    if uniform.is_uniform(s.start) or types[s.var].bits != 32:
        return False
    if not (uniform.is_uniform(s.stop) and uniform.is_uniform(s.step)):
        return False
    changed = _assigned(s.body) | {s.var}
    return _recomputable(s.start, changed)


def constant_trips(s: ir.For, var_type: ScalarType) -> int | None:
    """The trip count of ``s`` when its bounds are constants of its variable's type (no conversion
    to mirror) and its step is nonzero, else None."""
    bounds = (s.start, s.stop, s.step)
    if not all(isinstance(e, ir.Const) and e.type == var_type for e in bounds):
        return None
    start, stop, step = (int(e.value) for e in bounds if isinstance(e, ir.Const))
    return len(range(start, stop, step)) if step else None


def _simple_body(body: tuple[ir.Stmt, ...], uniform: Uniformity, types: dict[str, ScalarType]) -> bool:
    for st in body:
        if isinstance(st, ir.For):
            if not interchangeable(st, uniform, types):
                return False
        elif any(isinstance(x, (*_BLOCKING, ir.For)) for x in ir.walk_statements((st,))):
            return False
    return True


def _assigned(body: tuple[ir.Stmt, ...]) -> set[str]:
    out: set[str] = set()
    for st in ir.walk_statements(body):
        if isinstance(st, ir.Assign):
            out.add(st.target)
        elif isinstance(st, ir.For):
            out.add(st.var)
    return out


def _recomputable(e: ir.Expr, changed: set[str]) -> bool:
    if isinstance(e, ir.Load) or (isinstance(e, ir.Var) and e.name in changed):
        return False
    return all(_recomputable(c, changed) for c in ir.children(e))
