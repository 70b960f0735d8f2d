"""simgpu end to end: exact results, counters, the validation figures, faults (device works after each)."""

from __future__ import annotations

import numpy as np
import pytest
from hal_simgpu._presets import H100, MODEL_VERSION

import hal
from hal.kernel import interpreter, ir
from hal.kernel.types import ScalarType

from . import kernels as k


def test_info_names_the_part_and_the_model(a100: hal.Device, h100: hal.Device) -> None:
    assert "A100 SXM4 40GB" in a100.info.name and "H100 SXM5 80GB" in h100.info.name
    assert a100.info.simulated and not a100.info.host_visible and a100.info.warp_size == 32
    assert h100.info.model.startswith(f"h100/{MODEL_VERSION}")
    assert h100.impl.preset.sms == 132 and h100.info.compute_units == 132
    assert hal.device("simgpu:1").info.name == h100.info.name
    assert h100.supports("simulated_timing") and not h100.supports("host_visible")


def test_options_are_validated() -> None:
    with pytest.raises(hal.InvalidArgumentError, match="warp_count"):
        hal.device("simgpu", warp_count=3)
    with pytest.raises(hal.InvalidArgumentError, match="preset"):
        hal.device("simgpu", preset="v100")
    dev = hal.device("simgpu", preset="a100", min_dram_transfer=32, checked=True)
    assert dev.impl.options.min_dram_transfer == 32 and dev.impl.checked


def test_memory_is_not_host_visible_and_capacity_is_enforced(a100: hal.Device) -> None:
    x = a100.array(np.arange(8, dtype=np.float32))
    with pytest.raises(Exception, match="host"):
        np.from_dlpack(x)
    with pytest.raises(hal.OutOfMemoryError):
        a100.empty((41 * 2**30,), np.uint8)
    np.testing.assert_array_equal(x.numpy(), np.arange(8, dtype=np.float32))


def test_copies_take_pcie_and_dram_time(h100: hal.Device) -> None:
    q = h100.queue()
    host = np.ones(1 << 20, np.float32)
    a = h100.empty(host.shape, np.float32)
    b = h100.empty(host.shape, np.float32)
    e0 = q.record()
    q.copy(a, host)
    e1 = q.record()
    q.copy(b, a)
    e2 = q.record()
    q.synchronize()
    assert e1.elapsed(e0) == pytest.approx(h100.impl.transfer_seconds("copy_h2d", host.nbytes))
    assert e2.elapsed(e1) == pytest.approx(h100.impl.transfer_seconds("copy_d2d", host.nbytes))
    assert e2.elapsed(e1) < e1.elapsed(e0)


def _reference(kernel, grid, block, args):  # noqa: ANN001, ANN202
    host = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    interpreter.run(kernel.ir, grid, block, host)
    return host


def test_results_equal_the_reference_interpreter(a100: hal.Device) -> None:
    rng = np.random.default_rng(1)
    n = 1000
    x = rng.standard_normal(n)
    y = rng.integers(-1000, 1000, n).astype(np.int64)
    want = _reference(k.everything, (4, 1, 1), (250, 1, 1), [x, y, n])
    dx, dy = a100.array(x), a100.array(y)
    k.everything[4, 250](dx, dy, n)
    np.testing.assert_array_equal(dx.numpy(), want[0])
    np.testing.assert_array_equal(dy.numpy(), want[1])

    bins = a100.zeros((16,), np.int32)
    data = rng.integers(0, 16, 5000).astype(np.int32)
    k.histogram[20, 256](a100.array(data), bins, 5000)
    np.testing.assert_array_equal(bins.numpy(), np.bincount(data, minlength=16))


def test_profile_carries_the_model_counters(h100: hal.Device) -> None:
    x = h100.array(np.ones(128 * 64, np.float32))
    out = h100.empty((64,), np.float32)
    with hal.profile() as prof:
        k.reduce128[64, 128](x, out)
    np.testing.assert_array_equal(out.numpy(), np.full(64, 128.0, np.float32))
    c = prof.records[-1].counters
    for name in ("cycles", "dram_bytes", "sectors", "warp_instructions", "bank_conflicts", "atomic_collisions",
                 "occupancy", "waves", "bound", "model"):
        assert name in c
    assert c["model"].startswith(f"h100/{MODEL_VERSION}") and "estimate" in c["model"]
    assert c["bound"] in ("memory", "compute", "latency")
    assert c["sectors"] == 64 * 4 * 4 + 64  # 4 warps x 4 sectors per block, plus one 4-byte store
    assert c["bank_conflicts"] == 0 and c["waves"] == 1


