"""Array: a typed, C-contiguous view of device memory.

An Array is ``(block, offset, shape, dtype)``. ``free()`` returns the block to
the device's pool and invalidates every view of it; later use raises
``InvalidHandleError``. Host-visible memory exports DLPack, so
``np.from_dlpack(x)`` is zero-copy on the CPU device.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from ._errors import InvalidArgumentError, InvalidHandleError, UnsupportedError
from ._pool import Block
from .backend import Buffer

if TYPE_CHECKING:
    from ._device import Device


class Array:
    """Device memory with a shape and dtype (C-contiguous)."""

    __slots__ = ("device", "shape", "dtype", "size", "nbytes", "offset", "_block", "__weakref__")

    def __init__(self, device: Device, block: Block, offset: int, shape: tuple[int, ...],
                 dtype: np.dtype[Any]) -> None:
        self.device = device
        self._block = block
        self.offset = offset
        self.shape = shape
        self.dtype = dtype
        self.size = math.prod(shape)
        self.nbytes = self.size * dtype.itemsize

    # ------------------------------------------------------------ handles
    @property
    def buffer(self) -> Buffer:
        """The backend's buffer; raises InvalidHandleError once freed."""
        buffer = self._block.buffer
        if buffer is None:
            raise InvalidHandleError(f"{self._describe()} was freed; allocate a new array")
        return buffer

    @property
    def freed(self) -> bool:
        return self._block.buffer is None

    def free(self) -> None:
        """Return the memory to the device's pool now (all views of it become invalid)."""
        if not self._block.release():
            raise InvalidHandleError(f"{self._describe()} was already freed; free each allocation once")

    def __enter__(self) -> Array:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.freed:
            self.free()

    # ------------------------------------------------------------ views
    @property
    def ndim(self) -> int:
        return len(self.shape)

    def reshape(self, *shape: int | tuple[int, ...]) -> Array:
        """A view with another shape of the same size (one -1 infers a dimension)."""
        dims = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        new = _resolve_shape(tuple(int(d) for d in dims), self.size)  # type: ignore[arg-type]
        if new is None:
            raise InvalidArgumentError(f"cannot reshape {self._describe()} to {dims}: the new shape must "
                                       f"hold exactly {self.size} elements")
        self.buffer  # noqa: B018 - raises when freed
        return Array(self.device, self._block, self.offset, new, self.dtype)

    def view(self, dtype: Any) -> Array:
        """Reinterpret the bytes as another dtype (1-D; nbytes must divide evenly)."""
        dt = self.device._check_dtype(dtype)
        if self.nbytes % dt.itemsize or self.offset % dt.itemsize:
            raise InvalidArgumentError(f"cannot view {self._describe()} as {dt}: {self.nbytes} bytes are not a "
                                       f"whole number of {dt.itemsize}-byte elements")
        self.buffer  # noqa: B018
        return Array(self.device, self._block, self.offset, (self.nbytes // dt.itemsize,), dt)

    # ------------------------------------------------------------ host exchange
    def numpy(self) -> np.ndarray:
        """A host copy; waits for pending work on the device first."""
        raw = self.device.impl.host_buffer(self.nbytes) if self.nbytes else None
        out = np.empty(self.shape, self.dtype) if raw is None else raw.view(self.dtype).reshape(self.shape)
        self.device._read_into(out, self)
        return out

    def get(self) -> np.ndarray:
        """Alias of :meth:`numpy` (CuPy spelling)."""
        return self.numpy()

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        host = self.numpy()
        return host if dtype is None else host.astype(dtype)

    def _host_view(self) -> np.ndarray:
        raw = self.buffer.host_array()
        if raw is None:
            raise UnsupportedError(
                f"{self._describe()} lives in {self.device.info.name} memory, which the host cannot "
                f"address; copy it with x.numpy() instead of np.from_dlpack(x)", feature="host_visible")
        return raw[self.offset:self.offset + self.nbytes].view(self.dtype).reshape(self.shape)

    def __dlpack__(self, *, stream: Any = None, max_version: tuple[int, int] | None = None,
                   dl_device: Any = None, copy: bool | None = None) -> Any:
        view = self._host_view()
        self.device._sync_all()
        kwargs: dict[str, Any] = {}
        if max_version is not None:
            kwargs["max_version"] = max_version
        if copy is not None:
            kwargs["copy"] = copy
        return view.__dlpack__(**kwargs)

    def __dlpack_device__(self) -> tuple[int, int]:
        self._host_view()
        return (1, 0)  # kDLCPU

    # ------------------------------------------------------------ misc
    def _describe(self) -> str:
        return f"array {self.shape} {self.dtype} on {self.device.spec}"

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d array")
        return self.shape[0]

    def __repr__(self) -> str:
        state = " (freed)" if self.freed else ""
        return f"<hal.Array shape={self.shape} dtype={self.dtype} device={self.device.spec}{state}>"


def _resolve_shape(dims: tuple[int, ...], size: int) -> tuple[int, ...] | None:
    """``dims`` with a single -1 filled in, or None when it cannot hold ``size`` elements."""
    if dims.count(-1) > 1 or any(d < -1 for d in dims):
        return None
    known = math.prod(d for d in dims if d != -1)
    if -1 in dims:
        if known == 0 or size % known:
            return None
        dims = tuple(size // known if d == -1 else d for d in dims)
    return dims if math.prod(dims) == size else None
