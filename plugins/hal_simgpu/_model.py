"""The timing model: occupancy, an L2 filter, Hong & Kim's MWP/CWP, and throughput floors.

Pure functions of a :class:`~._presets.Preset` and the counts a traced launch
produced (:class:`LaunchCounts`), so every formula is unit-testable without
running a kernel. README.md states each formula, its source and its error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ._presets import SECTOR_BYTES, Preset

PIPES = ("fp32", "fp64", "int", "sfu", "lsu")


@dataclass(frozen=True)
class Occupancy:
    """How many blocks of a launch one SM holds at once, and what limits it."""

    blocks_per_sm: int
    warps_per_sm: int
    occupancy: float
    limiter: str
    registers: int
    """Registers per thread after the compiler's cap (see :func:`occupancy`)."""


def occupancy(p: Preset, threads_per_block: int, shared_bytes: int, registers: int) -> Occupancy:
    """Resident blocks per SM: the CUDA occupancy calculator's four limits.

    Registers are capped so that one block always fits, as ``nvcc`` does for a
    kernel launched with that block size (it spills instead; spills are not modelled).
    """
    warps_per_block = math.ceil(threads_per_block / 32)
    g = p.register_granularity
    cap = p.registers_per_sm // (warps_per_block * 32) // g * g
    regs = max(g, min(math.ceil(registers / g) * g, p.max_registers_per_thread // g * g, cap))
    limits = {
        "blocks": p.max_blocks_per_sm,
        "threads": p.max_warps_per_sm // warps_per_block,
        "registers": p.registers_per_sm // (regs * warps_per_block * 32),
    }
    if shared_bytes:
        limits["shared_memory"] = p.shared_per_sm // (shared_bytes + p.shared_reserved_per_block)
    limiter = min(limits, key=lambda k: limits[k])
    blocks = max(1, limits[limiter])
    warps = blocks * warps_per_block
    return Occupancy(blocks, warps, warps / p.max_warps_per_sm, limiter, regs)


@dataclass(frozen=True)
class Traffic:
    """Global-memory traffic of a launch in ``segment``-byte units (the minimum DRAM transfer)."""

    segment: int
    read_requests: int = 0
    """Sum over warp loads of the distinct segments their active lanes touch."""
    write_requests: int = 0
    read_footprint: int = 0
    """Distinct segments loaded anywhere in the launch."""
    write_footprint: int = 0
    footprint: int = 0
    """Distinct segments touched at all (loads and stores)."""


def dram_bytes(p: Preset, t: Traffic) -> int:
    """DRAM bytes after a first-order L2: compulsory misses, plus capacity misses on reuse.

    Each distinct segment is read once (if loaded) and written back once (if stored).
    A repeated request hits L2 with probability ``min(1, L2 / footprint)``.
    """
    total = t.footprint * t.segment
    miss = 0.0 if total <= p.l2_bytes else 1.0 - p.l2_bytes / total
    reuse = (t.read_requests - t.read_footprint) + (t.write_requests - t.write_footprint)
    return int((t.read_footprint + t.write_footprint + miss * reuse) * t.segment)


@dataclass(frozen=True)
class LaunchCounts:
    """What a traced launch did, summed over all its warps."""

    blocks: int
    threads_per_block: int
    pipe_instructions: dict[str, float] = field(default_factory=dict)
    """Warp instructions (warps with >= 1 active lane) per pipe in :data:`PIPES`; ``lsu`` includes replays."""
    warp_instructions: int = 0
    load_rounds: int = 0
    """Warp-weighted global load rounds: loads of one statement execution overlap (one latency each round)."""
    sectors: int = 0
    """32-byte sectors requested by warp accesses (loads, stores, atomics) to global memory."""
    traffic: Traffic = Traffic(64)
    bank_conflicts: int = 0
    atomic_collisions: int = 0
    global_atomics: int = 0
    """Lanes that executed a global atomic."""
    atomic_chain: int = 0
    """Most global atomics the launch made on any one address (they serialise in L2)."""


@dataclass(frozen=True)
class Estimate:
    seconds: float
    cycles: float
    bound: str
    dram_bytes: int
    terms: dict[str, float]
    """Cycles of each component (``hk``, ``compute``, ``dram``, ``l2``, ``atomics``, ``launch``): why ``bound`` is."""


LATENCY_MARGIN = 1.2
"""A launch is "latency"-bound when Hong & Kim's time exceeds every throughput floor by this factor."""


def kernel_time(p: Preset, c: LaunchCounts, occ: Occupancy) -> Estimate:
    """Simulated seconds of one launch (see README, "Timing model")."""
    warps_per_block = math.ceil(c.threads_per_block / 32)
    total_warps = max(1, c.blocks * warps_per_block)
    active_sms = min(p.sms, c.blocks)
    busiest = math.ceil(c.blocks / p.sms)
    resident = min(occ.blocks_per_sm, busiest)
    reps = busiest / resident
    n = resident * warps_per_block
    share = busiest / c.blocks  # fraction of the launch's work on the busiest SM

    # Compute: per warp, the busiest pipe or the issue ceiling (cycles of the SM's issue it takes).
    pipe_cycles = {k: c.pipe_instructions.get(k, 0.0) / getattr(p.pipes, k) for k in PIPES}
    comp_total = max(max(pipe_cycles.values()), c.warp_instructions / p.pipes.issue)
    comp_per_warp = comp_total / total_warps

    dram = dram_bytes(p, c.traffic)
    sector_bytes = c.sectors * SECTOR_BYTES
    hit = 0.0 if sector_bytes == 0 else min(1.0, max(0.0, 1.0 - dram / sector_bytes))
    latency = hit * p.l2_latency_cycles + (1.0 - hit) * p.dram_latency_cycles

    # Hong & Kim (ISCA 2009), per SM and per repetition of `n` resident warps.
    rounds = c.load_rounds / total_warps
    if rounds > 0:
        bytes_per_round = max(dram, 1) / max(c.load_rounds, 1)
        departure = max(1.0, c.sectors / max(c.load_rounds, 1) / p.l1_sectors_per_clock)
        bw_per_sm = min(p.dram_bytes_per_clock / active_sms, p.l1_sectors_per_clock * SECTOR_BYTES)
        mwp = max(1.0, min(latency / departure, bw_per_sm * latency / bytes_per_round, n))
        mem_cycles = rounds * latency
        cwp = min((mem_cycles + comp_per_warp) / max(comp_per_warp, 1e-9), n)
        if mwp >= n and cwp >= n:
            per_rep = mem_cycles + comp_per_warp + comp_per_warp / rounds * (mwp - 1)
        elif cwp >= mwp or comp_per_warp > mem_cycles:
            per_rep = mem_cycles * n / mwp + comp_per_warp / rounds * (mwp - 1)
        else:
            per_rep = latency + comp_per_warp * n
    else:
        per_rep = comp_per_warp * n
    terms = {
        "hk": per_rep * reps,
        "compute": comp_total * share,
        "dram": dram / p.dram_bytes_per_clock,
        "l2": sector_bytes / (p.l2_bandwidth / p.clock_hz),
        "atomics": max(c.global_atomics / p.l2_atomics_per_clock,
                       c.atomic_chain * p.clock_hz / p.same_address_atomic_rate),
        "launch": 0.0 if p.block_launch_rate is None else c.blocks * p.clock_hz / p.block_launch_rate,
    }
    cycles = max(terms.values())
    floors = max(v for k, v in terms.items() if k != "hk")
    memory = max(terms["dram"], terms["l2"], terms["atomics"])
    if terms["hk"] > LATENCY_MARGIN * floors:
        bound = "latency"
    elif terms["compute"] >= max(memory, terms["launch"]):
        bound = "compute"
    elif terms["launch"] > memory:
        bound = "launch"
    else:
        bound = "memory"
    return Estimate(p.launch_latency_s + cycles / p.clock_hz, cycles, bound, dram, terms)


def transfer_seconds(p: Preset, kind: str, nbytes: int) -> float:
    """Copies: PCIe for host<->device, DRAM read+write for device-to-device, DRAM write for a fill."""
    if kind in ("copy_h2d", "copy_d2h"):
        return p.pcie_latency_s + nbytes / p.pcie_bandwidth
    bandwidth = p.dram_bandwidth * p.dram_efficiency
    if kind == "copy_d2d":
        return p.launch_latency_s + 2 * nbytes / bandwidth
    if kind == "fill":
        return p.launch_latency_s + nbytes / bandwidth
    raise ValueError(f"unknown transfer kind {kind!r}")
