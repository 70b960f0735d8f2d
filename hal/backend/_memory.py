"""Buffers: raw device allocations, as launches and native operators see them, and views of host memory."""

from __future__ import annotations

from abc import ABC
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import numpy as np

if TYPE_CHECKING:
    from ..kernel.ir import Kernel

H = TypeVar("H")
"""A backend's native handle of an allocation: a cffi pointer, a numpy array, a ``cl.Buffer``..."""


class Buffer(ABC, Generic[H]):
    """A raw device allocation of ``nbytes`` bytes; ``handle`` is whatever the backend's own calls take.

    The core never looks at ``handle``: it exists so that a backend's queues and operators are typed
    against their own buffers (``QueueImpl[MyBuffer]``) instead of casting."""

    nbytes: int
    handle: H

    def host_array(self) -> np.ndarray | None:
        """A uint8 numpy view of the memory if the host can address it directly, else None.

        Host-visible backends return it; the core then serves ``__dlpack__``, ``x.numpy()`` and
        zero-copy paths from it. Called often: return the same view each time."""
        return None

    def device_address(self) -> int | None:
        """Optional (1.3): the address of CUDA device memory, for consumers that take device pointers:
        ``__cuda_array_interface__`` (CuPy, PyTorch, Numba) and DLPack as ``kDLCUDA`` with the
        device's index as the CUDA ordinal. None (the default) for every other kind of memory."""
        return None


B = TypeVar("B", bound=Buffer[Any])


class ArgBuffer(Protocol):
    """A pointer argument of a launch: an immutable snapshot taken when the launch was enqueued, so
    it stays valid after the user frees the Array (the core's pool reuses the memory only once the
    queue has passed the launch)."""

    @property
    def buffer(self) -> Buffer[Any]: ...

    @property
    def offset(self) -> int:
        """Byte offset of element 0 inside ``buffer``."""
        ...

    @property
    def size(self) -> int:
        """Number of elements (of the kernel parameter's dtype)."""
        ...


def host_bytes(buffer: Buffer[Any]) -> np.ndarray:
    """The uint8 host memory behind ``buffer``: its ``host_array()``, else its ``handle`` when that is
    a numpy byte array (simulated devices keep device memory in one). Raises ``UnsupportedError``
    for memory the host cannot address: copy it with the queue instead."""
    raw = buffer.host_array()
    if raw is None:
        raw = getattr(buffer, "handle", None)
        if not isinstance(raw, np.ndarray):
            from .._errors import UnsupportedError

            raise UnsupportedError(f"{type(buffer).__name__} is not host memory; pass host_bytes a buffer whose "
                                   "host_array() or handle is a numpy array", feature="host_visible")
    return raw


def kernel_args(kernel: Kernel, args: Sequence[Any],
                memory: Callable[[Buffer[Any]], np.ndarray] = host_bytes) -> list[Any]:
    """Launch arguments as the reference interpreter takes them: a typed numpy view of each pointer
    argument's elements (from ``memory(buffer)``, uint8), scalars unchanged."""
    out: list[Any] = []
    for param, arg in zip(kernel.params, args):
        if param.pointer:
            dtype = param.type.np_dtype
            start = arg.offset
            out.append(memory(arg.buffer)[start:start + arg.size * dtype.itemsize].view(dtype))
        else:
            out.append(arg)
    return out
