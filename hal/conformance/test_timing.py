"""Event timing. On every device: event times are ordered and cover the device time of the commands
between them. On a device that declares ``simulated_timing``: the model's time grows with the work,
is the same for the same work, every profile record carries it with the model's counters, and the
device names the model that produced it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import hal
from hal.kernel.samples import saxpy

SMALL, BIG = 1 << 10, 1 << 16
"""Elements of the small and the big version of each workload."""
REL = 1e-9
"""Relative slack for sums and differences of the same device times (rounding only)."""
TICK = 1e-6
"""Absolute slack per timed command: real devices' event timers have a resolution (CUDA's is about 0.5 us)."""

Workload = Callable[[hal.Queue, int], None]


def test_elapsed_is_ordered_and_covers_the_work(device: hal.Device) -> None:
    q = device.queue()
    x, y = device.zeros((BIG,), np.float32), device.empty((BIG,), np.float32)
    with hal.profile() as prof:
        e0 = q.record()
        q.fill(x, 1.0)
        q.copy(y, x)
        e1 = q.record()
        q.copy(x, y)
        q.fill(y, 2.0)
        e2 = q.record()
        q.synchronize()
    first, both = e1.elapsed(e0), e2.elapsed(e0)
    assert e0.elapsed(e0) == 0.0
    assert 0.0 < first <= both, f"events recorded in order: e1 - e0 = {first} s, e2 - e0 = {both} s"
    assert e0.elapsed(e1) == -first
    work = sum(r.device_s for r in prof.records)
    assert work <= both * (1 + REL) + TICK * len(prof.records), (
        f"the commands between two events of one in-order queue took {work} s of device time, but the events "
        f"are {both} s apart")
    q.close()


def _workloads(device: hal.Device) -> dict[str, Workload]:
    """A copy, a fill, and where declared a kernel and a gemm, each sized by an element count."""
    x, y = device.zeros((BIG,), np.float32), device.zeros((BIG,), np.float32)
    block = min(256, device.info.max_block_size)

    def copy(q: hal.Queue, n: int) -> None:
        q.copy(y[:n], x[:n])

    def fill(q: hal.Queue, n: int) -> None:
        q.fill(y[:n], 2.0)

    def kernel(q: hal.Queue, n: int) -> None:
        saxpy[n // block, block, q](2.0, x[:n], y[:n], n)

    side = {SMALL: device.zeros((16, 16), np.float32), BIG: device.zeros((128, 128), np.float32)}

    def gemm(q: hal.Queue, n: int) -> None:
        hal.ops.gemm(side[n], side[n], queue=q)

    work: dict[str, Workload] = {"copy": copy, "fill": fill}
    if device.supports("kernels"):
        work["kernel"] = kernel
    if device.supports("tensor_ops"):
        work["gemm"] = gemm
    return work


def _timed(q: hal.Queue, work: Workload, n: int) -> float:
    start = q.record()
    work(q, n)
    end = q.record()
    return end.elapsed(start)


@pytest.mark.feature("simulated_timing")
def test_simulated_device_names_its_model(device: hal.Device) -> None:
    assert device.info.simulated, "a device with simulated timing says it is simulated (DeviceInfo.simulated)"
    assert device.info.model, "a simulated device names the preset and model version that produced its figures"


@pytest.mark.feature("simulated_timing")
def test_simulated_time_grows_with_the_work(device: hal.Device) -> None:
    q = device.queue()
    for name, work in _workloads(device).items():
        work(q, SMALL)  # loads what a first run loads (an FPGA bitstream, say)
        small, big = _timed(q, work, SMALL), _timed(q, work, BIG)
        assert 0.0 < small < big, f"{name}: {SMALL} elements took {small} s, {BIG} elements {big} s"
    q.close()


@pytest.mark.feature("simulated_timing")
def test_simulated_time_is_the_same_for_the_same_work(device: hal.Device) -> None:
    q = device.queue()
    for name, work in _workloads(device).items():
        work(q, BIG)
        first, second = _timed(q, work, BIG), _timed(q, work, BIG)
        assert first == pytest.approx(second, rel=REL), (
            f"{name}: the same work took {first} s, then {second} s; a model's time must not depend on the host")
    q.close()


@pytest.mark.feature("simulated_timing")
def test_profile_records_carry_model_time_and_counters(device: hal.Device) -> None:
    q = device.queue()
    work = _workloads(device)
    with hal.profile() as prof:
        for run in work.values():
            run(q, SMALL)
        q.synchronize()
    assert len(prof.records) >= len(work)
    for r in prof.records:
        assert r.device_s > 0, f"{r.name} ({r.kind}) has no modelled device time"
        assert r.counters, f"{r.name} ({r.kind}) has no model counters"
    q.close()


@pytest.mark.feature("kernels")
def test_first_launch_time_excludes_the_compile(device: hal.Device) -> None:
    """A kernel compiles at its first launch, on the host; the events around that launch time the
    device's work only, on one queue and on several queues launching from several threads. (A
    simulated clock never counts host time; what a first run loads, such as an FPGA bitstream, is
    device time and stays.)"""
    runs = 4

    def first_launch(q: hal.Queue, tag: int) -> tuple[float, float, float]:
        kernel = hal.kernel.from_source(_FRESH.format(value=float(tag)))  # a new kernel: nothing cached
        x = device.zeros((SMALL,), np.float32)
        start = q.record()
        began = time.perf_counter()
        kernel[SMALL // 64, 64, q](x, SMALL)
        host = time.perf_counter() - began
        first = q.record().elapsed(start)
        again = q.record()
        kernel[SMALL // 64, 64, q](x, SMALL)
        return first, q.record().elapsed(again), host

    tags = iter(range(time.time_ns() % 10**9, 2**40))
    results = [first_launch(device.default_queue, next(tags)) for _ in range(runs)]
    queues = [device.queue() for _ in range(runs)]
    with ThreadPoolExecutor(runs) as pool:
        results += list(pool.map(first_launch, queues, [next(tags) for _ in queues]))
    for first, second, host in results:
        assert first >= 0.0 and second >= 0.0
        if host > 0.05 and not device.info.simulated:  # the call compiled that long: none of it may show
            assert first < host / 2, (f"the first launch's events are {first} s apart; its call took {host} s, "
                                      "mostly compiling, which is host time, not device time")
    for q in queues:
        q.close()


_FRESH = """
def fresh(x: hal.Ptr[hal.f32], n: hal.i32):
    i = hal.global_id(0)
    if i < n:
        x[i] = x[i] + {value}
"""
"""A kernel whose constant makes its code new to every compiler cache."""
