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


def bounds_checks(default: bool) -> bool:
    """Whether a backend compiles bounds checks in: ``HAL_CHECK`` decides where it is set (``0``:
    never, anything else: always), else the backend's ``default``. A backend whose driver lets an
    out-of-bounds access take the process down (PoCL) defaults to True, so that the access is a
    ``DeviceFault``; ``HAL_CHECK=0`` trades that for the checks' cost."""
    value = os.environ.get("HAL_CHECK", "").strip()
    return default if not value else value != "0"
