"""Ring collectives among remote devices: the data moves worker to worker, never through the driver.

The driver plans every step and submits them all at once as a dataflow of actor calls:
step k of rank r takes the chunk that rank r-1 returned at step k-1 (an ObjectRef: Ray moves
the bytes from one worker's object store to the other's) and the token of its own step k-1
(so a rank's steps run in order). Each rank's data is split into n chunks.

* ``all_reduce``: reduce-scatter then all-gather around the ring; each rank sends and
  receives 2(n-1)/n of the data, the least any algorithm moves, and every rank ends with the
  same bits (each chunk is reduced once, in one place, then copied). Two ranks simply swap
  their arrays: the same bytes in one step.
* ``reduce_scatter`` and ``all_gather``: one of those two halves.
* ``broadcast``: a chain from the root, pipelined in n chunks.

A rank whose worker dies fails every step that depends on it, so no step waits forever; the
others drop what they hold of the collective.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from hal.backend import DeviceFault

from ._cluster import SLICE
from ._device import RemoteDevice

if TYPE_CHECKING:
    from hal.backend import ArgBuffer
    from hal.collective import CollectiveCall

_ids = itertools.count(1)


def parts(kind: str, n: int) -> int:
    """Chunks each rank's data is split into: one per rank, except for an all-reduce of two ranks,
    which swap whole arrays (the bytes of a ring with one step fewer; a + b == b + a, so both
    still end with the same bits)."""
    return 1 if kind == "all_reduce" and n == 2 else n


def sends(kind: str, n: int, pos: int) -> list[int | None]:
    """The chunk that ring position ``pos`` sends to the next position at each step (None: none)."""
    if parts(kind, n) == 1:
        return [0] if n > 1 else []
    reduce_scatter = [(pos - s - 1) % n for s in range(n - 1)]  # position p ends owning chunk p
    all_gather = [(pos - s) % n for s in range(n - 1)]
    if kind == "all_reduce":
        return [*reduce_scatter, *all_gather]
    if kind == "reduce_scatter":
        return [*reduce_scatter]
    if kind == "all_gather":
        return [*all_gather]
    return [s - pos if pos < n - 1 and 0 <= s - pos < n else None for s in range(2 * n - 2)]  # broadcast


def plan(kind: str, op: str, n: int, rank: int, root: int = 0) -> list[tuple[tuple[int, str] | None, int | None]]:
    """Per call of rank ``rank``: (chunk to receive from the previous rank and how to combine it,
    chunk to send), for calls 0..T where T is the number of steps. The ring starts at ``root``
    for a broadcast, at rank 0 otherwise (rank r then ends owning chunk r)."""
    pos = (rank - root) % n if kind == "broadcast" else rank
    mine, theirs = sends(kind, n, pos), sends(kind, n, (pos - 1) % n)
    steps = len(mine)
    out: list[tuple[tuple[int, str] | None, int | None]] = []
    for k in range(steps + 1):
        got = theirs[k - 1] if k else None
        combine = op if kind == "reduce_scatter" or (kind == "all_reduce" and k - 1 < n - 1) else "copy"
        out.append(((got, combine) if got is not None else None, mine[k] if k < steps else None))
    return out


def collective(call: CollectiveCall) -> list[int] | None:
    """The hook (see ``hal.collective.CollectiveBackend``); None when a device is not remote."""
    devices = call.devices
    if not all(isinstance(d, RemoteDevice) for d in devices):
        return None
    workers: list[RemoteDevice] = list(devices)  # type: ignore[arg-type]
    for dev in workers:
        if dev.dead is not None:
            raise dev.gone()
    if call.compress is not None:
        from ._compressed import all_reduce

        return all_reduce(call, workers)
    n, item = len(workers), call.dtype.itemsize
    cid = next(_ids)
    outs: list[Any] = [None] * n
    tokens: list[Any] = [None] * n
    plans = [plan(call.kind, call.op, n, r, call.root) for r in range(n)]
    for k in range(len(plans[0])):
        step_outs, step_tokens = [], []
        for r, dev in enumerate(workers):
            recv, send = plans[r][k]
            step = (_opening(call, r) if k == 0 else None, recv, send, k == len(plans[r]) - 1)
            incoming = outs[(r - 1) % n] if recv is not None else None
            out, token = dev.worker.collective.options(num_returns=2).remote(cid, step, incoming, tokens[r])
            step_outs.append(out)
            step_tokens.append(token)
        outs, tokens = step_outs, step_tokens
    _wait(workers, tokens, cid)
    elements, count = (call.outputs[0].size if call.kind == "all_gather" else call.inputs[0].size), parts(call.kind, n)
    size = [elements // count + (i < elements % count) for i in range(count)]  # np.array_split's chunks
    moved = []
    for steps in plans:
        chunks = [recv[0] for recv, _ in steps if recv] + [send for _, send in steps if send is not None]
        moved.append(item * sum(size[c] for c in chunks))
    return moved


def _opening(call: CollectiveCall, rank: int) -> tuple[Any, ...]:
    """How rank ``rank`` starts (see ``Worker._open_collective``)."""
    start = {"all_reduce": "dst", "reduce_scatter": "src", "all_gather": "none",
             "broadcast": "dst" if rank == call.root else "none"}[call.kind]
    return (start, _region(call.inputs[rank], call.dtype.itemsize), _region(call.outputs[rank], call.dtype.itemsize),
            call.dtype.str, parts(call.kind, len(call.devices)), rank if call.kind == "all_gather" else None,
            rank if call.kind == "reduce_scatter" else None)


def _region(arg: ArgBuffer, itemsize: int) -> tuple[int, int, int]:
    return (arg.buffer.handle, arg.offset, arg.size * itemsize)


def _wait(workers: Sequence[RemoteDevice], tokens: list[Any], cid: int) -> None:
    """Wait for every rank's last step (in slices: Ctrl-C works). A failure is the DeviceFault of
    a device whose worker died, else of the first step that failed."""
    ray = workers[0].ray
    pending = list(tokens)
    while pending:
        _, pending = ray.wait(pending, num_returns=len(pending), timeout=SLICE)
    failed: list[tuple[RemoteDevice, Exception]] = []
    for dev, token in zip(workers, tokens):
        try:
            ray.get(token)
        except Exception as exc:
            failed.append((dev, exc))
    if not failed:
        return
    lost = [dev.kill(exc) for dev, exc in failed if not _alive(dev)]
    for dev in workers:
        if dev.dead is None:
            dev.worker.collective_abort.remote(cid)
    first, cause = failed[0]
    raise (lost[0] if lost else DeviceFault(f"{first.name}: a collective failed: {cause}")) from cause


def _alive(dev: RemoteDevice) -> bool:
    """Whether the device's worker still answers (a step fails with the error of the rank it
    depends on, so the error alone does not say whose worker died)."""
    try:
        dev.ray.get(dev.worker.release.remote([], []))
    except Exception:
        return False
    return True
