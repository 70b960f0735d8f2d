"""Presets: the parameters of the modelled NPU, one frozen value per part.

Every number here feeds the analytic model in :mod:`._model`; the README's
"Timing model" section gives their sources. Options given to
``hal.device("accel", ...)`` replace single fields of a preset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

MODEL_VERSION = "1"
"""Bumped whenever a formula changes, so recorded figures say which model produced them."""

Dataflow = Literal["ws", "os", "is"]
DATAFLOW_NAMES: dict[str, str] = {"ws": "weight-stationary", "os": "output-stationary", "is": "input-stationary"}

MiB = 1 << 20
GiB = 1 << 30


@dataclass(frozen=True)
class Preset:
    """A systolic-array NPU: the array, its clock, its on-chip buffer and its memories."""

    name: str
    product: str
    """The part it models, as DeviceInfo.name shows it."""
    rows: int
    cols: int
    dataflow: Dataflow
    clock_hz: float
    unified_buffer_bytes: int
    """On-chip SRAM that stages operands between DRAM and the array."""
    dram_bandwidth: float
    """Bytes per second between device DRAM and the unified buffer."""
    memory_bytes: int
    """Device DRAM capacity (what hal arrays live in)."""
    host_bandwidth: float
    """Bytes per second over the host link (h2d and d2h copies)."""

    @property
    def peak_ops(self) -> float:
        """Peak operations per second (a multiply-accumulate is two)."""
        return 2.0 * self.rows * self.cols * self.clock_hz

    @property
    def dram_bytes_per_cycle(self) -> float:
        return self.dram_bandwidth / self.clock_hz

    @property
    def vector_lanes(self) -> int:
        """Elements the vector unit (activation pipeline) handles per cycle: one per column."""
        return self.cols

    def describe(self) -> str:
        """One line naming the preset and its parameters, for DeviceInfo.model and counters."""
        return (f"analytic estimate, hal_accel model v{MODEL_VERSION}, preset {self.name}: "
                f"{self.rows}x{self.cols} {DATAFLOW_NAMES[self.dataflow]}, {self.clock_hz / 1e6:g} MHz, "
                f"{self.unified_buffer_bytes / MiB:g} MiB unified buffer, "
                f"DRAM {self.dram_bandwidth / 1e9:g} GB/s")


TPU_V1 = Preset(
    name="tpu-v1", product="Google TPU v1 (simulated)", rows=256, cols=256, dataflow="ws", clock_hz=700e6,
    unified_buffer_bytes=24 * MiB, dram_bandwidth=34e9, memory_bytes=8 * GiB, host_bandwidth=12e9)
"""Jouppi et al., ISCA 2017: 256x256 int8 MACs at 700 MHz (92 TOPS), 24 MiB unified buffer,
8 GiB DDR3 at 34 GB/s, PCIe Gen3 x16 host link (about 12 GB/s achieved)."""

TPU_V1_GDDR5 = Preset(
    name="tpu-v1-gddr5", product="Google TPU v1 with GDDR5 (simulated)", rows=256, cols=256, dataflow="ws",
    clock_hz=700e6, unified_buffer_bytes=24 * MiB, dram_bandwidth=180e9, memory_bytes=8 * GiB,
    host_bandwidth=12e9)
"""The same chip with the GDDR5 memory system that Jouppi et al. (section 7) evaluate as the
improved TPU': about 5x the DDR3 bandwidth."""

PRESETS: dict[str, Preset] = {p.name: p for p in (TPU_V1, TPU_V1_GDDR5)}
DEFAULT_PRESET: Final = "tpu-v1"
