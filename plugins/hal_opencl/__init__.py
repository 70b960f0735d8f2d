"""hal's OpenCL backend: every device of every OpenCL platform (pyopencl over the ICD loader)."""

from __future__ import annotations

from hal.backend import Backend, hookimpl

from ._backend import OpenCLBackend

api_version = (1, 6)


@hookimpl
def hal_backends() -> list[Backend]:
    """The one backend of this plugin."""
    return [OpenCLBackend()]
