"""The subgroup model (issue 24): subgroup collectives under control flow uniform within a subgroup,
shuffles by a distance whose result would depend on the device refused or faulting, fences and
memory orders in the IR and in every C dialect, the interpreter's forward-progress check, and the
errors of the new builtins (bit functions, bitwise atomics)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import hal
from hal._errors import CompileError, DeviceFault
from hal.kernel import analysis, cemit, cuda, ir, opencl, simt
from hal.kernel.interpreter import ABORT, run


@hal.kernel
def cuda_warp_reduce(x: hal.Ptr[hal.i32], out: hal.Ptr[hal.i32]):
    """reduce6's last step as CUDA writes it: five shfl_down steps inside ``if tid < 32``."""
    tid = hal.local_id(0)
    v = x[hal.global_id(0)]
    if tid < 32:
        offset = 16
        while offset > 0:
            v += hal.shuffle_down(v, offset)
            offset //= 2
        if tid == 0:
            out[hal.group_id(0)] = v


def test_if_tid_below_32_is_uniform_within_every_subgroup_of_up_to_32_lanes() -> None:
    kernel = cuda_warp_reduce.ir  # parsing checks it against subgroups of 32
    for size in (1, 2, 32):
        analysis.check_barriers(kernel, size)
    with pytest.raises(CompileError, match="within a subgroup of 64 lanes"):
        analysis.check_barriers(kernel, 64)
    with pytest.raises(CompileError, match=r"every thread of a work-group must reach hal.shuffle_down\(\)"):
        analysis.check_barriers(kernel, None)  # exchanged through work-group memory: per work-group


def test_the_warp_idiom_is_right_with_32_lanes_and_a_fault_with_one() -> None:
    x = np.random.default_rng(0).integers(-9, 9, 128).astype(np.int32)
    out = np.zeros(2, np.int32)
    run(cuda_warp_reduce.ir, (2, 1, 1), (64, 1, 1), [x, out], subgroup_size=32)
    assert out.tolist() == [int(x[:32].sum()), int(x[64:96].sum())]
    with pytest.raises(DeviceFault, match=r"hal.shuffle_down\(v, 16\) on a device whose subgroups have 1 lane"):
        run(cuda_warp_reduce.ir, (2, 1, 1), (64, 1, 1), [x, out], subgroup_size=1)


