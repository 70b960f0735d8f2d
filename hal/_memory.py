"""Array: a typed, C-contiguous view of device memory.

An Array is ``(block, offset, shape, dtype)``. ``free()`` returns the block to
the device's pool and invalidates every view of it; later use raises
``InvalidHandleError``. Host-visible memory exports DLPack, so
``np.from_dlpack(x)`` is zero-copy on the CPU device.
"""

from __future__ import annotations

import math
import operator
from typing import TYPE_CHECKING, Any

import numpy as np

from ._errors import InvalidArgumentError, InvalidHandleError, UnsupportedError, ZeroCopyError
from ._pool import Block
from .backend import Buffer
from .kernel._narrow import astype

if TYPE_CHECKING:
    from ._device import Device


class Array:
    """Device memory with a shape and dtype (C-contiguous)."""

    __slots__ = ("device", "shape", "dtype", "size", "nbytes", "offset", "_block", "_arg", "_device_export",
                 "__weakref__")

    def __init__(self, device: Device, block: Block, offset: int, shape: tuple[int, ...],
                 dtype: np.dtype[Any]) -> None:
        self.device = device
        self._block = block
        self.offset = offset
        self.shape = shape
        self.dtype = dtype
        self.size = math.prod(shape)
        self.nbytes = self.size * dtype.itemsize
        self._arg: BufferArg | None = None

    def _launch_arg(self) -> BufferArg:
        """The snapshot a launch hands the backend (made once: an Array never changes its memory).
        A read-only array's is never cached, so a launch that writes its parameter always comes
        here (through ``_arg`` being None) and is refused."""
        arg = self._arg
        if arg is None:
            arg = BufferArg(self.buffer, self.offset, self.size)
            if not self._block.readonly:
                self._arg = arg
        return arg

    @property
    def readonly(self) -> bool:
        """True for memory shared with a producer that forbids writes (a JAX array, a read-only
        numpy array, imported with ``dev.asarray``): commands may read it, none may write it."""
        return self._block.readonly

    def _check_writable(self, what: str) -> None:
        if self._block.readonly:
            raise self._readonly_error(what)

    def _readonly_error(self, what: str) -> InvalidArgumentError:
        return InvalidArgumentError(
            f"{what} writes {self._describe()}, which is read-only: it shares the memory of a read-only "
            "producer (a JAX array, a read-only numpy array); import a writable copy with "
            "dev.asarray(obj, copy=True)")

    # ------------------------------------------------------------ handles
    @property
    def buffer(self) -> Buffer[Any]:
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
        try:
            ints = tuple(operator.index(d) for d in dims)  # type: ignore[arg-type]  # a tuple is a TypeError
        except TypeError:
            raise InvalidArgumentError(f"reshape takes integer dimensions, got {dims!r}") from None
        new = _resolve_shape(ints, self.size)
        if new is None:
            raise InvalidArgumentError(f"cannot reshape {self._describe()} to {dims}: the new shape must "
                                       f"hold exactly {self.size} elements")
        self.buffer  # noqa: B018 - raises when freed
        return Array(self.device, self._block, self.offset, new, self.dtype)

    def view(self, dtype: Any) -> Array:
        """Reinterpret the bytes as another dtype, as numpy's ``view``: the shape is kept, and the last
        axis is scaled by the ratio of the item sizes (a 0-d array keeps its item size)."""
        dt = self.device._check_dtype(dtype)
        self.buffer  # noqa: B018 - raises when freed
        return Array(self.device, self._block, self.offset, _viewed_shape(self, dt), dt)

    def __getitem__(self, index: Any) -> Array:
        """A view along the first axis: ``x[i]`` (one row, the other axes) or ``x[a:b]`` (rows a to
        b-1). Views share the memory and are usable in copies, fills and launches; other indexing
        (steps, several axes) would not be contiguous, so it is refused."""
        if not self.shape:
            raise InvalidArgumentError(f"{self._describe()} is 0-d: it has no axis to index")
        rows = self.shape[0]
        row_bytes = self.nbytes // rows if rows else math.prod(self.shape[1:]) * self.dtype.itemsize
        if isinstance(index, slice):
            start, stop, step = index.indices(rows)
            if step != 1:
                raise InvalidArgumentError(f"x[{index.start}:{index.stop}:{index.step}] on {self._describe()}: only "
                                           "step 1 keeps a view contiguous; copy through the host for strided data")
            count = max(0, stop - start)
            self.buffer  # noqa: B018 - raises when freed
            return Array(self.device, self._block, self.offset + start * row_bytes, (count, *self.shape[1:]),
                         self.dtype)
        if isinstance(index, (bool, np.bool_)):  # numpy reads x[True] as a new axis, operator.index as row 1
            raise InvalidIndexError(f"x[{index!r}] on {self._describe()}: a boolean is not a row number; "
                                    "index with an int (x[1]) or a slice (x[a:b])")
        try:
            i = operator.index(index)
        except TypeError:
            raise InvalidArgumentError(f"{self._describe()} takes x[i] or x[a:b] along its first axis, got "
                                       f"x[{index!r}]; index one axis at a time") from None
        if not -rows <= i < rows:
            raise IndexOutOfRangeError(f"index {i} is out of range for the first axis of {self._describe()} "
                                       f"(size {rows})")
        i %= rows
        self.buffer  # noqa: B018
        return Array(self.device, self._block, self.offset + i * row_bytes, self.shape[1:], self.dtype)

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
        """numpy 2's protocol: ``np.asarray(x)`` and ``copy=True`` read a host copy; ``copy=False``
        gives a zero-copy view of host-visible memory (as ``np.from_dlpack``, after waiting for
        pending work) or raises :class:`ZeroCopyError` (a ValueError, as numpy requires)."""
        if copy is False:
            if dtype is not None and np.dtype(dtype) != self.dtype:
                raise ZeroCopyError(f"np.asarray({self._describe()}, dtype={np.dtype(dtype)}, copy=False) needs a "
                                    "conversion, which copies; pass copy=None or convert after x.numpy()")
            if self.buffer.host_array() is None:
                raise ZeroCopyError(f"{self._describe()} lives in {self.device.info.name} memory, which the host "
                                    "cannot address, so copy=False is impossible; use x.numpy() (a copy)")
            view = self._export_view()
            self.device._sync_all()
            return view
        host = self.numpy()
        return host if dtype is None or np.dtype(dtype) == host.dtype else astype(host, np.dtype(dtype))

    def _host_view(self) -> np.ndarray:
        """A numpy view of host-visible memory, for hal's own short-lived use (nothing keeps it alive)."""
        raw = self.buffer.host_array()
        if raw is None:
            raise self._not_host_visible()
        return raw[self.offset:self.offset + self.nbytes].view(self.dtype).reshape(self.shape)

    def _export_view(self) -> np.ndarray:
        """A numpy view that keeps the memory alive as long as it (or anything made from it) lives,
        even across ``free()``: the block is returned to the pool when the last view goes."""
        return np.asarray(_HostExport(self._block, self._host_view()))

    def _not_host_visible(self) -> UnsupportedError:
        return UnsupportedError(
            f"{self._describe()} lives in {self.device.info.name} memory, which the host cannot "
            f"address; copy it with x.numpy() instead of np.from_dlpack(x)", feature="host_visible")

    def __dlpack__(self, *, stream: Any = None, max_version: tuple[int, int] | None = None,
                   dl_device: Any = None, copy: bool | None = None) -> Any:
        """Zero-copy export of host-visible memory (numpy's own producer) or of CUDA memory (a capsule of
        hal's, :mod:`hal._dlpack`). The device's queues are synchronised first, so the data is ready on
        any consumer stream; the memory stays allocated while the consumer holds it, even across
        ``free()``."""
        address = self.buffer.device_address() if self.buffer.host_array() is None else None
        if address is not None:
            from . import _dlpack

            self.device._sync_all()
            return _dlpack.capsule(address + self.offset, self.shape, self.dtype, self.__dlpack_device__(),
                                   _Export(self._block))
        view = self._export_view()
        self.device._sync_all()
        kwargs: dict[str, Any] = {}
        if max_version is not None:
            kwargs["max_version"] = max_version
        if copy is not None:
            kwargs["copy"] = copy
        return view.__dlpack__(**kwargs)

    @property
    def __cuda_array_interface__(self) -> dict[str, Any]:
        """The CUDA Array Interface (v3) where the device has device addresses (CUDA): CuPy, PyTorch and
        Numba take the array without a copy. The device's queues are synchronised first (``stream``
        None: ready on every stream); the memory stays allocated while this Array object lives, even
        across ``free()``, since consumers keep the Array, not the memory. Elsewhere an AttributeError,
        so that consumers probing with ``hasattr`` fall back to DLPack or ``__array__``."""
        address = self.buffer.device_address()
        if address is None:
            raise AttributeError(f"{self._describe()} has no device address (not CUDA memory); use "
                                 "np.from_dlpack(x) or x.numpy()")
        self.device._sync_all()
        if getattr(self, "_device_export", None) is None:
            self._device_export = _Export(self._block)
        return {"shape": self.shape, "typestr": self.dtype.str, "descr": [("", self.dtype.str)],
                "data": (address + self.offset if self.nbytes else 0, False), "strides": None, "version": 3,
                "stream": None}

    def __dlpack_device__(self) -> tuple[int, int]:
        from . import _dlpack

        if self.buffer.host_array() is not None:
            return (_dlpack.KDL_CPU, 0)
        if self.buffer.device_address() is not None:
            return (_dlpack.KDL_CUDA, self.device.info.index)
        raise self._not_host_visible()

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


