"""hal_simgpu: a simulated SIMT GPU (A100-, H100- and H200-class presets) with exact results and an
analytic timing model. See README.md for the model, its sources and its expected error."""

from __future__ import annotations

from hal.backend import Backend, hookimpl

from ._backend import SimGpuBackend

api_version = (1, 7)


@hookimpl
def hal_backends() -> list[Backend]:
    """The one backend of this plugin: ``simgpu:0`` (A100-class), ``simgpu:1`` (H100-class)
    and ``simgpu:2`` (H200-class)."""
    return [SimGpuBackend()]
