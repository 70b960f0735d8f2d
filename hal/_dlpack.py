"""A DLPack producer for memory that numpy cannot describe: device memory (CUDA).

Host memory is exported through numpy's own ``__dlpack__``; device memory needs a
``DLManagedTensor`` of hal's own, built here with ctypes (the DLPack 0.8 ABI, the unversioned
``dltensor`` capsule every consumer takes). The tensor holds ``owner`` (an object that keeps the
memory allocated) until the consumer calls the deleter, or until the capsule is collected
unconsumed.
"""

from __future__ import annotations

import ctypes
import threading
from typing import Any

import numpy as np

from ._errors import UnsupportedError

KDL_CPU, KDL_CUDA = 1, 2
_CODES = {"i": 0, "u": 1, "f": 2, "b": 6}
"""numpy kind -> DLPack type code (kDLInt, kDLUInt, kDLFloat, kDLBool); bfloat16 is code 4."""
_NAME = b"dltensor"


class _Device(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class _DataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class _Tensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device", _Device), ("ndim", ctypes.c_int32), ("dtype", _DataType),
                ("shape", ctypes.POINTER(ctypes.c_int64)), ("strides", ctypes.POINTER(ctypes.c_int64)),
                ("byte_offset", ctypes.c_uint64)]


class _Managed(ctypes.Structure):
    pass


_Deleter = ctypes.CFUNCTYPE(None, ctypes.POINTER(_Managed))
_Managed._fields_ = [("dl_tensor", _Tensor), ("manager_ctx", ctypes.c_void_p), ("deleter", _Deleter)]

_LIVE: dict[int, tuple[Any, ...]] = {}
"""Address of each exported _Managed -> what it keeps alive (the struct, its shape, the owner)."""
_LOCK = threading.Lock()


def _release(managed: Any) -> None:
    with _LOCK:
        _LIVE.pop(ctypes.addressof(managed.contents), None)


_delete = _Deleter(_release)


_api = ctypes.pythonapi
_api.PyCapsule_New.restype = ctypes.py_object
_api.PyCapsule_New.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
_api.PyCapsule_IsValid.restype = ctypes.c_int
_api.PyCapsule_IsValid.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
_api.PyCapsule_GetPointer.restype = ctypes.c_void_p
_api.PyCapsule_GetPointer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]


def _destroy_capsule(capsule: int) -> None:
    """A capsule collected unconsumed still owns its tensor (a consumer renames it ``used_dltensor``)."""
    if _api.PyCapsule_IsValid(capsule, _NAME):
        _release(ctypes.cast(_api.PyCapsule_GetPointer(capsule, _NAME), ctypes.POINTER(_Managed)))


_capsule_destructor = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(_destroy_capsule)


def dtype_code(dtype: np.dtype[Any]) -> tuple[int, int]:
    """(DLPack type code, bits) of ``dtype``."""
    if dtype.name == "bfloat16":
        return 4, 16
    if dtype.kind not in _CODES:
        raise UnsupportedError(f"DLPack has no type for {dtype}", feature="kernels")
    return _CODES[dtype.kind], dtype.itemsize * 8


def capsule(address: int, shape: tuple[int, ...], dtype: np.dtype[Any], device: tuple[int, int], owner: Any) -> Any:
    """A ``dltensor`` capsule of the C-contiguous array at ``address`` on DLPack ``device``
    (type, id); ``owner`` stays referenced until the consumer is done."""
    code, bits = dtype_code(dtype)
    dims = (ctypes.c_int64 * max(len(shape), 1))(*shape)
    managed = _Managed()
    t = managed.dl_tensor
    t.data, t.device, t.ndim = address or None, _Device(*device), len(shape)
    t.dtype = _DataType(code, bits, 1)
    t.shape, t.strides, t.byte_offset = dims, None, 0
    managed.deleter = _delete
    key = ctypes.addressof(managed)
    with _LOCK:
        _LIVE[key] = (managed, dims, owner)
    return _api.PyCapsule_New(key, _NAME, ctypes.cast(_capsule_destructor, ctypes.c_void_p))
