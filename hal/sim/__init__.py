"""Toolkit for simulated backends: host-backed memory and a worker-thread queue with a
simulated clock. A simulated backend supplies the cost model and the executor; this
package supplies the plumbing every such backend would otherwise copy."""

from ._device import HostBuffer, SimDevice, kernel_args
from ._queue import SimEvent, SimQueue

__all__ = ["HostBuffer", "SimDevice", "SimEvent", "SimQueue", "kernel_args"]
