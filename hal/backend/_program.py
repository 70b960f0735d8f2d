"""Executable: a kernel compiled for one device; the settings every kernel compiler shares."""

from __future__ import annotations

import os
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


def checked_mode() -> bool:
    """``HAL_CHECK`` set and not ``0``: compile bounds checks into kernels (read when a kernel is
    compiled, so one process can build both kinds)."""
    return os.environ.get("HAL_CHECK", "").strip() not in ("", "0")