def test_saxpy_on_h100_lands_within_30_percent_of_the_achievable_bandwidth(h100: hal.Device) -> None:
    n = 1 << 24
    x = h100.array(np.ones(n, np.float32))
    y = h100.array(np.ones(n, np.float32))
    with hal.profile() as prof:
        k.saxpy[n // 256, 256](2.0, x, y, n)
    rec = prof.records[-1]
    assert rec.counters["dram_bytes"] == 12 * n and rec.counters["bound"] == "memory"
    achieved = 12 * n / rec.device_s
    assert achieved == pytest.approx(0.9 * 3.35e12, rel=0.30)
    assert y.numpy()[:2].tolist() == [3.0, 3.0]


def test_strided_reads_slow_down_until_each_access_has_its_own_transfer(h100: hal.Device) -> None:
    m = 1 << 20
    y = h100.empty((m,), np.float32)
    read, seconds = {}, {}
    for s in (1, 2, 4, 8, 16, 32):
        x = h100.empty((m * s,), np.float32)
        with hal.profile() as prof:
            k.strided[m // 256, 256](x, y, s, m)
        rec = prof.records[-1]
        read[s] = (rec.counters["dram_bytes"] - 4 * m) / (4 * m)
        seconds[s] = rec.device_s - H100.launch_latency_s
        x.free()
    assert read == {1: 1, 2: 2, 4: 4, 8: 8, 16: 16, 32: 16}  # 64-byte minimum transfer
    useful = {s: 4 * m / seconds[s] for s in seconds}
    drops = [useful[s // 2] / useful[s] for s in (2, 4, 8, 16)]
    # falls ~proportionally to the stride: x2 per doubling, minus the constant cost of writing y
    assert all(1.4 < d <= 2.0 for d in drops) and drops == sorted(drops)
    assert useful[32] == pytest.approx(useful[16], rel=0.05)  # then flattens


def test_bank_conflicts_follow_the_stride(a100: hal.Device) -> None:
    out = a100.empty((256,), np.float32)
    conflicts = {}
    for s in (1, 2, 32, 33):
        with hal.profile() as prof:
            k.bank_stride[1, 256](out, s)
        conflicts[s] = prof.records[-1].counters["bank_conflicts"]
    per_warp_access = {s: conflicts[s] / (8 * 2) for s in conflicts}  # 8 warps, a store and a load each
    assert per_warp_access == {1: 0, 2: 1, 32: 31, 33: 0}


def test_atomic_collisions_are_counted(a100: hal.Device) -> None:
    bins = a100.zeros((4,), np.int32)
    with hal.profile() as prof:
        k.histogram[1, 64](a100.array(np.zeros(64, np.int32)), bins, 64)
    assert prof.records[-1].counters["atomic_collisions"] == 2 * 31
    assert bins.numpy()[0] == 64


def test_out_of_bounds_is_a_fault_naming_kernel_line_and_thread(a100: hal.Device) -> None:
    x = a100.zeros((64,), np.float32)
    k.oob[1, 64](x, 10)
    with pytest.raises(hal.DeviceFault, match=r"kernel 'oob' at .*kernels.py:\d+.*thread"):
        a100.synchronize()
    k.saxpy[1, 64](1.0, x, x, 64)
    a100.synchronize()


class _IRKernel:
    """Launches hand-built IR (a divergent barrier the frontend would refuse statically)."""

    def __init__(self, kernel: ir.Kernel) -> None:
        self.ir = kernel


def test_barrier_divergence_is_a_fault(a100: hal.Device) -> None:
    lid = ir.ThreadIndex("local_id", 0)
    body = (ir.If(ir.Binary("lt", lid, ir.Const(5, ScalarType.I32), ScalarType.BOOL), (ir.Return(9),), (), 9),
            ir.Barrier(11))
    kern = ir.Kernel("div", (ir.Param("out", ScalarType.I32, True),), (), (), body, "div.py", 1)
    out = a100.zeros((1,), np.int32)
    a100.default_queue.launch(_IRKernel(kern), 2, 64, out)
    with pytest.raises(hal.DeviceFault, match="div.py:11.*barrier"):
        a100.synchronize()
    assert out.numpy()[0] == 0


def test_shared_memory_over_subscription_is_refused(a100: hal.Device) -> None:
    x = a100.zeros((1,), np.float32)
    with pytest.raises(hal.InvalidArgumentError, match="shared"):
        k.too_much_shared[1, 32](x)
    k.saxpy[1, 1](1.0, x, x, 1)
    a100.synchronize()


def test_race_is_a_fault_in_checked_mode_only(a100: hal.Device, checked: hal.Device) -> None:
    out = checked.empty((128,), np.float32)
    k.racy[2, 64](out)
    with pytest.raises(hal.DeviceFault, match=r"racy.*shared-memory race on buf\[\d+\] in work-group \(0, 0, 0\)"):
        checked.synchronize()
    k.race_free[2, 64](out)  # barrier-separated accesses and atomics are fine
    checked.synchronize()
    k.reduce128[1, 128](checked.array(np.ones(128, np.float32)), out)
    checked.synchronize()
    assert out.numpy()[0] == 128.0
    k.racy[2, 64](a100.empty((128,), np.float32))
    a100.synchronize()


def test_hal_check_environment_turns_checking_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAL_CHECK", "1")
    dev = hal.device("simgpu", preset="h100", min_dram_transfer=128)  # options unlike the fixtures: a fresh device
    assert dev.impl.checked
    k.racy[1, 64](dev.empty((64,), np.float32))
    with pytest.raises(hal.DeviceFault, match="race"):
        dev.synchronize()
