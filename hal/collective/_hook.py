"""The optional hook through which a backend runs a collective among its own devices."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    import numpy as np

    from ..backend import ArgBuffer, DeviceImpl

Kind = Literal["all_reduce", "broadcast", "all_gather", "reduce_scatter"]


@dataclass(frozen=True)
class CollectiveCall:
    """One collective as a backend sees it, already validated: rank ``i`` is ``devices[i]``, with
    ``inputs[i]`` and ``outputs[i]`` (the same snapshots for the in-place ``all_reduce`` and
    ``broadcast``). Every device has finished the work enqueued before the call."""

    kind: Kind
    devices: tuple[DeviceImpl[Any], ...]
    inputs: tuple[ArgBuffer, ...]
    outputs: tuple[ArgBuffer, ...]
    dtype: np.dtype[Any]
    op: str
    """"sum", "max" or "min" (``all_reduce``, ``reduce_scatter``)."""
    root: int
    """The rank whose data ``broadcast`` sends."""
    compress: str | None = None
    """An ``all_reduce`` to send compressed ("int8", "int4"; see ``hal.collective.compression``,
    whose functions give the bits every rank must end with); a backend that cannot returns None."""
    residuals: tuple[ArgBuffer, ...] = ()
    """With ``compress``: each rank's error-feedback residual, read and updated in place (empty:
    no error feedback)."""


class CollectiveBackend(Protocol):
    """What a ``hal.backend.Backend`` may add to run collectives among its own devices, say to
    move data between them without the host. hal calls it when every array of a collective
    lives on a device of that backend; it returns once the results are in place, with the
    bytes each rank sent and received, or None to leave the collective to hal (which then
    goes through the host)."""

    def collective(self, call: CollectiveCall) -> Sequence[int] | None: ...
