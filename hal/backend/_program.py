"""Executable: a kernel compiled for one device."""

from __future__ import annotations

from abc import ABC
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..kernel.ir import Kernel


class Executable(ABC):
    """What ``DeviceImpl.compile`` returns and ``QueueImpl.launch`` receives; set ``kernel``."""

    kernel: Kernel
    """The typed IR it was compiled from (the interpreter and reports read it)."""

    def report(self) -> Any:
        """Optional: a backend-specific compile report (``exe.report()``: the FPGA's synthesis
        report, say); None if none."""
        return None
