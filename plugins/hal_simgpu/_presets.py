"""Presets: the parameters of the modelled parts, from NVIDIA's public data sheets.

Every number here is a published figure (data sheet, architecture whitepaper,
CUDA C Programming Guide tables) or, where marked *measured*, a typical
microbenchmark figure; the README cites them. The timing model reads nothing
else, so a new part is one more :class:`Preset`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

MODEL_VERSION = "simgpu-model-2"
"""Bump when any formula or default changes what the model predicts."""

SECTOR_BYTES = 32
"""L1/L2 sector: the unit of global-memory traffic on every NVIDIA part since Maxwell."""


class Pipes(BaseModel):
    """Warp instructions per SM per clock of each execution pipe (lanes per SM per clock / 32)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    fp32: float
    fp64: float
    int: float
    sfu: float = Field(description="Special functions (MUFU: rsqrt, ex2, lg2, sin, cos) and conversions.")
    lsu: float = Field(description="Load/store issue: global, shared and local accesses (replays included).")
    issue: float = Field(description="Warp schedulers x one instruction per clock: the total issue ceiling.")


class Preset(BaseModel):
    """One modelled part. Frozen: a device's preset never changes once opened."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    name: str = Field(description="The real part this preset models.")
    sms: int = Field(ge=1)
    clock_hz: float = Field(gt=0, description="Boost clock.")
    pipes: Pipes
    fp32_flops: float = Field(description="Data-sheet FP32 peak (non-tensor), for the record and a self-check.")
    fp64_flops: float = Field(description="Data-sheet FP64 peak (non-tensor).")
    memory_bytes: int
    dram_bandwidth: float = Field(gt=0, description="Peak DRAM bandwidth, bytes/s.")
    dram_efficiency: float = Field(gt=0, le=1, description="Achievable fraction of peak (STREAM-like kernels).")
    dram_latency_cycles: float = Field(gt=0, description="Measured load-to-use latency of a DRAM access.")
    l2_bytes: int
    l2_bandwidth: float = Field(gt=0, description="Achievable L2 bandwidth, bytes/s (measured).")
    l2_latency_cycles: float = Field(gt=0, description="Measured load-to-use latency of an L2 hit.")
    l2_atomics_per_clock: float = Field(gt=0, description="Device-wide global atomics per clock on distinct addresses.")
    same_address_atomic_rate: float = Field(
        gt=0, description="Atomics per second on one address: L2 serialises them, one lane at a time.")
    l1_sectors_per_clock: float = Field(gt=0, description="Sectors one SM's L1 hands to the memory system per clock.")
    shared_per_sm: int
    shared_per_block: int = Field(description="Largest opt-in static+dynamic allocation of one block.")
    shared_reserved_per_block: int = Field(description="Shared memory the driver reserves per resident block.")
    registers_per_sm: int
    max_registers_per_thread: int
    register_granularity: int = Field(description="Registers per thread are allocated in multiples of this.")
    max_threads_per_sm: int
    max_threads_per_block: int
    max_blocks_per_sm: int
    launch_latency_s: float = Field(description="Launch to completion of an empty kernel (measured).")
    graph_node_latency_s: float = Field(
        default=0.7e-6, gt=0,
        description="What a kernel node after the first of a replayed graph (g.launch) pays instead of "
                    "launch_latency_s: the published CUDA Graphs figure of a 117-kernel chain on an H100, "
                    "735 us eager against 83 us as one graph, about 0.7 us per node.")
    block_launch_rate: float | None = Field(
        gt=0, description="Blocks per second the front end dispatches, device-wide (measured); None: not modelled.")
    pcie_bandwidth: float = Field(description="Achievable host<->device copy bandwidth, one direction, bytes/s.")
    pcie_latency_s: float = Field(description="Fixed cost of one host<->device copy.")

    @property
    def max_warps_per_sm(self) -> int:
        return self.max_threads_per_sm // 32

    @property
    def dram_bytes_per_clock(self) -> float:
        """Achievable DRAM bytes per SM clock, device-wide."""
        return self.dram_bandwidth * self.dram_efficiency / self.clock_hz

    @property
    def model(self) -> str:
        """``<preset>/<model version>``: the label of every figure this preset produces."""
        return f"{self.key}/{MODEL_VERSION}"


A100 = Preset(
    key="a100",
    name="NVIDIA A100 SXM4 40GB (simulated)",
    sms=108,
    clock_hz=1.410e9,
    # CUDA C Programming Guide, "Arithmetic Instructions" table, compute capability 8.0:
    # 64 FP32, 32 FP64, 64 INT32, 16 MUFU/conversion lanes per SM per clock; 32 LD/ST units; 4 schedulers.
    pipes=Pipes(fp32=2.0, fp64=1.0, int=2.0, sfu=0.5, lsu=1.0, issue=4.0),
    fp32_flops=19.5e12,
    fp64_flops=9.7e12,
    memory_bytes=40 * 2**30,
    dram_bandwidth=1555e9,
    dram_efficiency=0.9,
    dram_latency_cycles=560.0,
    l2_bytes=40 * 2**20,
    l2_bandwidth=5.0e12,
    l2_latency_cycles=200.0,
    l2_atomics_per_clock=80.0,
    same_address_atomic_rate=1.41e9,  # assumed one per SM clock (not measured on an A100)
    l1_sectors_per_clock=4.0,
    shared_per_sm=164 * 1024,
    shared_per_block=163 * 1024,
    shared_reserved_per_block=1024,
    registers_per_sm=65536,
    max_registers_per_thread=255,
    register_granularity=8,
    max_threads_per_sm=2048,
    max_threads_per_block=1024,
    max_blocks_per_sm=32,
    # Not measured on an A100: the launch path (driver, front end) is assumed the same as the
    # Hopper parts', whose CUDA-event launch latency measured 5.1-7.1 us and block dispatch
    # 0.55-0.60 ns per block; an A100 preset faster to launch than both would be an artefact.
    launch_latency_s=6.0e-6,
    block_launch_rate=1.7e9,
    pcie_bandwidth=25e9,
    pcie_latency_s=8e-6,
)

H100 = Preset(
    key="h100",
    name="NVIDIA H100 SXM5 80GB (simulated)",
    sms=132,
    clock_hz=1.980e9,
    # Compute capability 9.0: 128 FP32, 64 FP64, 64 INT32, 16 MUFU lanes per SM per clock.
    pipes=Pipes(fp32=4.0, fp64=2.0, int=2.0, sfu=0.5, lsu=1.0, issue=4.0),
    fp32_flops=67e12,
    fp64_flops=34e12,
    memory_bytes=80 * 2**30,
    dram_bandwidth=3.35e12,
    dram_efficiency=0.9,
    dram_latency_cycles=950.0,
    l2_bytes=50 * 2**20,
    l2_bandwidth=10.0e12,
    l2_latency_cycles=260.0,
    l2_atomics_per_clock=96.0,
    same_address_atomic_rate=1.36e9,  # measured: 0.73-0.75 ns per atomic with 1, 8 or 32 lanes per warp
    l1_sectors_per_clock=4.0,
    shared_per_sm=228 * 1024,
    shared_per_block=227 * 1024,
    shared_reserved_per_block=1024,
    registers_per_sm=65536,
    max_registers_per_thread=255,
    register_granularity=8,
    max_threads_per_sm=2048,
    max_threads_per_block=1024,
    max_blocks_per_sm=32,
    launch_latency_s=7.1e-6,  # measured: CUDA-event-timed empty kernel, median of five runs (5.5-8.2 us)
    block_launch_rate=1.7e9,  # measured: empty grids of 65536-1048576 blocks take 0.55-0.60 ns per block
    pcie_bandwidth=50e9,
    pcie_latency_s=8e-6,
)

H200 = H100.model_copy(update=dict(
    key="h200",
    name="NVIDIA H200 SXM 141GB (simulated)",
    # H200 data sheet: the H100 SXM5's Hopper die (132 SMs at 1980 MHz, 67 / 34 TFLOPS FP32 / FP64,
    # 228 KiB shared and 64K registers per SM), with 141 GB of HBM3e at 4.8 TB/s and a 60 MB L2
    # (what the CUDA device properties report). DRAM and L2 latency and L2 bandwidth: assumed the
    # H100's (same SM clock and L2 design; not measured on the H200).
    memory_bytes=141 * 2**30,
    dram_bandwidth=4.8e12,
    l2_bytes=60 * 2**20,
    same_address_atomic_rate=1.36e9,  # measured: 0.73-0.75 ns per atomic with 1, 8 or 32 lanes per warp
    launch_latency_s=5.1e-6,  # measured: CUDA-event-timed empty kernel, 4.96 and 5.25 us in two runs; median
    block_launch_rate=1.7e9,  # measured: empty grids of 65536-1048576 blocks take 0.57-0.60 ns per block
))
"""Built from the H100 preset: every field not listed is the same Hopper SM (and PCIe Gen5 x16)."""

PRESETS: dict[str, Preset] = {p.key: p for p in (A100, H100, H200)}
"""Device index i of the backend is the i-th preset here."""
