"""Kernel compiler of the CUDA backend: IR -> CUDA C++ (hal.kernel.simt) -> NVRTC cubin, cached.

The cubin is for the device's own architecture (``sm_XY``), so no PTX JIT step runs at load and a
newer NVRTC than the driver does no harm. The on-disk cache (``$HAL_CACHE_DIR/cuda``) is keyed by
a SHA-256 of the generated source (which carries the IR, checked mode and every emitter change),
the architecture, NVRTC's version and the compile options (``hal.backend.cache_read``/
``cache_write``: a trusted directory, entries tagged with their key, written atomically).
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cuda.bindings import driver

from hal.backend import Executable, cache_read, cache_write, checked_mode, kernel_cache_dir
from hal.kernel import cuda, ir, nvrtc, simt

from ._driver import check, make_current
from ._params import ParamBlock

if TYPE_CHECKING:
    from ._device import CudaDevice

@dataclass(eq=False)
class CudaKernel(Executable):
    """A loaded kernel and its argument block (``params``, which ``lock`` guards)."""

    kernel: ir.Kernel
    source: simt.SimtSource
    module: Any
    function: Any
    params: ParamBlock
    key: str
    path: Path
    cached: bool
    compile_s: float
    layout: simt.ArgLayout
    """How launch arguments map to the argument block's slots."""
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def report(self) -> dict[str, Any]:
        return {"key": self.key, "binary": str(self.path), "source": str(self.path.with_suffix(".cu")),
                "checked": "(checked)" in self.source.text.split("\n", 1)[0], "cached": self.cached,
                "compile_s": self.compile_s}


def cache_key(source: str, arch: str) -> str:
    h = hashlib.sha256()
    for part in (source, arch, "{}.{}".format(*nvrtc.version()), " ".join(cuda.NVRTC_OPTIONS)):
        h.update(part.encode() + b"\0")
    return h.hexdigest()


def compile_kernel(device: CudaDevice, kernel: ir.Kernel) -> CudaKernel:
    """Build ``kernel`` for ``device`` (or load its cached cubin). Raises CompileError."""
    t0 = time.perf_counter()
    checked = checked_mode()
    source = simt.emit(kernel, cuda.Cuda(max_group_size=device.max_group_size), checked=checked)
    key = cache_key(source.text, device.arch)
    path = kernel_cache_dir("cuda") / f"{key}.cubin"
    cubin = cache_read(path)
    cached = cubin is not None
    if cubin is None:
        cubin = nvrtc.compile_source(source.text, kernel.name, device.arch, "cubin", cuda.NVRTC_OPTIONS)
        cache_write(path, cubin, (".cu", source.text))
    make_current(device.context)
    module = check(driver.cuModuleLoadData(cubin), f"loading kernel '{kernel.name}'")
    function = check(driver.cuModuleGetFunction(module, source.entry.encode()), "cuModuleGetFunction")
    layout = simt.ArgLayout.of(kernel)
    return CudaKernel(kernel, source, module, function, ParamBlock(layout), key, path, cached,
                      time.perf_counter() - t0, layout)
