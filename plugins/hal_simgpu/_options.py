"""Options of ``hal.device("simgpu", ...)``: validated by pydantic, unknown names refused."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Options(BaseModel):
    """``preset`` picks the modelled part (default: the device index's); ``checked`` turns on
    shared-memory race detection (default: ``HAL_CHECK=1`` in the environment)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    preset: Literal["a100", "h100", "h200"] | None = None
    min_dram_transfer: Literal[32, 64, 128] = Field(
        default=64, description="Bytes of the smallest DRAM transfer: the unit of dram_bytes.")
    checked: bool | None = None
