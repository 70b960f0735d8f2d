"""Toolkit for simulated backends: host-backed memory and a worker-thread queue with a
simulated clock. A simulated backend supplies the cost model and the executor; this
package supplies the plumbing every such backend would otherwise copy."""

from __future__ import annotations

import warnings
from typing import Any

from ._device import HostBuffer, SimDevice
from ._queue import SimEvent, SimQueue


def __getattr__(name: str) -> Any:
    if name != "kernel_args":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn("hal.sim.kernel_args is deprecated since vendor API 1.2: import it from hal.backend (it now "
                  "takes buffers of any kind)", DeprecationWarning, stacklevel=2)
    from ..backend import kernel_args

    return kernel_args


__all__ = ["HostBuffer", "SimDevice", "SimEvent", "SimQueue"]
