"""hal's CUDA backend: NVIDIA GPUs through cuda.core, the driver API and NVRTC."""

from __future__ import annotations

from hal.backend import Backend, hookimpl

from ._backend import CudaBackend

api_version = (1, 3)


@hookimpl
def hal_backends() -> list[Backend]:
    """The one backend of this plugin."""
    return [CudaBackend()]
