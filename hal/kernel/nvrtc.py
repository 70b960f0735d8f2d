"""NVRTC, NVIDIA's runtime compiler, from CUDA C++ to PTX or cubin: no GPU or driver needed.

``cuda-bindings`` wraps libnvrtc, which the ``nvidia-cuda-nvrtc`` wheel ships (``pip install
'hal-sdk[cuda]'``). cuda.core's ``Program`` asks the driver for its version even to emit PTX, so
hal calls NVRTC directly: ``hal compile --target cuda:sm_90`` works on any machine. A cubin is
for one architecture (``sm_XY``, what a device runs without a JIT step); PTX (``compute_XY``)
is what a newer GPU or driver can still JIT-compile.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from .._errors import CompileError, UnsupportedError

ARCH = re.compile(r"sm_(\d{2,3})[af]?$")
EMITS = ("ptx", "cubin")


def _nvrtc() -> Any:
    try:
        from cuda.bindings import nvrtc
    except ImportError:
        raise UnsupportedError("compiling for CUDA needs NVRTC: pip install 'hal-sdk[cuda]' "
                               "(cuda-bindings and nvidia-cuda-nvrtc; no GPU or driver needed)", "kernels") from None
    return nvrtc


def version() -> tuple[int, int]:
    """NVRTC's (major, minor); part of the kernel cache key (a newer NVRTC emits different code)."""
    nvrtc = _nvrtc()
    err, major, minor = nvrtc.nvrtcVersion()
    _check(nvrtc, err, "nvrtcVersion")
    return int(major), int(minor)


def parse_arch(arch: str) -> str:
    """``sm_90`` (also ``sm_90a``) checked, and where NVRTC is installed, that it compiles for it;
    anything else is a CompileError saying what is accepted."""
    match = ARCH.match(arch)
    if not match:
        raise CompileError(f"unknown CUDA architecture {arch!r}: name one as sm_XY, e.g. sm_80 (A100) or sm_90 (H100)")
    try:
        supported = supported_archs()
    except UnsupportedError:  # no NVRTC: emitting the source needs none, compiling says so itself
        return arch
    if int(match.group(1)) not in supported:
        major, minor = version()
        raise CompileError(f"NVRTC {major}.{minor} cannot compile for {arch}; it supports "
                           f"{', '.join(f'sm_{n}' for n in supported)}: name one of those (an older GPU needs an "
                           "older NVRTC: pip install 'hal-sdk[cuda12]')")
    return arch


@functools.cache
def supported_archs() -> tuple[int, ...]:
    """The ``XY`` of every ``sm_XY`` this NVRTC compiles for (``nvrtcGetSupportedArchs``)."""
    nvrtc = _nvrtc()
    err, archs = nvrtc.nvrtcGetSupportedArchs()
    _check(nvrtc, err, "nvrtcGetSupportedArchs")
    return tuple(int(a) for a in archs)


def compile_source(source: str, name: str, arch: str, emit: str, options: tuple[str, ...]) -> bytes:
    """``source`` compiled for ``arch`` (``sm_XY``): PTX text (for ``compute_XY``) or a cubin, as bytes.
    A source NVRTC rejects is a CompileError carrying NVRTC's log."""
    nvrtc = _nvrtc()
    arch = parse_arch(arch)
    target = arch.replace("sm_", "compute_") if emit == "ptx" else arch
    err, prog = nvrtc.nvrtcCreateProgram(source.encode(), f"{name}.cu".encode(), 0, [], [])
    _check(nvrtc, err, "nvrtcCreateProgram")
    try:
        opts = [f"--gpu-architecture={target}".encode(), *(o.encode() for o in options)]
        (err,) = nvrtc.nvrtcCompileProgram(prog, len(opts), opts)
        if err != nvrtc.nvrtcResult.NVRTC_SUCCESS:
            raise CompileError(f"NVRTC could not compile kernel '{name}' for {arch} (a bug in hal's CUDA emitter; "
                               f"please report it):\n{_log(nvrtc, prog)[-2000:]}")
        size_fn, get_fn = ((nvrtc.nvrtcGetPTXSize, nvrtc.nvrtcGetPTX) if emit == "ptx"
                           else (nvrtc.nvrtcGetCUBINSize, nvrtc.nvrtcGetCUBIN))
        err, size = size_fn(prog)
        _check(nvrtc, err, "nvrtcGet*Size")
        out = bytearray(size)  # NVRTC writes into it (never into a bytes object: b" " is shared)
        (err,) = get_fn(prog, out)
        _check(nvrtc, err, "nvrtcGet*")
        return bytes(out).rstrip(b"\0") + b"\n" if emit == "ptx" else bytes(out)
    finally:
        nvrtc.nvrtcDestroyProgram(prog)


def _log(nvrtc: Any, prog: Any) -> str:
    err, size = nvrtc.nvrtcGetProgramLogSize(prog)
    log = bytearray(size)
    nvrtc.nvrtcGetProgramLog(prog, log)
    return bytes(log).rstrip(b"\0").decode(errors="replace")


def _check(nvrtc: Any, err: Any, what: str) -> None:
    if err != nvrtc.nvrtcResult.NVRTC_SUCCESS:
        raise CompileError(f"NVRTC: {what} failed: {nvrtc.nvrtcGetErrorString(err)[1].decode()}")
