"""The wire format between a remote device (driver process) and its worker (a Ray actor).

Commands are plain tuples of ints, floats and bytes, because pickle handles those fastest: a
queue of small commands costs a few microseconds each on the wire, not a round trip. The
first element is the opcode:

=========  ==============================================================
LAUNCH     ``(LAUNCH, exe_id, grid, block, args)``; a pointer argument is ``(buffer_id, offset, size)``
COPY       ``(COPY, dst_id, dst_offset, src_id, src_offset, nbytes)``
FILL       ``(FILL, buffer_id, offset, nbytes, pattern)``
WRITE      ``(WRITE, buffer_id, offset, data)``: ``data`` is bytes, or the index of a blob
READ       ``(READ, buffer_id, offset, nbytes)``: the bytes come back in the reply
RECORD     ``(RECORD, event_id)``
WAIT       ``(WAIT, event_id)``: an event of any queue of the device
TRACE      ``(TRACE, command, trace)``: the command, profiled (the trace comes back filled)
CLOSE      ``(CLOSE,)``: release the worker's queue once its work is done
GRAPH      ``(GRAPH, graph_id)``: replay a graph the worker holds (``define_graph``), all its nodes
=========  ==============================================================

A graph (``g.launch`` of ``with q.capture() as g``) is sent once, as the commands above
(LAUNCH, COPY, FILL, WRITE with inline data), by the actor call ``define_graph``; the worker
builds the hosted device's own form of it (its ``build_graph``), so a replay is one GRAPH
command, not one per node, and is forgotten with the events when the driver drops it.

A batch travels in one actor call with a device-wide sequence number; the worker enqueues
batches in that order, so an event recorded in one queue's batch exists before another
queue's batch waits for it. Host data of ``INLINE_BYTES`` or more travels as a top-level
argument of the call (a *blob*), which Ray moves through its object store; the worker maps it
without a copy. The call returns a :class:`BatchResult` once every command of the batch has
completed.

Errors travel as values (:func:`pack_error`): a ``HalError`` keeps its class, message and
attributes (a ``CompileError``'s file and line) across the process boundary, which pickling
the exception would not (its ``__init__`` takes other arguments than its ``args``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hal.backend import DeviceFault, HalError

if TYPE_CHECKING:
    import numpy as np

    from hal.backend import CommandTrace

LAUNCH, COPY, FILL, WRITE, READ, RECORD, WAIT, TRACE, CLOSE, GRAPH = range(10)

INLINE_BYTES = 64 << 10
"""Host data below this travels inside the batch; from it on, through Ray's object store."""
MAX_COMMANDS = 1024
"""A batch this long is sent even while the previous one is still in flight."""
MAX_INLINE = 4 << 20
"""Inline bytes after which a batch is sent even while the previous one is still in flight."""

PackedError = tuple[str, str, dict[str, Any]]
"""(class name in ``hal``, message, attributes)."""


@dataclass
class BatchResult:
    """The reply to one batch, sent once all its commands completed."""

    fault: PackedError | None = None
    """The first fault among the batch's commands (raised by the driver's next synchronize)."""
    reads: list[np.ndarray] = field(default_factory=list)
    """The data of each READ, in order."""
    times: list[float] = field(default_factory=list)
    """The device time of each RECORD, in order."""
    traces: list[CommandTrace] = field(default_factory=list)
    """Each TRACE's trace, filled by the hosted device."""


def pack_error(exc: BaseException) -> PackedError:
    """An exception as a value; anything that is not a ``HalError`` becomes a ``DeviceFault``
    naming its type (a bug in the hosted backend must reach the user, not kill the worker)."""
    if isinstance(exc, HalError):
        return (type(exc).__name__, str(exc), dict(vars(exc)))
    return ("DeviceFault", f"{type(exc).__name__}: {exc}", {})


def unpack_error(packed: PackedError, where: str = "") -> HalError:
    """The ``HalError`` that :func:`pack_error` packed, of the same class with the same attributes;
    ``where`` (the device) prefixes the message of a ``DeviceFault``."""
    import hal

    name, message, attrs = packed
    cls = getattr(hal, name, None)
    if not (isinstance(cls, type) and issubclass(cls, HalError)):
        cls, message = DeviceFault, f"{name}: {message}"
    if where and cls is DeviceFault:
        message = f"{where}: {message}"
    exc = cls(message)  # every hal error takes its message first; the attributes follow
    exc.__dict__.update(attrs)
    return exc
