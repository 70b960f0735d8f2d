"""The timing model's formulas, one regime at a time (no kernel runs here)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hal_simgpu._executable import constant_division_lines
from hal_simgpu._model import LaunchCounts, Traffic, dram_bytes, kernel_time, occupancy, transfer_seconds
from hal_simgpu._presets import A100, H100, H200, PRESETS
from hal_simgpu._tracer import _cost

from hal.kernel.types import ScalarType

from . import kernels as k


def test_presets_match_their_data_sheets() -> None:
    for p in PRESETS.values():
        lanes = p.pipes.fp32 * 32
        assert p.sms * lanes * 2 * p.clock_hz == pytest.approx(p.fp32_flops, rel=0.02)
        assert p.sms * p.pipes.fp64 * 32 * 2 * p.clock_hz == pytest.approx(p.fp64_flops, rel=0.02)
    assert (A100.sms, A100.dram_bandwidth, A100.l2_bytes) == (108, 1555e9, 40 * 2**20)
    assert (H100.sms, H100.dram_bandwidth, H100.l2_bytes) == (132, 3.35e12, 50 * 2**20)
    assert (H200.sms, H200.dram_bandwidth, H200.l2_bytes, H200.memory_bytes) == (132, 4.8e12, 60 * 2**20, 141 * 2**30)


@pytest.mark.parametrize(("tpb", "shared", "regs", "blocks", "limiter"), [
    (256, 0, 32, 8, "threads"),
    (1024, 0, 32, 2, "threads"),
    (32, 0, 16, 32, "blocks"),
    (256, 48 * 1024, 32, 3, "shared_memory"),  # 164 KiB / (48 + 1 KiB reserved)
    (256, 0, 128, 2, "registers"),  # 65536 / (128 * 256)
])
def test_occupancy_follows_the_calculator(tpb: int, shared: int, regs: int, blocks: int, limiter: str) -> None:
    occ = occupancy(A100, tpb, shared, regs)
    assert (occ.blocks_per_sm, occ.limiter) == (blocks, limiter)
    assert occ.occupancy == blocks * (tpb // 32) / 64


def test_registers_are_capped_so_one_block_fits() -> None:
    occ = occupancy(A100, 1024, 0, 255)
    assert occ.blocks_per_sm == 1 and occ.registers == 64


def test_l2_absorbs_reuse_of_a_small_footprint_but_not_of_a_large_one() -> None:
    seg = 64
    small = Traffic(seg, read_requests=1000, read_footprint=100, footprint=100)
    assert dram_bytes(A100, small) == 100 * seg
    huge = A100.l2_bytes // seg * 4  # footprint 4x L2: 3/4 of the reuse misses
    big = Traffic(seg, read_requests=2 * huge, read_footprint=huge, footprint=huge)
    assert dram_bytes(A100, big) == pytest.approx(huge * seg * 1.75, rel=1e-6)
    rw = Traffic(seg, read_requests=10, write_requests=10, read_footprint=10, write_footprint=10, footprint=10)
    assert dram_bytes(A100, rw) == 20 * seg  # read once, written back once


def _stream(p=H100, blocks: int = 65536, tpb: int = 256, bytes_per_thread: int = 12) -> LaunchCounts:
    warps = blocks * tpb // 32
    total = warps * 32 * bytes_per_thread
    seg = total // 64
    return LaunchCounts(blocks, tpb, {"fp32": warps, "int": 4 * warps, "lsu": 3 * warps}, 8 * warps,
                        load_rounds=warps, sectors=total // 32,
                        traffic=Traffic(64, seg * 2 // 3, seg // 3, seg * 2 // 3, seg // 3, seg))


def test_streaming_kernel_is_memory_bound_at_the_achievable_bandwidth() -> None:
    c = _stream()
    est = kernel_time(H100, c, occupancy(H100, 256, 0, 16))
    assert est.bound == "memory"
    achieved = est.dram_bytes / (est.seconds - H100.launch_latency_s)
    assert achieved == pytest.approx(H100.dram_bandwidth * H100.dram_efficiency, rel=0.05)


def test_few_resident_warps_are_latency_bound() -> None:
    """Hong & Kim: with one warp per SM, memory parallelism is the warp count, not the bandwidth."""
    c = _stream(blocks=H100.sms * 64, tpb=32)
    many = kernel_time(H100, c, occupancy(H100, 32, 0, 16))
    one = kernel_time(H100, c, occupancy(H100, 32, 200 * 1024, 16))  # shared memory: 1 block per SM
    assert one.bound == "latency" and many.bound != "latency"  # many: 8448 tiny blocks, dispatch-bound on an H100
    assert one.terms["hk"] > 5 * many.terms["hk"]


def test_block_dispatch_bounds_a_launch_of_many_small_blocks() -> None:
    """A measured front-end rate: an empty grid of G blocks takes G / rate after the launch latency."""
    blocks = 1 << 20
    c = LaunchCounts(blocks, 32, {"int": blocks}, blocks)
    est = kernel_time(H100, c, occupancy(H100, 32, 0, 16))
    assert est.bound == "launch"
    assert H100.block_launch_rate is not None
    assert est.seconds == pytest.approx(H100.launch_latency_s + blocks / H100.block_launch_rate)
    assert kernel_time(A100, c, occupancy(A100, 32, 0, 16)).bound == "launch"  # assumed the Hopper front end's


def test_arithmetic_heavy_kernel_is_compute_bound_at_the_fp32_rate() -> None:
    warps = 65536 * 8
    flops_per_thread = 2000
    c = LaunchCounts(65536, 256, {"fp32": warps * flops_per_thread / 2}, warps * flops_per_thread // 2,
                     load_rounds=warps, sectors=warps * 4, traffic=Traffic(64, warps * 2, 0, warps * 2, 0, warps * 2))
    est = kernel_time(A100, c, occupancy(A100, 256, 0, 32))
    assert est.bound == "compute"
    flops = warps * 32 * flops_per_thread
    assert flops / (est.seconds - A100.launch_latency_s) == pytest.approx(A100.fp32_flops, rel=0.05)


def test_atomics_on_one_address_serialise() -> None:
    n = 1 << 20
    spread = LaunchCounts(n // 256, 256, {"lsu": n / 32}, n // 32, global_atomics=n, atomic_chain=1,
                          sectors=n // 8, traffic=Traffic(64, n // 16, n // 16, n // 16, n // 16, n // 16))
    one = LaunchCounts(n // 256, 256, {"lsu": n}, n, global_atomics=n, atomic_chain=n, atomic_collisions=n - n // 32,
                       sectors=n // 32, traffic=Traffic(64, n // 32, n // 32, 1, 1, 1))
    occ = occupancy(A100, 256, 0, 16)
    assert kernel_time(A100, one, occ).seconds > 10 * kernel_time(A100, spread, occ).seconds


def test_transfers() -> None:
    n = 1 << 30
    assert transfer_seconds(A100, "copy_h2d", n) == pytest.approx(A100.pcie_latency_s + n / 25e9)
    assert transfer_seconds(H100, "copy_d2h", n) == pytest.approx(H100.pcie_latency_s + n / 50e9)
    assert transfer_seconds(H100, "copy_d2d", n) < transfer_seconds(H100, "copy_h2d", n) / 10
    assert transfer_seconds(A100, "copy_h2d", 0) == A100.pcie_latency_s
    with pytest.raises(ValueError):
        transfer_seconds(A100, "teleport", 1)


def test_division_by_a_constant_is_strength_reduced_and_branches_use_no_pipe() -> None:
    lines = constant_division_lines(k.reduce128.ir)
    source = Path(k.reduce128.ir.source_file).read_text().splitlines()
    assert [source[line - 1].strip() for line in sorted(lines)] == ["s = s // 2"]
    assert _cost("floordiv", ScalarType.I32, True) == ((2, 3.0),)  # multiply-high, shift, fix-up on the int pipe
    assert _cost("floordiv", ScalarType.I32) == ((2, 20.0),)
    assert _cost("branch", ScalarType.BOOL) == ()
