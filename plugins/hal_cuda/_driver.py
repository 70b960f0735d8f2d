"""The CUDA driver API as hal calls it: results checked into hal errors, the context made current.

cuda-bindings returns ``(CUresult, *values)``; :func:`check` returns the values and turns an error
into the hal error a user can act on. Driver calls act on the calling thread's current context and
hal calls a device from any thread, so each entry point first runs :func:`make_current` (a
thread-local comparison, and one ``cuCtxSetCurrent`` the first time a thread uses a device).
"""

from __future__ import annotations

import threading
from typing import Any

from cuda.bindings import driver

from hal.backend import DeviceFault, HalError, OutOfMemoryError

R = driver.CUresult
_FAULTS = {R.CUDA_ERROR_ILLEGAL_ADDRESS, R.CUDA_ERROR_LAUNCH_FAILED, R.CUDA_ERROR_ILLEGAL_INSTRUCTION,
           R.CUDA_ERROR_MISALIGNED_ADDRESS, R.CUDA_ERROR_HARDWARE_STACK_ERROR, R.CUDA_ERROR_ASSERT,
           R.CUDA_ERROR_INVALID_PC, R.CUDA_ERROR_LAUNCH_TIMEOUT}
"""Sticky errors: the context is lost, every later call of this process on the device fails too."""
_local = threading.local()


def name(err: Any) -> str:
    return f"{err.name} ({driver.cuGetErrorString(err)[1].decode()})"


def check(result: tuple[Any, ...], what: str) -> Any:
    """The values of a driver call (one value bare, several as a tuple); an error raises."""
    err, *values = result
    if err != R.CUDA_SUCCESS:
        raise error(err, what)
    return values[0] if len(values) == 1 else tuple(values) if values else None


def error(err: Any, what: str) -> HalError:
    if err == R.CUDA_ERROR_OUT_OF_MEMORY:
        return OutOfMemoryError(f"cuda: {what}: out of device memory; free arrays or use smaller ones")
    if err in _FAULTS:
        return DeviceFault(f"cuda: {what}: {name(err)}. A kernel faulted and the CUDA context is lost: every later "
                           "call on this GPU fails in this process; rerun with HAL_CHECK=1 to find the access")
    return DeviceFault(f"cuda: {what} failed: {name(err)}")


def core_error(exc: Exception, what: str) -> HalError:
    """An error cuda.core raised (its CUDAError carries the CUresult's name in its text)."""
    if "OUT_OF_MEMORY" in str(exc):
        return OutOfMemoryError(f"cuda: {what}: out of device memory; free arrays or use smaller ones")
    return DeviceFault(f"cuda: {what} failed: {exc}")


def make_current(context: Any) -> None:
    """Make ``context`` current on the calling thread (free when it already is)."""
    if getattr(_local, "context", None) is not context:
        check(driver.cuCtxSetCurrent(context), "cuCtxSetCurrent")
        _local.context = context
