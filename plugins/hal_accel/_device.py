"""AccelDevice: a simulated NPU whose memory is its DRAM and whose work is hal.ops operators."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from hal.backend import Dim3, Executable, Feature, UnsupportedError
from hal.sim import SimDevice

from ._presets import Preset

if TYPE_CHECKING:
    from hal.backend import DeviceInfo
    from hal.kernel import ir

FEATURES = frozenset({Feature.TENSOR_OPS, Feature.INT8, Feature.SIMULATED_TIMING})
DTYPES = ("bool", "int8", "uint8", "int32", "uint32", "float32")
"""What the DRAM stores; the array computes int8 (int32 accumulate) and float32."""


class AccelDevice(SimDevice):
    """One NPU: hal arrays live in its DRAM; the native operators in :mod:`._ops` run on it;
    general kernels do not (it has no instruction stream for them)."""

    def __init__(self, index: int, part: Preset) -> None:
        self.index = index
        self.part = part
        self._info: DeviceInfo | None = None

    def info(self) -> DeviceInfo:
        if self._info is None:
            from hal.backend import DeviceInfo  # pydantic: loaded when a program first asks, not at discovery

            p = self.part
            self._info = DeviceInfo(
                name=p.product, backend="accel", index=self.index, kind="accelerator", vendor="hal (simulated)",
                memory_bytes=p.memory_bytes, compute_units=1, max_block_size=1, max_block_dims=(1, 1, 1),
                max_grid_dims=(1, 1, 1), warp_size=1, shared_memory_bytes=0, dtypes=DTYPES, features=FEATURES,
                simulated=True, host_visible=False, model=p.describe(), peak_flops=p.peak_ops,
                peak_bandwidth=p.dram_bandwidth)
        return self._info

    def transfer_seconds(self, kind: str, nbytes: int) -> float:
        """Host copies cross the host link; a device copy reads and writes DRAM; a fill writes it."""
        p = self.part
        if kind in ("copy_h2d", "copy_d2h"):
            return nbytes / p.host_bandwidth
        if kind == "copy_d2d":
            return 2 * nbytes / p.dram_bandwidth
        return nbytes / p.dram_bandwidth

    def compile(self, kernel: ir.Kernel) -> Executable:
        raise UnsupportedError(
            f"{self.info().name} cannot run kernel {kernel.name!r}: it lacks the 'kernels' feature (a "
            f"systolic array runs hal.ops operators only); call hal.ops instead, or use a device that "
            f"supports 'kernels'", feature=Feature.KERNELS.value)

    def execute(self, exe: Executable, grid: Dim3, block: Dim3, args: Sequence[Any]) -> tuple[float, dict[str, Any]]:
        raise UnsupportedError(f"{self.info().name} runs no kernels", feature=Feature.KERNELS.value)
