"""hal's simulated systolic-array NPU (a first-generation TPU by default).

It runs ``hal.ops`` tensor operators natively and refuses general kernels;
its time comes from SCALE-Sim's fold formulas plus a double-buffered DMA
model (README.md, "Timing model").
"""

from __future__ import annotations

from typing import Any

from hal.backend import Backend
from hal.hookspecs import hookimpl

from ._backend import AccelBackend

api_version = (1, 0)

__all__ = ["AccelBackend", "api_version"]


@hookimpl
def hal_backends() -> list[Backend]:
    return [AccelBackend()]


@hookimpl
def hal_ops() -> list[Any]:
    from ._ops import native_ops

    return native_ops()
