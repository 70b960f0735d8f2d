"""hal's simulated systolic-array NPU (a first-generation TPU by default).

It runs ``hal.ops`` tensor operators natively and refuses general kernels;
its time comes from SCALE-Sim's fold formulas plus a double-buffered DMA
model (README.md, "Timing model").
"""

from __future__ import annotations

from hal.backend import Backend, NativeOp, hookimpl

from ._backend import AccelBackend

api_version = (1, 2)

__all__ = ["AccelBackend", "api_version"]


@hookimpl
def hal_backends() -> list[Backend]:
    return [AccelBackend()]


@hookimpl
def hal_ops() -> list[NativeOp]:
    from ._ops import native_ops

    return native_ops()
