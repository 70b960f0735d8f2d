"""The reference interpreter: runs the IR with numpy, vectorised over threads.

It defines the semantics every backend is tested against (see :mod:`hal.kernel.ir`),
and the simulated devices execute kernels with it.

How it runs a launch:

* Work-groups are executed in chunks of whole groups, in increasing linear group
  id, so memory stays bounded (about ``chunk_threads`` threads at a time). Within a
  chunk, every thread executes each statement before any thread executes the next
  one (lockstep), with boolean masks for divergence; a loop iterates until no thread
  of the chunk is active. Barriers are therefore exact: one only checks that, in each
  work-group, all threads or none arrive.
* Threads are ordered by linear global thread id: linear group id (x fastest) times
  threads per group plus linear local id (x fastest); for a 1-D launch that is
  ``global_id(0)``. This reference order resolves conflicts: a store to one address
  by several threads keeps the value of the last of them, and colliding atomics are
  applied one after the other in this order, each thread getting the old value it
  saw (:func:`hal.kernel._interp_ops.atomic`).
* Shared arrays hold one row per work-group and local arrays one row per thread;
  they, and scalar variables read before any assignment, start at zero (a kernel
  must not rely on that: other backends leave them undefined).
* Collectives (:class:`~hal.kernel.ir.Collective`) follow the subgroup size the
  caller passes (the device's): see :mod:`hal.kernel._interp_collective`. A subgroup
  (work-group) that only partly reaches one is a fault, like a divergent barrier.
* Faults (out-of-bounds access, zero ``range`` step, divergent barrier) raise
  :class:`hal.DeviceFault` naming kernel, file:line, buffer, index and thread; the
  launch stops there and writes already done stay done.

Integer pow with a negative exponent, which the IR leaves open, gives the real
result truncated toward zero; float -> integer casts of NaN or out-of-range values
give whatever numpy's ``astype`` gives (C leaves them undefined).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from threading import Lock
from typing import Any, Protocol

import numpy as np

from .._errors import DeviceFault, InvalidArgumentError
from . import ir
from ._interp_chunk import Chunk, Launch, linear_thread_id
from ._interp_compile import ABORT, Program, compile_kernel
from ._interp_ops import const
from .types import ScalarType

__all__ = ["ABORT", "Tracer", "run", "linear_thread_id"]

_MEMORY_BUDGET = 256 << 20
"""Bytes of shared and local arrays one chunk may allocate; chunks shrink to fit."""


class Tracer(Protocol):
    """What a timing model or race detector sees of an interpreted launch.

    Every array argument has one element per thread of the current chunk, in the
    chunk's thread order (see :meth:`begin_chunk`); ``mask`` is True for the threads
    that execute the instruction. Arrays are read-only views, valid during the call.
    Calls come in execution order: an instruction's operands before the instruction.
    """

    def begin_chunk(self, group_ids: np.ndarray, threads_per_group: int) -> None:
        """A new chunk starts: ``group_ids`` are the linear ids of its work-groups, ascending.

        Chunk thread ``t`` is local linear id ``t % threads_per_group`` of work-group
        ``group_ids[t // threads_per_group]``; warps are runs of 32 consecutive local
        linear ids within a group.
        """

    def op(self, line: int, name: str, type: ScalarType, mask: np.ndarray) -> None:
        """One instruction: a ``Binary``/``Unary`` op name (``"add"``, ``"lt"``, ``"and"``, ...),
        a math function (``"sqrt"``, ``"fma"``, ...), ``"cast"``, ``"select"``, or ``"branch"`` (the
        condition of an ``if``, and one per iteration of a loop, for-loops included).

        ``type`` is the type the instruction computes in: the operands' type for a
        comparison, the result type otherwise (the target type for a cast).
        """

    def memory(self, line: int, space: str, buffer: str, index: np.ndarray, mask: np.ndarray,
               store: bool, itemsize: int) -> None:
        """A load or store of ``buffer`` in ``space`` (``"global"``, ``"shared"``, ``"local"``).

        ``index`` is the element index the kernel used: within the buffer for global
        memory, within the thread's work-group array for shared, within the thread's
        own array for local. Called after the bounds check passed.
        """

    def atomic(self, line: int, space: str, buffer: str, index: np.ndarray, mask: np.ndarray,
               itemsize: int) -> None:
        """An atomic read-modify-write; ``index`` as for :meth:`memory`."""

    def barrier(self, line: int, mask: np.ndarray) -> None:
        """A work-group barrier, reached by the threads in ``mask`` (called before it is checked).

        A work-group collective (``hal.group_reduce_*``) is a barrier too and is reported here as
        well. A tracer may also define ``collective(line, scope, op, type, mask)`` (optional, found
        with ``getattr``): called for every :class:`~hal.kernel.ir.Collective`, after ``barrier``
        for a group one; ``scope`` is ``"subgroup"`` or ``"group"``, ``op`` the IR's op name.
        """


_PROGRAMS: OrderedDict[tuple[str, bool], Program] = OrderedDict()
_PROGRAMS_LOCK = Lock()
_PROGRAMS_MAX = 256


def _program(kernel: ir.Kernel, traced: bool) -> Program:
    """The compiled closures of ``kernel``, cached by IR hash (a small LRU shared by all devices)."""
    key = (kernel.hash(), traced)
    with _PROGRAMS_LOCK:
        program = _PROGRAMS.get(key)
        if program is not None:
            _PROGRAMS.move_to_end(key)
            return program
    program = compile_kernel(kernel, traced)
    with _PROGRAMS_LOCK:
        _PROGRAMS[key] = program
        while len(_PROGRAMS) > _PROGRAMS_MAX:
            _PROGRAMS.popitem(last=False)
    return program


def run(kernel: ir.Kernel, grid: tuple[int, int, int], block: tuple[int, int, int],
        args: Sequence[np.ndarray | int | float | bool], *, tracer: Tracer | None = None,
        chunk_threads: int = 1 << 16, subgroup_size: int = 1) -> None:
    """Execute ``kernel`` over ``grid`` work-groups of ``block`` threads.

    ``args`` follow ``kernel.params``: a 1-D array of the parameter's dtype for a
    pointer (device memory, modified in place), a number for a scalar.
    ``subgroup_size`` (a power of two) is the device's ``S`` of ``hal.subgroup_size()``
    and the collectives. Raises :class:`hal.DeviceFault` on a fault, and ``ValueError``
    for malformed IR.
    """
    grid, block = _dims("grid", grid, 0), _dims("block", block, 1)
    if not (isinstance(subgroup_size, int) and subgroup_size >= 1 and subgroup_size & (subgroup_size - 1) == 0):
        raise InvalidArgumentError(f"subgroup_size must be a power of two >= 1, got {subgroup_size!r}")
    if len(args) != len(kernel.params):
        raise InvalidArgumentError(f"kernel '{kernel.name}' takes {len(kernel.params)} arguments "
                                   f"({', '.join(p.name for p in kernel.params)}), got {len(args)}")
    program = _program(kernel, tracer is not None)
    buffers: dict[str, np.ndarray] = {}
    env: dict[str, Any] = dict(program.zeros)
    for param, arg in zip(kernel.params, args, strict=True):
        if param.pointer:
            if not (isinstance(arg, np.ndarray) and arg.ndim == 1 and arg.dtype == param.type.np_dtype):
                raise InvalidArgumentError(
                    f"argument '{param.name}' of kernel '{kernel.name}' must be a 1-D {param.type.np_dtype} "
                    f"array, got {type(arg).__name__} {getattr(arg, 'dtype', '')}")
            buffers[param.name] = arg
        else:
            env[param.name] = const(arg, param.type)[()]  # type: ignore[arg-type]
    tpg = block[0] * block[1] * block[2]
    per_group = tpg * sum(a.size * a.type.np_dtype.itemsize for a in kernel.arrays if a.space == "local")
    per_group += kernel.shared_bytes
    groups = 1 if program.spins else max(1, min(chunk_threads // tpg, _MEMORY_BUDGET // max(per_group, 1)))
    launch = Launch(kernel, grid, block, max(1, min(groups, grid[0] * grid[1] * grid[2])), subgroup_size)
    with np.errstate(all="ignore"):
        for g0 in range(0, launch.num_groups, launch.groups_per_chunk):
            g1 = min(g0 + launch.groups_per_chunk, launch.num_groups)
            chunk_buffers = dict(buffers)
            for a in kernel.arrays:
                rows = (g1 - g0) * (tpg if a.space == "local" else 1)
                chunk_buffers[a.name] = np.zeros(rows * a.size, a.type.np_dtype)
            stop = ABORT.get()
            if stop is not None and stop.is_set():
                raise DeviceFault(f"kernel '{kernel.name}' at {kernel.source_file or '<unknown>'}: aborted before "
                                  f"work-group {g0} (a synchronize(timeout=...) ran out, or Queue.abort())")
            chunk = Chunk(launch, g0, g1, dict(env), chunk_buffers, tracer)
            if tracer is not None:
                tracer.begin_chunk(np.arange(g0, g1), tpg)
            program.body(chunk, None)


def _dims(what: str, dims: Sequence[int], least: int) -> tuple[int, int, int]:
    if len(dims) != 3 or any(int(d) < least for d in dims):
        raise InvalidArgumentError(f"{what} must be three integers >= {least}, got {tuple(dims)}")
    return (int(dims[0]), int(dims[1]), int(dims[2]))
