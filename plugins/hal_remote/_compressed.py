"""The compressed all-reduce among remote devices, worker to worker (``hal.collective.compression``
is the algorithm; this plans it as a dataflow of actor calls, like the ring in ``_collective``).

Three rounds, all submitted at once: every rank encodes its n parts (n return objects: Ray moves
part j straight to rank j's worker); rank j reduces the n encodings of part j; every rank
decodes the n encoded sums. Only encoded bytes travel. A dead rank fails every step that
depends on it, and the collective ends with the DeviceFault naming it (``_collective._wait``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hal.collective import compression

from ._collective import _ids, _region, _wait
from ._device import RemoteDevice

if TYPE_CHECKING:
    from hal.collective import CollectiveCall


def all_reduce(call: CollectiveCall, workers: list[RemoteDevice]) -> list[int]:
    """Run it; the encoded bytes each rank sent and received."""
    assert call.compress is not None
    n, item, scheme = len(workers), call.dtype.itemsize, call.compress
    cid = next(_ids)
    residuals: list[Any] = [_region(r, item) for r in call.residuals] or [None] * n
    encoded = [dev.worker.compressed_encode.options(num_returns=n).remote(
        cid, r, _region(call.inputs[r], item), residuals[r], call.dtype.str, n, scheme)
        for r, dev in enumerate(workers)]
    reduced = [dev.worker.compressed_reduce.remote(cid, j, *(parts[j] for parts in encoded))
               for j, dev in enumerate(workers)]
    tokens = [dev.worker.compressed_decode.remote(cid, *reduced) for dev in workers]
    _wait(workers, tokens, cid)
    return compression.moved(call.inputs[0].size, n, scheme)
