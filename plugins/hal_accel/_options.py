"""The options of ``hal.device("accel", ...)``: a preset, and fields that override it.

Imported only when a device is opened with options (pydantic stays out of discovery).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ._presets import DEFAULT_PRESET, PRESETS, Dataflow, Preset

PresetName = Literal["tpu-v1", "tpu-v1-gddr5"]


class AccelOptions(BaseModel):
    """``hal.device("accel", rows=32, cols=32, dataflow="os")``: unset fields keep the preset's value."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    preset: PresetName = Field(DEFAULT_PRESET, description="Part to start from (see hal_accel/_presets.py).")
    rows: int | None = Field(None, ge=1, le=4096, description="Systolic array rows (the reduction side).")
    cols: int | None = Field(None, ge=1, le=4096, description="Systolic array columns.")
    dataflow: Dataflow | None = Field(None, description="ws (weight-), os (output-) or is (input-stationary).")
    clock_hz: float | None = Field(None, gt=0, le=10e9)
    unified_buffer_bytes: int | None = Field(None, ge=64 * 1024, description="On-chip buffer, at least 64 KiB.")
    dram_bandwidth: float | None = Field(None, gt=0, description="Device DRAM bytes per second.")
    memory_bytes: int | None = Field(None, ge=1 << 20, description="Device DRAM capacity, at least 1 MiB.")
    host_bandwidth: float | None = Field(None, gt=0, description="Host link bytes per second.")

    def resolve(self) -> Preset:
        """The preset with every given field replaced; the name records that it was changed."""
        base = PRESETS[self.preset]
        changes = {k: v for k, v in self.model_dump(exclude={"preset"}).items() if v is not None}
        if not changes:
            return base
        label = ",".join(f"{k}={v}" for k, v in sorted(changes.items()))
        part = dataclasses.replace(base, **changes)
        return dataclasses.replace(
            part, name=f"{base.name}({label})",
            product=f"Systolic NPU {part.rows}x{part.cols} {part.dataflow} (simulated; {base.name} with {label})")
