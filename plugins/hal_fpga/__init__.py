"""hal's simulated FPGA: kernels synthesised to pipelines, timed by an HLS-style model.

See README.md for the model, its latency table, sources and expected error.
"""

from __future__ import annotations

from hal.backend import Backend, hookimpl

api_version = (1, 2)


@hookimpl
def hal_backends() -> list[Backend]:
    """The one backend of this plugin: ``fpga``."""
    from ._backend import FpgaBackend

    return [FpgaBackend()]
