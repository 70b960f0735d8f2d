"""Parts the fpga backend models, and the device options.

Figures are the vendors' published numbers where one exists (resources, DDR,
clock) and estimates where none does (bitstream size, load time); README.md
gives the source of each.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import BaseModel

MODEL_VERSION = "2"
"""Bump when a figure the model produces changes."""

RESOURCES = ("LUT", "FF", "DSP", "BRAM")
"""The resource kinds a design is budgeted in (BRAM counted in 36 Kib blocks)."""


@dataclass(frozen=True)
class Part:
    """One FPGA card: fabric budget, clocks, memory and configuration figures."""

    key: str
    name: str
    device: str
    """The FPGA die (what a synthesis report names)."""
    lut: int
    ff: int
    dsp: int
    bram36: int
    clock_mhz: float
    """Default kernel clock of the vendor's acceleration platform."""
    ddr_bytes: int
    ddr_banks: int
    ddr_bank_bytes_s: float
    """One bank: a kernel's memory ports sit on one bank unless connectivity says otherwise."""
    pcie_bytes_s: float
    full_bitstream_bytes: int
    full_load_s: float
    """Loading the whole dynamic region: configuration plus the runtime's download and clock set-up."""
    config_bytes_s: float
    """Partial reconfiguration through the ICAP."""
    launch_s: float = 10e-6
    """Host-side kernel start (runtime call, register writes, completion interrupt)."""
    transfer_s: float = 5e-6
    """Fixed cost of one DMA transfer."""

    def budget(self, slots: int) -> dict[str, int]:
        """The resources one kernel may use when the fabric is split into ``slots`` equal regions."""
        total = {"LUT": self.lut, "FF": self.ff, "DSP": self.dsp, "BRAM": self.bram36}
        return {k: v // slots for k, v in total.items()}


PRESETS: dict[str, Part] = {
    "u250": Part(
        key="u250", name="AMD Xilinx Alveo U250", device="xcu250",
        lut=1_728_000, ff=3_456_000, dsp=12_288, bram36=2_688, clock_mhz=300.0,
        ddr_bytes=64 << 30, ddr_banks=4, ddr_bank_bytes_s=19.2e9, pcie_bytes_s=12e9,
        full_bitstream_bytes=107_000_000, full_load_s=0.5, config_bytes_s=400e6,
    ),
    "u50": Part(
        key="u50", name="AMD Xilinx Alveo U50", device="xcu50",
        lut=872_000, ff=1_743_000, dsp=5_952, bram36=1_344, clock_mhz=300.0,
        ddr_bytes=8 << 30, ddr_banks=32, ddr_bank_bytes_s=9.875e9, pcie_bytes_s=12e9,
        full_bitstream_bytes=54_000_000, full_load_s=0.3, config_bytes_s=400e6,
    ),
}
DEFAULTS: dict[str, Any] = {"preset": "u250", "clock_mhz": None, "slots": 1, "pipeline": True}
"""Device options when none are given (the pydantic model below shares them)."""


@cache
def options_model() -> type[BaseModel]:
    """The pydantic model of ``hal.device("fpga", ...)`` options (built on first use: pydantic is not
    imported when the plugin is)."""
    from typing import Literal

    from pydantic import BaseModel, ConfigDict, Field

    class FpgaOptions(BaseModel):
        """Options of the fpga backend."""

        model_config = ConfigDict(extra="forbid", frozen=True)

        preset: Literal[tuple(PRESETS)] = Field(DEFAULTS["preset"], description="The part modelled.")  # type: ignore[valid-type]
        clock_mhz: float | None = Field(DEFAULTS["clock_mhz"], gt=0, le=1000, description="Kernel clock; default: the part's.")
        slots: int = Field(DEFAULTS["slots"], ge=1, le=16, description=(
            "Reconfigurable regions. 1: the whole dynamic region, loaded as a full bitstream; more: "
            "equal partial-reconfiguration regions, each kernel budgeted to one, loaded through the ICAP."))
        pipeline: bool = Field(DEFAULTS["pipeline"], description="Pipeline loops and work-items (False: II = depth).")

    return FpgaOptions