def test_cpu_checked_mode_flags_a_distance_the_subgroup_does_not_have(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAL_CHECK", "1")
    dev = hal.device("cpu")
    exe = dev.compile(cuda_warp_reduce)
    x, out = dev.array(np.ones(64, np.int32)), dev.zeros((1,), np.int32)
    dev.default_queue.impl.launch(exe.impl, (1, 1, 1), (64, 1, 1), [x, out], None)
    with pytest.raises(hal.DeviceFault, match=r"hal.shuffle_down\(v, d\) with d outside \[0, hal.subgroup_size"):
        dev.default_queue.synchronize()


@pytest.mark.parametrize(("condition", "ok"), [
    ("tid < 32", True), ("tid >= 64", True), ("32 > tid", True), ("tid <= 31", True), ("tid // 32 == 1", True),
    ("tid < hal.subgroup_size()", True), ("tid < 2 * hal.subgroup_size()", True), ("tid >> 5 == 0", True),
    ("tid < 16", False), ("tid == 0", False), ("tid % 2 == 0", False), ("x[tid] > 0", False),
])
def test_which_conditions_are_uniform_within_a_subgroup(condition: str, ok: bool) -> None:
    source = f'''
@hal.kernel
def k(x: hal.Ptr[hal.i32]):
    tid = hal.local_id(0)
    if {condition}:
        x[tid] = hal.subgroup_reduce_add(x[tid])
'''
    build = lambda: hal.kernel.from_source(source, "k").ir  # noqa: E731
    if ok:
        build()
    else:
        with pytest.raises(CompileError, match="uniform within a subgroup|within a subgroup of 32 lanes"):
            build()


def test_a_barrier_still_needs_work_group_uniform_control() -> None:
    source = '''
@hal.kernel
def k(x: hal.Ptr[hal.i32]):
    if hal.local_id(0) < 32:
        hal.barrier()
'''
    with pytest.raises(CompileError, match="every thread of a work-group must reach hal.barrier"):
        _ = hal.kernel.from_source(source, "k").ir


@pytest.mark.parametrize("call", ["hal.shuffle_down(v, 16)", "hal.shuffle_up(v, 1)", "hal.shuffle_xor(v, 1)"])
def test_a_constant_shuffle_distance_is_refused_with_what_to_write(call: str) -> None:
    source = f'''
@hal.kernel
def k(x: hal.Ptr[hal.i32]):
    v = x[hal.global_id(0)]
    x[hal.global_id(0)] = {call}
'''
    with pytest.raises(CompileError, match=r"depends on the device; derive the .* from hal.subgroup_size\(\)"):
        _ = hal.kernel.from_source(source, "k").ir


@hal.kernel
def ordered(flag: hal.Ptr[hal.i32], data: hal.Ptr[hal.f32]):
    data[hal.global_id(0)] = 1.0
    hal.fence("group")
    hal.atomic_exchange(flag, 0, 1, order="release")
    seen = hal.atomic_add(flag, 0, 0, order="acquire")
    hal.atomic_cas(flag, 0, seen, 2, order="seq_cst")
    hal.fence()


def test_fences_and_orders_in_the_ir_and_its_json() -> None:
    k = ordered.ir
    fences = [s for s in ir.walk_statements(k.body) if isinstance(s, ir.Fence)]
    atomics = [s for s in ir.walk_statements(k.body) if isinstance(s, ir.AtomicRMW)]
    assert [f.scope for f in fences] == ["group", "device"]
    assert [a.order for a in atomics] == ["release", "acquire", "seq_cst"]
    assert ir.Kernel.from_json(k.to_json()) == k


def test_every_dialect_spells_the_fences_around_ordered_atomics() -> None:
    c = cemit.emit(ordered.ir)
    assert "__atomic_signal_fence(__ATOMIC_SEQ_CST)" in c and "__atomic_thread_fence(__ATOMIC_RELEASE)" in c
    assert "__atomic_thread_fence(__ATOMIC_ACQUIRE)" in c and c.count("__atomic_thread_fence(__ATOMIC_SEQ_CST)") == 3
    cu = simt.emit(ordered.ir, cuda.Cuda()).text
    assert "__threadfence_block();" in cu and cu.count("__threadfence();") == 5
    cl = simt.emit(ordered.ir, opencl.OpenCL()).text
    assert cl.count("mem_fence(CLK_GLOBAL_MEM_FENCE | CLK_LOCAL_MEM_FENCE);") == 6


@pytest.mark.parametrize(("call", "match"), [
    ('hal.atomic_add(x, 0, 1, order="consume")', "order=, a string constant of 'relaxed'"),
    ('hal.atomic_add(x, 0, 1, ordering="acquire")', "keyword arguments are not allowed"),
    ('hal.fence("system")', "hal.fence takes one scope"),
    ("x[0] = hal.popcount(f[0])", r"hal.popcount takes integers, not f32; cast with hal.u32"),
    ("hal.atomic_or(f, 0, 1.0)", r"hal.atomic_or takes an integer buffer, not f32 \('f'\)"),
])
def test_bad_orders_and_scopes_say_what_to_write(call: str, match: str) -> None:
    source = f'''
@hal.kernel
def k(x: hal.Ptr[hal.i32], f: hal.Ptr[hal.f32]):
    {call}
'''
    with pytest.raises(CompileError, match=match):
        _ = hal.kernel.from_source(source, "k").ir


@hal.kernel
def lane_lock(lock: hal.Ptr[hal.i32], count: hal.Ptr[hal.i32]):
    """Every work-item takes the lock itself: its own work-group's work-items wait for each other."""
    while hal.atomic_cas(lock, 0, 0, 1, order="acquire") != 0:
        pass
    count[0] = count[0] + 1
    hal.atomic_exchange(lock, 0, 0, order="release")


def test_a_spin_that_cannot_progress_is_a_fault_naming_kernel_and_line() -> None:
    assert analysis.waits_on_memory(lane_lock.ir) and not analysis.waits_on_memory(cuda_warp_reduce.ir)
    with pytest.raises(DeviceFault, match=r"kernel 'lane_lock' at .*test_subgroup_model.py:\d+: this while loop "
                                          r"cannot make progress"):
        run(lane_lock.ir, (1, 1, 1), (8, 1, 1), [np.zeros(1, np.int32), np.zeros(1, np.int32)])


@hal.kernel
def spin_forever(flag: hal.Ptr[hal.i32], tries: hal.Ptr[hal.i32]):
    t = 0
    while hal.atomic_add(flag, 0, 0) == 0:
        t += 1
    tries[0] = t


def test_an_abort_stops_a_running_while_loop() -> None:
    stop = threading.Event()
    token = ABORT.set(stop)
    try:
        threading.Timer(0.2, stop.set).start()
        with pytest.raises(DeviceFault, match="aborted in this while loop"):
            run(spin_forever.ir, (1, 1, 1), (1, 1, 1), [np.zeros(1, np.int32), np.zeros(1, np.int32)])
    finally:
        ABORT.reset(token)
