"""The portable path: every array through the host with public calls only, so it works on any
devices of any backends. Reductions run in rank order, so every device gets the same bits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

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


def _put(arr: Array, host: np.ndarray) -> None:
    arr.device.default_queue.copy(arr, np.ascontiguousarray(host).reshape(arr.shape))
