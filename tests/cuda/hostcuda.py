"""The CUDA dialect's generated C++ run on the host: differential tests of hal.kernel.cuda without a GPU.

``simt.emit(kernel, cuda.Cuda())`` is compiled unchanged by g++ after ``host_cuda.h`` (CUDA's
qualifiers, thread indices, barriers, atomics and warp shuffles as host code), plus a trampoline
that reads each parameter from its slot of hal_cuda's own argument block
(``hal_cuda._params.ParamBlock``) the way cuLaunchKernel does, so what runs here is the text and
the argument block a GPU would get. Buffers are numpy arrays: a pointer's "device address" is the
array's data pointer. The host's libm stands in for CUDA's libdevice (transcendentals differ by
a few ulps), and the blocks of a launch run one after the other.
"""

from __future__ import annotations

import atexit
import ctypes
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from hal_cuda._params import ParamBlock

from hal._memory import BufferArg
from hal.kernel import cuda, ir, simt

SHIM = Path(__file__).with_name("host_cuda.h")
GXX = shutil.which("g++")
GXX_FLAGS = ("-std=c++17", "-O1", "-ffp-contract=off", "-fno-fast-math", "-fPIC", "-shared", "-pthread", "-w",
             *(("-g", "-fsanitize=thread") if os.environ.get("HAL_HOSTCUDA_TSAN") == "1" else ()))
"""As ``cuda.NVRTC_OPTIONS`` (``--fmad=false``, no fast math): no contraction into FMA; ``-w`` as
NVRTC's ``--disable-warnings`` (the generated code discards values on purpose). With
``HAL_HOSTCUDA_TSAN=1`` the kernels are built for ThreadSanitizer (``test_host_cuda_races.py``)."""
_CACHE = Path(tempfile.mkdtemp(prefix="hal-hostcuda-"))
"""Shared libraries of this process, by a hash of their source and flags."""
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)

Dim = int | tuple[int, int, int]


@dataclass(frozen=True)
class _Memory:
    """What ``ArgLayout.values`` reads of a buffer: its device address."""

    handle: int


def trampoline(text: str, entry: str) -> str:
    """``hal_host_call(void **p)``: ``entry`` called with each parameter read from its slot, ``*(T *)p[i]``
    (the parameter list parsed from the generated text)."""
    found = re.search(rf'extern "C" __global__ void {entry}\((.*?)\) {{', text)
    assert found is not None, f"no entry point {entry} in the generated source"
    types = [re.sub(r"\w+$", "", p.strip()).strip() for p in found.group(1).split(",")]
    reads = ", ".join(f"*({t} *)p[{i}]" for i, t in enumerate(types))
    return f'\nextern "C" void hal_host_call(void **p) {{ {entry}({reads}); }}\n'


def build(source: simt.SimtSource) -> ctypes.CDLL:
    """The shared library of ``source`` (cached): the shim, the generated text, the trampoline."""
    assert GXX is not None, "g++ is missing"
    text = f'#include "{SHIM}"\n{source.text}{trampoline(source.text, source.entry)}'
    key = hashlib.sha256("\0".join([text, SHIM.read_text(), *GXX_FLAGS]).encode()).hexdigest()[:24]
    lib = _CACHE / f"{key}.so"
    if not lib.exists():
        src = _CACHE / f"{key}.cpp"
        src.write_text(text)
        tmp = _CACHE / f"{key}.{os.getpid()}.tmp.so"
        run = subprocess.run([GXX, *GXX_FLAGS, "-o", str(tmp), str(src)], capture_output=True, text=True)
        if run.returncode:
            raise RuntimeError(f"g++ rejected the generated CUDA C++ ({src}):\n{run.stderr[-4000:]}")
        tmp.rename(lib)
    dll = ctypes.CDLL(str(lib))
    dll.hal_host_launch.restype = ctypes.c_int
    dll.hal_host_launch.argtypes = [ctypes.c_uint] * 6 + [ctypes.c_void_p]
    dll.hal_host_error.restype = ctypes.c_char_p
    return dll


def _dim3(d: Dim) -> tuple[int, int, int]:
    return (d, 1, 1) if isinstance(d, int) else d


@dataclass(frozen=True)
class HostKernel:
    """A kernel compiled by :func:`compile`; call it like ``interpreter.run``: grid, block, arguments
    (numpy arrays for pointers, modified in place; numbers for scalars)."""

    kernel: ir.Kernel
    source: simt.SimtSource
    layout: simt.ArgLayout
    params: ParamBlock
    lib: ctypes.CDLL

    def __call__(self, grid: Dim, block: Dim, args: Sequence[Any]) -> None:
        """One launch and a synchronize: raises the DeviceFault it recorded."""
        queue = HostQueue()
        queue.launch(self, grid, block, args)
        queue.synchronize()


class HostQueue:
    """The fault bookkeeping of ``CudaQueue``: one fault record for the launches until the next
    ``synchronize``, each launch that can fault numbered by its place among them."""

    def __init__(self) -> None:
        self.record = np.zeros(simt.FAULT_WORDS, np.int32)
        self.faulting: list[HostKernel] = []

    def launch(self, exe: HostKernel, grid: Dim, block: Dim, args: Sequence[Any]) -> None:
        """Run ``exe`` to completion (numpy arrays for pointers, modified in place; numbers for scalars)."""
        wrapped = []
        for param, a in zip(exe.kernel.params, args, strict=True):
            if param.pointer:
                assert isinstance(a, np.ndarray) and a.dtype == param.type.np_dtype and a.flags.c_contiguous
                wrapped.append(BufferArg(_Memory(a.ctypes.data), 0, a.size))  # type: ignore[arg-type]
            else:
                wrapped.append(a)
        number = 0
        if exe.source.can_fault:
            number = len(self.faulting)
            self.faulting.append(exe)
        exe.params.pack(exe.layout.values(wrapped), self.record.ctypes.data, number)
        if exe.lib.hal_host_launch(*_dim3(grid), *_dim3(block), exe.params.address):
            raise RuntimeError(f"host_cuda: {exe.lib.hal_host_error().decode()}")

    def synchronize(self) -> None:
        """As ``CudaQueue._settle``: raise the first fault of the launches since the last synchronize."""
        faulting, self.faulting = self.faulting, []
        fault = simt.first_fault(self.record, faulting) if faulting else None
        if fault is not None:
            self.record[:] = 0
            raise fault


def compile(kernel: ir.Kernel, *, checked: bool = False) -> HostKernel:
    """``kernel`` as the CUDA backend emits it, built for the host."""
    source = simt.emit(kernel, cuda.Cuda(), checked=checked)
    layout = simt.ArgLayout.of(kernel)
    params = ParamBlock(layout)
    lib = build(source)
    slots = len(trampoline(source.text, source.entry).split("p[")) - 1
    assert slots == len(layout.entry_codes), "the entry's parameters and the argument block disagree"
    return HostKernel(kernel, source, layout, params, lib)
