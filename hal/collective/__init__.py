"""Collectives over arrays on several devices, one array per device, local or remote.

``all_reduce(arrays, op)`` in place, ``broadcast(arrays, root)``, ``all_gather(arrays, out)``
and ``reduce_scatter(arrays, out, op)``, with NCCL's meaning (the data of ``all_gather`` and
``reduce_scatter`` is laid out flat, rank by rank, in C order). ``all_reduce(..., compress="int8"
| "int4", residuals=...)`` sends block-scaled integer codes with error feedback; ``compression``
holds the codec and the steps, which a backend's own compressed all-reduce runs to give the
same bits.

A collective is a synchronisation point, like a host read followed by a creation function:
it sees every write enqueued on the arrays' devices before the call, and when it returns its
results are in place and ready on every queue (rules 1 and 2 of docs/memory-model.md).

It runs on any devices through the public API, through the host. A backend may move the data
itself, between its own devices (the remote backend does, worker to worker): see
:class:`CollectiveBackend`.
"""

from . import _compress as compression
from ._api import all_gather, all_reduce, broadcast, reduce_scatter
from ._hook import CollectiveBackend, CollectiveCall

__all__ = ["CollectiveBackend", "CollectiveCall", "all_gather", "all_reduce", "broadcast", "compression",
           "reduce_scatter"]
