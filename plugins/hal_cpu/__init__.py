"""hal's CPU backend: a C runtime (csrc/, built with cffi) behind hal's vendor interface."""

from __future__ import annotations

from typing import Any

from hal.backend import Backend
from hal.hookspecs import hookimpl

from ._backend import CpuBackend

api_version = (1, 1)


@hookimpl
def hal_backends() -> list[Backend]:
    """The one backend of this plugin."""
    return [CpuBackend()]


@hookimpl
def hal_ops() -> list[Any]:
    """Native operators for host memory: gemm through the BLAS numpy links."""
    from hal.ops._cpu_native import host_impls  # lazy: the plugin's import stays cheap

    return host_impls()
