"""The SIMT emitter's subgroups wider than one work-item, built and run by the OpenCL driver.

OpenCL devices declare subgroups of 1 (DeviceInfo.subgroup_size); a dialect with S > 1 and no
shuffle instruction exchanges lanes through work-group memory. That path is what a SIMT dialect
(CUDA's warps) shares, so it is checked here, bit for bit against the interpreter at that S."""

from __future__ import annotations

import numpy as np
import pytest

import hal
from hal.kernel import interpreter, opencl, simt

from .test_opencl import needs_device


@hal.kernel
def collectives(x: hal.Ptr[hal.f32], lanes: hal.Ptr[hal.i32], out: hal.Ptr[hal.f32], ids: hal.Ptr[hal.i32]):
    i = hal.global_id(0)
    v = x[i]
    out[6 * i] = hal.subgroup_reduce_add(v)
    out[6 * i + 1] = hal.subgroup_reduce_max(v)
    out[6 * i + 2] = hal.shuffle(v, lanes[i])
    out[6 * i + 3] = hal.shuffle_xor(v, lanes[i] & (hal.subgroup_size() - 1))  # a mask in [0, S)
    out[6 * i + 4] = hal.group_reduce_add(v)
    out[6 * i + 5] = hal.group_reduce_min(v)
    ids[i] = hal.subgroup_local_id() + 1000 * hal.subgroup_size()


def test_source_shuffles_through_work_group_memory_without_an_instruction() -> None:
    text = simt.emit(collectives.ir, opencl.OpenCL(subgroup_size=8, max_group_size=256)).text
    assert "__local float hal_red_f32[256];" in text
    assert "hal_red_f32[hal_lid - hal_lane + (" in text and "hal_lane = hal_lid % 8" in text


@needs_device
@pytest.mark.parametrize("size", [1, 4, 32])
@pytest.mark.parametrize("block", [64, 50])
def test_wide_subgroups_match_the_interpreter(size: int, block: int) -> None:
    import pyopencl as cl

    groups = 3
    n = groups * block
    rng = np.random.default_rng(size + block)
    x = (rng.standard_normal(n) * 100).astype(np.float32)
    lanes = rng.integers(-1, size + 1, n).astype(np.int32)
    source = simt.emit(collectives.ir, opencl.OpenCL(subgroup_size=size, max_group_size=block))
    ctx = cl.Context([cl.get_platforms()[0].get_devices()[0]])
    queue = cl.CommandQueue(ctx)
    program = cl.Program(ctx, source.text).build(options=list(opencl.BUILD_OPTIONS))
    host = [x, lanes, np.zeros(6 * n, np.float32), np.zeros(n, np.int32)]
    flags = cl.mem_flags.COPY_HOST_PTR | cl.mem_flags.READ_WRITE
    bufs = [cl.Buffer(ctx, flags, hostbuf=a) for a in host]
    args: list[object] = []
    for a, b in zip(host, bufs, strict=True):
        args += [b, np.int64(0), np.int64(a.size)]
    faults = cl.Buffer(ctx, flags, hostbuf=np.zeros(simt.FAULT_WORDS, np.int32))
    getattr(program, source.entry)(queue, (n,), (block,), *args, faults, np.int32(0))
    for a, b in zip(host[2:], bufs[2:], strict=True):
        cl.enqueue_copy(queue, a, b)
    queue.finish()
    want = [x.copy(), lanes.copy(), np.zeros(6 * n, np.float32), np.zeros(n, np.int32)]
    interpreter.run(collectives.ir, (groups, 1, 1), (block, 1, 1), want, subgroup_size=size)
    assert np.array_equal(host[3], want[3])
    assert np.array_equal(host[2], want[2]), np.flatnonzero(host[2] != want[2])[:10]


@hal.kernel
def too_far(x: hal.Ptr[hal.i32]):
    v = x[hal.global_id(0)]
    step = 1
    x[hal.global_id(0)] = v + hal.shuffle_down(v, step)  # lane + 1 does not exist where S = 1


@needs_device
def test_checked_mode_faults_on_a_shuffle_distance_the_subgroup_does_not_have(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAL_CHECK", "1")
    dev = hal.device("opencl")
    x = dev.array(np.arange(8, dtype=np.int32))
    too_far[1, 8, dev.default_queue](x)
    with pytest.raises(hal.DeviceFault, match=r"hal.shuffle_down\(v, d\) distance \(below hal.subgroup_size\(\) = 1"):
        dev.default_queue.synchronize()
