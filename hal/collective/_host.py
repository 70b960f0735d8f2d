"""The portable path: every array through the host with public calls only, so it works on any
devices of any backends. Reductions run in rank order, so every device gets the same bits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from . import _compress

if TYPE_CHECKING:
    from .._memory import Array
    from ._hook import Kind

REDUCE = {"sum": np.add, "max": np.maximum, "min": np.minimum}


def run(kind: Kind, inputs: Sequence[Array], outputs: Sequence[Array], op: str, root: int) -> list[int]:
    """Run the collective; the bytes each device sent and received (to and from the host)."""
    nbytes = inputs[0].nbytes
    if kind == "broadcast":
        data = inputs[root].numpy()
        for i, a in enumerate(inputs):
            if i != root:
                _put(a, data)
        return [nbytes] * len(inputs)
    hosts = [a.numpy() for a in inputs]
    if kind == "all_gather":
        result = np.concatenate([h.reshape(-1) for h in hosts])
    else:
        result = hosts[0].copy()
        for h in hosts[1:]:
            REDUCE[op](result, h, out=result)
    if kind == "reduce_scatter":
        flat, part = result.reshape(-1), outputs[0].size
        for i, out in enumerate(outputs):
            _put(out, flat[i * part:(i + 1) * part])
    else:
        for out in outputs:
            _put(out, result)
    return [nbytes + out.nbytes for out in outputs]


def run_compressed(inputs: Sequence[Array], residuals: Sequence[Array], scheme: str) -> list[int]:
    """The compressed all-reduce (``_compress``), run on host copies. The codes never cross a
    wire here: each device sends and receives its values and residual at full precision, and
    that is what the bytes count."""
    n, dtype = len(inputs), inputs[0].dtype
    data = [a.numpy().reshape(-1) for a in inputs]
    kept: list[np.ndarray | None] = [r.numpy().reshape(-1).copy() for r in residuals] or [None] * n
    contributions = [_compress.contribute(d, r, n, scheme) for d, r in zip(data, kept)]
    reduced = [_compress.reduce_part([c[j] for c in contributions], _compress.own_part(kept[j], n, j), dtype)
               for j in range(n)]
    result = np.empty_like(data[0])
    _compress.assemble(reduced, result)
    for a in inputs:
        _put(a, result)
    for r, host in zip(residuals, kept):
        assert host is not None
        _put(r, host)
    return [2 * a.nbytes * (2 if residuals else 1) for a in inputs]


def _put(arr: Array, host: np.ndarray) -> None:
    arr.device.default_queue.copy(arr, np.ascontiguousarray(host).reshape(arr.shape))
