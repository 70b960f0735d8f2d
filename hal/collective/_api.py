"""The public collectives: arguments checked once, here; then a backend's hook or the host path."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .. import _profile
from .._errors import InvalidArgumentError
from .._memory import Array
from . import _compress, _host
from ._hook import CollectiveCall, Kind

if TYPE_CHECKING:
    from .._device import Device

OPS = ("sum", "max", "min")


def all_reduce(arrays: Sequence[Array], op: str = "sum", *, compress: str | None = None,
               residuals: Sequence[Array] | None = None) -> None:
    """Combine the arrays elementwise with ``op`` ("sum", "max" or "min") and leave the result
    in every one of them.

    ``compress="int8"`` or ``"int4"`` (a sum of float arrays) sends block-scaled integer codes
    instead of the values: a quarter or an eighth of the bytes, each value of the result off by
    at most n + 1 half-scales (see ``hal.collective.compression``). ``residuals``, one float
    array per input (zeros at first, then kept), turn on error feedback: what compression lost
    is added to the next call's input, so sums over many calls stay exact to within one call's
    error. Every device still ends with the same bits."""
    inputs = _inputs(arrays, "all_reduce")
    if compress is None and residuals is None:
        _run("all_reduce", inputs, inputs, _op(op), 0)
        return
    scheme, kept = _compression(inputs, op, compress, residuals)
    if len(inputs) > 1 and inputs[0].size:  # one device, or no elements: nothing to send, nothing lost
        _run("all_reduce", inputs, inputs, "sum", 0, scheme, kept)


def broadcast(arrays: Sequence[Array], root: int = 0) -> None:
    """Copy ``arrays[root]`` into every other array."""
    inputs = _inputs(arrays, "broadcast")
    if type(root) is not int or not 0 <= root < len(inputs):
        raise InvalidArgumentError(f"hal.collective.broadcast: root must be the index of one of the "
                                   f"{len(inputs)} arrays, got {root!r}")
    _run("broadcast", inputs, inputs, "sum", root)


def all_gather(arrays: Sequence[Array], out: Sequence[Array] | None = None) -> list[Array]:
    """Give every device all the arrays, one after the other in the list's order: ``out[i]``, on
    the device of ``arrays[i]``, holds ``len(arrays) * arrays[0].size`` elements (made with
    shape ``(n * s0, *rest)`` when ``out`` is None). Returns ``out``."""
    inputs = _inputs(arrays, "all_gather")
    n, shape = len(inputs), inputs[0].shape
    outputs = _outputs(out, inputs, n * inputs[0].size, (n * shape[0], *shape[1:]) if shape else (n,),
                       "all_gather")
    _run("all_gather", inputs, outputs, "sum", 0)
    return outputs


def reduce_scatter(arrays: Sequence[Array], out: Sequence[Array] | None = None, op: str = "sum") -> list[Array]:
    """Combine the arrays elementwise with ``op`` and give device ``i`` the i-th of ``len(arrays)``
    equal parts of the result (in C order) in ``out[i]`` (made with shape ``(s0 // n, *rest)``,
    or 1-D, when ``out`` is None). Returns ``out``."""
    inputs = _inputs(arrays, "reduce_scatter")
    n, shape, size = len(inputs), inputs[0].shape, inputs[0].size
    if size % n:
        raise InvalidArgumentError(f"hal.collective.reduce_scatter: {size} elements do not split into {n} equal "
                                   f"parts, one per device; pad the arrays to a multiple of {n}")
    default = (shape[0] // n, *shape[1:]) if shape and shape[0] % n == 0 else (size // n,)
    outputs = _outputs(out, inputs, size // n, default, "reduce_scatter")
    _run("reduce_scatter", inputs, outputs, _op(op), 0)
    return outputs


# ---------------------------------------------------------------- checks
def _inputs(arrays: Any, what: str) -> list[Array]:
    if not isinstance(arrays, (list, tuple)) or not arrays or not all(isinstance(a, Array) for a in arrays):
        raise InvalidArgumentError(f"hal.collective.{what} takes a non-empty list of hal.Arrays, one per device; "
                                   f"got {type(arrays).__name__}")
    first, seen = arrays[0], set()
    for a in arrays:
        a.buffer  # noqa: B018 - InvalidHandleError when freed
        if a.device in seen:
            raise InvalidArgumentError(f"hal.collective.{what}: two arrays on {a.device.spec}; a collective takes "
                                       "one array per device (combine arrays of one device on it first)")
        seen.add(a.device)
        if a.shape != first.shape or a.dtype != first.dtype:
            raise InvalidArgumentError(f"hal.collective.{what} needs one shape and dtype: {first.shape} "
                                       f"{first.dtype} on {first.device.spec}, {a.shape} {a.dtype} on "
                                       f"{a.device.spec}")
    return list(arrays)


def _outputs(out: Any, inputs: list[Array], size: int, shape: tuple[int, ...], what: str) -> list[Array]:
    if out is None:
        return [a.device.empty(shape, a.dtype) for a in inputs]
    if not isinstance(out, (list, tuple)) or len(out) != len(inputs) or not all(isinstance(o, Array) for o in out):
        raise InvalidArgumentError(f"hal.collective.{what}: out must be a list of {len(inputs)} hal.Arrays, one "
                                   "per input, or None")
    for o, a in zip(out, inputs):
        o.buffer  # noqa: B018 - InvalidHandleError when freed
        if o.device is not a.device or o.dtype != a.dtype or o.size != size:
            raise InvalidArgumentError(f"hal.collective.{what}: out arrays need the device and dtype of their "
                                       f"input and {size} elements; got {o.size} {o.dtype} on {o.device.spec} "
                                       f"for the input on {a.device.spec}")
        if o._block is a._block:
            raise InvalidArgumentError(f"hal.collective.{what}: out and input share memory on {a.device.spec}; "
                                       "give out arrays of their own")
    return list(out)


def _compression(inputs: list[Array], op: Any, compress: Any, residuals: Any) -> tuple[str, list[Array]]:
    if compress not in _compress.SCHEMES:
        why = "residuals (error feedback) need a compress scheme" if compress is None else f"got {compress!r}"
        raise InvalidArgumentError(f"hal.collective.all_reduce: compress must be one of "
                                   f"{', '.join(map(repr, _compress.SCHEMES))} or None; {why}")
    if op != "sum":
        raise InvalidArgumentError(f"hal.collective.all_reduce: compress={compress!r} sums (decoded values "
                                   f"add up); op={op!r} cannot be compressed, leave compress=None for it")
    if inputs[0].dtype not in _compress.DTYPES:
        raise InvalidArgumentError(f"hal.collective.all_reduce: compress={compress!r} takes float32 or float64 "
                                   f"arrays, got {inputs[0].dtype}; reduce integers uncompressed")
    if residuals is None:
        return str(compress), []
    kept = _outputs(residuals, inputs, inputs[0].size, inputs[0].shape, "all_reduce residuals")
    for r, a in zip(kept, inputs):
        if r.shape != a.shape:
            raise InvalidArgumentError(f"hal.collective.all_reduce: residuals need the shape of their input, "
                                       f"{a.shape}; got {r.shape} on {r.device.spec}")
        r._check_writable("hal.collective.all_reduce residuals")
    return str(compress), kept


def _op(op: Any) -> str:
    if op not in OPS:
        raise InvalidArgumentError(f"collective op must be one of {', '.join(OPS)}, got {op!r}")
    return str(op)


# ---------------------------------------------------------------- running
def _run(kind: Kind, inputs: list[Array], outputs: list[Array], op: str, root: int, compress: str | None = None,
         residuals: Sequence[Array] = ()) -> None:
    for i, o in enumerate(outputs):
        if not (kind == "broadcast" and i == root):
            o._check_writable(f"hal.collective.{kind}")
    devices = [a.device for a in inputs]
    start = time.perf_counter()
    for dev in devices:
        dev.synchronize()  # the collective sees every write enqueued before it
    moved = _hooked(kind, devices, inputs, outputs, op, root, compress, residuals)
    if moved is None and compress is not None:
        moved = _host.run_compressed(inputs, residuals, compress)
    elif moved is None:
        moved = _host.run(kind, inputs, outputs, op, root)
    if _profile.ACTIVE:
        _record(kind, devices, moved, start)


def _hooked(kind: Kind, devices: list[Device], inputs: list[Array], outputs: list[Array], op: str,
            root: int, compress: str | None, residuals: Sequence[Array]) -> list[int] | None:
    """The backend's own collective, when every device belongs to one backend that has the hook."""
    backend = devices[0].backend
    hook = getattr(backend, "collective", None)
    if hook is None or any(d.backend is not backend for d in devices):
        return None
    moved = hook(CollectiveCall(kind, tuple(d.impl for d in devices), tuple(a._launch_arg() for a in inputs),
                                tuple(o._launch_arg() for o in outputs), inputs[0].dtype, op, root, compress,
                                tuple(r._launch_arg() for r in residuals)))
    return None if moved is None else list(moved)


def _record(kind: Kind, devices: list[Device], moved: list[int], start: float) -> None:
    """One profile record per device: the collective's wall time and the bytes it moved there."""
    wall = time.perf_counter() - start
    for dev, nbytes in zip(devices, moved):
        trace = dev.default_queue.command_trace(kind, "collective", nbytes)
        if trace is not None:
            trace.wall_start, trace.wall_s = start, wall
            if not dev.info.simulated:  # a simulated device charged its transfers in their own records
                trace.device_start, trace.device_s = start, wall
