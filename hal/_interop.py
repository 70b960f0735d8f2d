"""Memory of other libraries as hal arrays: ``dev.asarray(obj)`` and ``hal.from_dlpack(obj)``.

Host memory of numpy, PyTorch and JAX (anything with DLPack, the array interface or the buffer
protocol) becomes a hal array without a copy where the device can address host memory: its
backend adopts the memory (``DeviceImpl.adopt_host``, the CPU device does) and the array keeps
the producer alive. numpy's DLPack consumer reads the producer's capsule, so the dtypes that
cross are numpy's; the device's own list (``Device._check_dtype``) decides which it stores.
Anything that cannot be shared is copied, unless ``copy=False`` forbids it: then
:class:`ZeroCopyError` says why and what to do, as ``numpy.asarray(copy=False)`` raises.

CUDA memory of CuPy, PyTorch, JAX or Numba (``__cuda_array_interface__``) becomes an array of a
CUDA device without a copy (``DeviceImpl.adopt_device``), ordered after the producer's stream;
``hal.from_dlpack`` of such an object picks ``cuda:N`` by itself.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from ._errors import InvalidArgumentError, ZeroCopyError
from ._memory import Array

if TYPE_CHECKING:
    from ._device import Device

_HOST_DEVICES = {1: "CPU", 3: "CUDA host (pinned)", 11: "ROCm host (pinned)", 13: "CUDA managed"}
"""DLPack device types whose memory the host addresses (numpy's consumer decides which it takes)."""
_CUDA = 2
_OTHER_DEVICES = {2: "CUDA", 4: "OpenCL", 7: "Vulkan", 8: "Metal", 9: "VPI", 10: "ROCm", 12: "ext_dev",
                  14: "oneAPI", 15: "WebGPU", 16: "Hexagon", 17: "MAIA"}
_TO_HOST = ("copy it to host memory first (PyTorch: t.cpu(); JAX: jax.device_put(x, jax.devices('cpu')[0]); "
            "CuPy: x.get())")


def from_dlpack(obj: Any, device: Any = None, *, copy: bool | None = None) -> Array:
    """``hal.from_dlpack``: the array API's DLPack consumer. ``obj`` (anything with ``__dlpack__``
    in host memory) becomes an array of ``device`` (a :class:`hal.Device` or a spec; default
    ``"cpu"``, where the producer's memory is), shared without a copy as ``dev.asarray`` does."""
    if isinstance(obj, Array):
        return asarray(obj.device if device is None else _device(device), obj, None, copy)
    if device is None and hasattr(obj, "__dlpack_device__") and hasattr(obj, "__cuda_array_interface__"):
        kind, index = obj.__dlpack_device__()
        if int(kind) == _CUDA and int(index) < _cuda_devices():
            device = f"cuda:{int(index)}"
    if not hasattr(obj, "__dlpack__"):
        raise InvalidArgumentError(f"hal.from_dlpack takes an object with __dlpack__ (a numpy, PyTorch or JAX array),"
                                   f" got {type(obj).__name__}; dev.asarray(obj) takes anything numpy converts")
    return asarray(_device(device), obj, None, copy)


def asarray(dev: Device, obj: Any, dtype: Any, copy: bool | None) -> Array:
    """``dev.asarray``: see its docstring."""
    if not (copy is None or isinstance(copy, (bool, np.bool_))):
        raise InvalidArgumentError(f"copy must be True, False or None, got {copy!r}")
    want = None if dtype is None else dev._check_dtype(dtype)
    if isinstance(obj, Array):
        return _from_array(dev, obj, want, copy)
    cuda = getattr(obj, "__cuda_array_interface__", None)
    if cuda is not None:
        return _from_cuda(dev, obj, cuda, want, copy)
    host, shared = _host_array(obj)
    target = want if want is not None else host.dtype.newbyteorder("=")
    dev._check_dtype(target)  # a dtype the device does not store: copying would not help either
    if host.nbytes == 0:  # nothing to share or copy
        return dev.empty(host.shape, target)
    if copy is not True:
        why = _why_copied(dev, host, shared, target)
        if why is None:
            arr = dev._adopt(host, host.shape, target)
            if arr is not None:
                return arr
            why = f"{dev.info.name} ({dev.spec}) cannot adopt host memory"
        if copy is False:
            raise ZeroCopyError(f"cannot share the memory of this {type(obj).__name__} {host.shape} {host.dtype} "
                                f"with {dev.spec} without a copy: {why}; {_fix(why)}")
    return dev.array(host, target)


def _from_cuda(dev: Device, obj: Any, cai: dict[str, Any], want: np.dtype[Any] | None, copy: bool | None) -> Array:
    """An array of ``dev`` over the CUDA memory that ``obj`` describes (CUDA Array Interface v2/v3);
    a dtype conversion or ``copy=True`` then copies on the device."""
    shape, dtype = tuple(int(d) for d in cai["shape"]), np.dtype(cai["typestr"]).newbyteorder("=")
    strides = cai.get("strides")
    what = f"this {type(obj).__name__} {shape} {dtype} in CUDA memory"
    if strides is not None and tuple(strides) != _c_strides(shape, dtype.itemsize):
        raise (ZeroCopyError if copy is False else InvalidArgumentError)(
            f"cannot import {what}: it is not C-contiguous (strides {tuple(strides)}); make it contiguous in its "
            "library first (t.contiguous(), cupy.ascontiguousarray(x))")
    dev._check_dtype(dtype)
    if math.prod(shape) == 0:
        return dev.empty(shape, dtype if want is None else want)
    stream = cai.get("stream")
    arr = dev._adopt_device(int(cai["data"][0]), shape, dtype, obj, bool(cai["data"][1]),
                            None if stream is None else int(stream))
    if arr is None:
        raise (ZeroCopyError if copy is False else InvalidArgumentError)(
            f"cannot import {what} to {dev.spec}: {dev.info.name} does not address CUDA memory; import it on its CUDA "
            f"device (hal.from_dlpack(x) picks it), or {_TO_HOST}")
    return _from_array(dev, arr, want, copy)


def _c_strides(shape: tuple[int, ...], itemsize: int) -> tuple[int, ...]:
    strides, step = [], itemsize
    for d in reversed(shape):
        strides.append(step)
        step *= d
    return tuple(reversed(strides))


def _cuda_devices() -> int:
    from ._lookup import backends

    return sum(b.device_count for b in backends() if b.name == "cuda")


def _device(device: Any) -> Device:
    from ._device import Device
    from ._lookup import device as lookup

    if device is None:
        return lookup("cpu")
    if isinstance(device, str):
        return lookup(device)
    if isinstance(device, Device):
        return device
    raise InvalidArgumentError(f"device must be a hal.Device or a spec such as 'cpu', got {type(device).__name__}")


def _host_array(obj: Any) -> tuple[np.ndarray, bool]:
    """A numpy array of ``obj``'s data, and whether it is the producer's own memory (else numpy
    made it, as from a list)."""
    if isinstance(obj, np.ndarray):
        return obj, True
    if hasattr(obj, "__dlpack__") and hasattr(obj, "__dlpack_device__"):
        kind, index = obj.__dlpack_device__()
        if int(kind) not in _HOST_DEVICES:
            where = _OTHER_DEVICES.get(int(kind), f"DLPack device type {int(kind)}")
            raise InvalidArgumentError(f"this {type(obj).__name__} lives in {where} memory (device {index}), which hal "
                                       f"does not import; {_TO_HOST}, then pass that")
        try:
            return np.from_dlpack(obj), True
        except (BufferError, TypeError, ValueError, RuntimeError) as exc:
            raise InvalidArgumentError(f"cannot import this {type(obj).__name__} through DLPack: {exc} (numpy reads "
                                       "the capsule; bfloat16 has no numpy DLPack code: view it as int16 in the "
                                       "producer, or convert it to a dtype numpy knows)") from None
    try:
        return np.asarray(obj, copy=False), True
    except ValueError:  # numpy has to build the array (a list, say)
        pass
    except TypeError as exc:
        raise InvalidArgumentError(f"cannot make a device array from {type(obj).__name__}: {exc}") from None
    try:
        return np.asarray(obj), False
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidArgumentError(f"cannot make a device array from {type(obj).__name__}: {exc}") from None


def _why_copied(dev: Device, host: np.ndarray, shared: bool, target: np.dtype[Any]) -> str | None:
    """Why ``host`` cannot become an array of ``dev`` without a copy; None when it can."""
    if not dev.info.host_visible:
        return f"{dev.info.name} ({dev.spec}) cannot address host memory"
    if not shared:
        return "it is not memory of its own (numpy builds a new array from it)"
    if target != host.dtype:
        return f"its dtype {host.dtype.str} must be converted to {target}"
    if not host.flags.c_contiguous:
        return f"it is not C-contiguous (strides {host.strides})"
    if not host.flags.aligned:
        return f"its data is not aligned for {host.dtype} elements"
    return None


def _fix(why: str) -> str:
    """What to do instead of ``copy=False``, for the reason ``_why_copied`` gave."""
    if "C-contiguous" in why:
        return "make it contiguous first (np.ascontiguousarray(a), t.contiguous()) or pass copy=None to copy"
    if "converted" in why:
        return "import it as it is (dtype=None) and convert on the device, or pass copy=None to copy"
    if "cannot" in why:
        return "import it on a host-visible device such as 'cpu', or pass copy=None to copy"
    return "pass copy=None to copy"


def _from_array(dev: Device, arr: Array, want: np.dtype[Any] | None, copy: bool | None) -> Array:
    arr.buffer  # noqa: B018 - InvalidHandleError when freed
    same = arr.device is dev and (want is None or want == arr.dtype)
    if same and not copy:
        return arr
    if copy is False:
        why = f"it lives on {arr.device.spec}" if arr.device is not dev else f"{arr.dtype} must be converted to {want}"
        raise ZeroCopyError(f"cannot make {arr._describe()} an array of {dev.spec} without a copy: {why}; pass "
                            "copy=None to copy")
    if same:  # a device copy, once the writes enqueued so far are done (as a host read waits)
        dev._sync_all()
        out = dev.empty(arr.shape, arr.dtype)
        return dev._initialised(out, lambda q: q.copy(out, arr))
    return dev.array(arr, want)
