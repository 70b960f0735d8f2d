"""hal's CPU backend: a C runtime (csrc/, built with cffi) behind hal's vendor interface."""

from __future__ import annotations

from hal.backend import Backend, NativeOp, hookimpl

from ._backend import CpuBackend

api_version = (1, 6)


@hookimpl
def hal_backends() -> list[Backend]:
    """The one backend of this plugin."""
    return [CpuBackend()]


@hookimpl
def hal_ops() -> list[NativeOp]:
    """Native operators for host memory: gemm through the BLAS numpy links."""
    from ._ops import native_ops  # lazy: the plugin's import stays cheap

    return native_ops()
