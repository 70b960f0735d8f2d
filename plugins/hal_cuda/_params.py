"""The argument block cuLaunchKernel reads: one per kernel, packed before each launch.

Apart from the driver, so that a host harness (``tests/cuda/hostcuda.py``) calls the generated
CUDA C++ through the very block a GPU gets.
"""

from __future__ import annotations

import ctypes
import struct
from collections.abc import Sequence
from typing import Any

from hal.kernel import simt


def packer(codes: Sequence[str]) -> struct.Struct:
    """The argument block of a kernel: one 8-byte slot per argument, each value at its slot's start."""
    return struct.Struct("<" + "".join(c + f"{8 - struct.calcsize(c)}x" if struct.calcsize(c) < 8 else c
                                       for c in codes))


class ParamBlock:
    """``kernelParams`` of cuLaunchKernel for a kernel of ``layout``: the packed values (``data``,
    the layout's slots, then the fault record's address and the launch's number) and ``address``,
    that of the ``void *[]`` of slot addresses, built once. Not thread-safe: the caller packs and
    launches under one lock (the driver copies the block before cuLaunchKernel returns)."""

    __slots__ = ("struct", "data", "address", "_view", "_table")

    def __init__(self, layout: simt.ArgLayout) -> None:
        codes = layout.entry_codes
        self.struct = packer(codes)
        self.data = bytearray(self.struct.size)
        self._view = (ctypes.c_char * self.struct.size).from_buffer(self.data)  # pins data (no resize)
        base = ctypes.addressof(self._view)
        self._table = (ctypes.c_void_p * len(codes))(*(base + 8 * i for i in range(len(codes))))
        self.address: int = ctypes.addressof(self._table)

    def pack(self, values: Sequence[Any], faults: int, number: int) -> None:
        """Write a launch's slot values (``ArgLayout.values``), the fault record's device address and
        the launch's number into the block."""
        self.struct.pack_into(self.data, 0, *values, faults, number)
