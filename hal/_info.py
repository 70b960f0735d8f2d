"""DeviceInfo: the frozen description of a device that every backend fills in."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ._features import BASE_DTYPES, Feature, dtypes_for


class DeviceInfo(BaseModel):
    """What a device is and what it can do. Simulated devices say which part they model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="Product name; a simulated device names the part it models.")
    backend: str
    index: int = 0
    kind: Literal["cpu", "gpu", "accelerator", "fpga"]
    vendor: str
    memory_bytes: int = Field(ge=0)
    compute_units: int = Field(ge=1)
    max_block_size: int = Field(ge=1, description="Most work-items in one work-group.")
    max_block_dims: tuple[int, int, int] = (1024, 1024, 64)
    max_grid_dims: tuple[int, int, int] = (2**31 - 1, 65535, 65535)
    warp_size: int = Field(ge=1, description="Threads that execute in lockstep (1 on a CPU).")
    subgroup_size: int = Field(default=1, ge=1, description="Work-items per subgroup of ``hal.subgroup_size()`` "
                               "and ``hal.shuffle`` (a power of two; 1 where subgroups are single work-items).")
    shared_memory_bytes: int = Field(ge=0, description="Work-group memory one work-group may use.")
    dtypes: tuple[str, ...] = Field(default=BASE_DTYPES, description="numpy dtype names of the arrays it stores; "
                                    "by default the base ones plus those of the declared features "
                                    "(hal.backend.dtypes_for: f16, bf16, small_ints, i64).")
    features: frozenset[Feature] = frozenset()
    simulated: bool = False
    host_visible: bool = False
    model: str | None = Field(default=None, description="Timing model and preset of a simulated device.")
    driver_version: str | None = Field(default=None, description="The vendor driver or runtime version, for "
                                                                 "conformance reports; None where there is none.")
    peak_flops: float | None = Field(default=None, ge=0, description="Peak arithmetic operations/s of the main "
                                     "engine at its native precision (FP32 on a GPU, int8 on an NPU; a multiply-add "
                                     "counts two); the model's figure on a simulated device; None where unknown.")
    peak_bandwidth: float | None = Field(default=None, ge=0, description="Peak device-memory bytes/s; None where "
                                         "unknown.")

    @field_validator("subgroup_size")
    @classmethod
    def _power_of_two(cls, value: int) -> int:
        """Subgroups are aligned runs of ``subgroup_size`` lanes, which the collectives' tree order needs."""
        if value & (value - 1):
            raise ValueError(f"subgroup_size must be a power of two, got {value}")
        return value
    @model_validator(mode="before")
    @classmethod
    def _dtypes_of_features(cls, data: Any) -> Any:
        """Without explicit ``dtypes``, a device stores the arrays its declared features bring."""
        if isinstance(data, dict) and "dtypes" not in data and data.get("features"):
            try:
                features = {Feature(f) for f in data["features"]}
            except (TypeError, ValueError):
                return data  # the field's own validation reports it
            return {**data, "dtypes": dtypes_for(features)}
        return data