class IndexOutOfRangeError(InvalidArgumentError, IndexError):
    """``x[i]`` past the first axis (an IndexError too, so iteration over rows stops there)."""


class InvalidIndexError(InvalidArgumentError, IndexError):
    """``x[True]``: an index that is no row number (an IndexError, as numpy's for a bad index)."""


class BufferArg:
    """A launch's pointer argument as the backend sees it (:class:`hal.backend.ArgBuffer`)."""

    __slots__ = ("buffer", "offset", "size")

    def __init__(self, buffer: Buffer[Any], offset: int, size: int) -> None:
        self.buffer = buffer
        self.offset = offset
        self.size = size


class _Export:
    """Holds a block (counted) while an exported view of it lives: ``free()`` then only orphans it."""

    __slots__ = ("_block",)

    def __init__(self, block: Block) -> None:
        block.export()
        self._block = block

    def __del__(self) -> None:
        self._block.unexport()


class _HostExport(_Export):
    """The base object of exported host views: numpy holds it, it holds the block."""

    __slots__ = ("__array_interface__",)

    def __init__(self, block: Block, view: np.ndarray) -> None:
        super().__init__(block)
        self.__array_interface__ = view.__array_interface__


def _viewed_shape(arr: Array, dt: np.dtype[Any]) -> tuple[int, ...]:
    """The shape of ``arr.view(dt)`` with numpy's rules and errors (InvalidArgumentError, a ValueError)."""
    old, new = arr.dtype.itemsize, dt.itemsize
    if old == new:
        return arr.shape
    what = f"cannot view {arr._describe()} as {dt}"
    if not arr.shape:
        raise InvalidArgumentError(f"{what}: changing the dtype of a 0d array is only supported if the itemsize "
                                   "is unchanged; reshape it to (1,) first")
    last = arr.shape[-1] * old
    if last % new:
        side = ("larger", "the total size in bytes of the last axis of the array") if new > old else \
            ("smaller", "the size of original dtype")
        raise InvalidArgumentError(f"{what}: when changing to a {side[0]} dtype, its size must be a divisor of "
                                   f"{side[1]} ({last} bytes); view a reshaped array whose last axis holds a "
                                   f"whole number of {new}-byte elements")
    if arr.offset % new:
        raise InvalidArgumentError(f"{what}: the view starts at byte {arr.offset}, which is not aligned to "
                                   f"{new}-byte elements; view the whole allocation and index the result")
    return (*arr.shape[:-1], last // new)


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
