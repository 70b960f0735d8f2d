"""Kernel compiler of the OpenCL backend: IR -> OpenCL C (hal.kernel.simt) -> program binaries, cached.

The kernel cache (``$HAL_CACHE_DIR/opencl``: ``hal.backend.cache_read``/``cache_write``, trusted,
tagged, size-limited) is keyed by a SHA-256 of the IR, checked mode, the device (name, OpenCL
version, driver version, platform), the build options and the emitters' source. Entries are
program binaries (``clGetProgramInfo(CL_PROGRAM_BINARIES)``) whose tag binds them to their key, so
another kernel's binary is never loaded in its place; one that fails its tag or that the driver
refuses is rebuilt from source.
"""

from __future__ import annotations

import hashlib
import inspect
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pyopencl as cl

from hal.backend import CompileError, Executable, bounds_checks, cache_read, cache_write, kernel_cache_dir
from hal.kernel import ir, opencl, simt

if TYPE_CHECKING:
    from ._device import OpenCLDevice

_SOURCES = b"".join(p.read_bytes() for p in (*simt.SOURCES, Path(inspect.getfile(opencl)))) + Path(__file__).read_bytes()


def cache_dir() -> Path:
    """This backend's folder of the kernel cache (``hal.backend.kernel_cache_dir``)."""
    return kernel_cache_dir("opencl")


@dataclass(eq=False)
class OpenCLKernel(Executable):
    """A built program; each queue launches it through a kernel object of its own (``_queue.Bound``)."""

    kernel: ir.Kernel
    source: simt.SimtSource
    program: cl.Program
    layout: simt.ArgLayout
    key: str
    path: Path
    cached: bool
    compile_s: float

    def report(self) -> dict[str, Any]:
        return {"key": self.key, "binary": str(self.path), "source": str(self.path.with_suffix(".cl")),
                "checked": "(checked)" in self.source.text.split("\n", 1)[0], "cached": self.cached,
                "compile_s": self.compile_s}


def checked() -> bool:
    """Bounds checks are compiled in unless ``HAL_CHECK=0``: PoCL runs kernels in the process,
    where an out-of-bounds store is a SIGSEGV or heap corruption, never a ``DeviceFault``
    (``benchmarks/bench_bounds_checks.py`` measures what they cost)."""
    return bounds_checks(default=True)


def dialect(device: OpenCLDevice) -> opencl.OpenCL:
    return opencl.OpenCL(fp64=device.fp64, int64_atomics=device.int64_atomics,
                         max_group_size=device.device.max_work_group_size)


def emit_source(kernel: ir.Kernel, fp64: bool = True, int64_atomics: bool = True) -> str:
    """The OpenCL C of ``kernel`` (``hal compile --target opencl``)."""
    return simt.emit(kernel, opencl.OpenCL(fp64, int64_atomics), checked=checked()).text


def cache_key(device: OpenCLDevice, kernel: ir.Kernel, checked: bool) -> str:
    d = device.device
    h = hashlib.sha256()
    for part in (kernel.hash(), str(int(checked)), d.name, d.version, d.driver_version, d.platform.version,
                 " ".join(opencl.BUILD_OPTIONS)):
        h.update(part.encode() + b"\0")
    h.update(_SOURCES)
    return h.hexdigest()


def compile_kernel(device: OpenCLDevice, kernel: ir.Kernel) -> OpenCLKernel:
    """Build ``kernel`` for ``device`` (or load its cached binary). Raises CompileError/UnsupportedError."""
    t0 = time.perf_counter()
    is_checked = checked()
    source = simt.emit(kernel, dialect(device), checked=is_checked)
    key = cache_key(device, kernel, is_checked)
    path = cache_dir() / f"{key}.bin"
    program = _load(device, path)
    cached = program is not None
    if program is None:
        program = _build(device, kernel, source, path)
    return OpenCLKernel(kernel, source, program, simt.ArgLayout.of(kernel), key, path, cached,
                        time.perf_counter() - t0)


def _load(device: OpenCLDevice, path: Path) -> cl.Program | None:
    """The cached program if its bytes match the sidecar and the driver accepts them; else None."""
    data = cache_read(path)
    if data is None:
        return None
    try:
        program: cl.Program = cl.Program(device.context, [device.device], [data]).build(
            options=list(opencl.BUILD_OPTIONS))
    except cl.Error:
        return None
    return program


def _build(device: OpenCLDevice, kernel: ir.Kernel, source: simt.SimtSource, path: Path) -> cl.Program:
    try:
        with warnings.catch_warnings():  # PoCL's build log is never empty; a failure raises with it
            warnings.simplefilter("ignore", cl.CompilerWarning)
            program: cl.Program = cl.Program(device.context, source.text).build(options=list(opencl.BUILD_OPTIONS))
    except cl.Error as exc:
        kept = cache_write(path.with_suffix(".failed.cl"), source.text.encode())
        raise CompileError(f"opencl: the driver could not build kernel '{kernel.name}' (a bug in hal's OpenCL "
                           f"emitter or the driver; please report it with {kept}):\n{str(exc)[-2000:]}",
                           kernel.source_file, kernel.source_line) from None
    binary = cast("list[bytes]", program.get_info(cl.program_info.BINARIES))[0]
    if binary:
        cache_write(path, binary, (".cl", source.text))
    return program
