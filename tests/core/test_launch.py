import numpy as np
import pytest

import hal
from hal.kernel.samples import saxpy


@hal.kernel
def oob(x: hal.Ptr[hal.f32]):
    x[hal.global_id(0) + 1] = 1.0


@hal.kernel
def needs_f64(x: hal.Ptr[hal.f64]):
    x[hal.global_id(0)] = 1.0


def _xy(dev, n=1000):
    return dev.array(np.arange(n, dtype=np.float32)), dev.array(np.ones(n, np.float32))


def test_launch_forms_agree(fake):
    x, y = _xy(fake)
    saxpy[4, 256](2.0, x, y, 1000)
    saxpy[(4,), (256,), fake.default_queue](2.0, x, y, 1000)  # same queue: ordered
    fake.default_queue.launch(saxpy, 4, 256, 2.0, x, y, 1000)
    fake.synchronize()
    np.testing.assert_allclose(y.numpy(), 1 + 6 * np.arange(1000, dtype=np.float32))


def test_compile_ahead_of_time_is_cached(fake):
    exe = fake.compile(saxpy)
    assert exe is fake.compile(saxpy) and exe.name == "saxpy"
    x, y = _xy(fake, 10)
    fake.default_queue.launch(exe, 1, 16, np.float32(1), x, y, np.int32(10))
    np.testing.assert_allclose(y.numpy(), 1 + np.arange(10))


@pytest.mark.parametrize("args,match", [
    ((2.0, "x", None, 10), "'x'"),
    ((2.0, None, None), "takes 4 arguments"),
    (("two", None, None, 10), "'a'"),
    ((2.0, None, None, 2**31), "'n'"),
    ((2.0, None, None, 1.5), "'n'"),
])
def test_bad_arguments_name_the_parameter(fake, args, match):
    x, y = _xy(fake, 10)
    args = tuple(x if a is None and i == 1 else y if a is None else a for i, a in enumerate(args))
    with pytest.raises(hal.InvalidArgumentError, match=match):
        saxpy[1, 16](*args)


def test_wrong_dtype_device_and_freed(fake, fake_remote):
    x, y = _xy(fake, 10)
    with pytest.raises(hal.InvalidArgumentError, match="must hold float32"):
        saxpy[1, 16](1.0, fake.array(np.zeros(10, np.int32)), y, 10)
    with pytest.raises(hal.InvalidArgumentError, match="lives on fake:0 but the launch runs on fake:1"):
        saxpy[1, 16](1.0, fake_remote.array(np.zeros(10, np.float32)), y, 10)
    x.free()
    with pytest.raises(hal.InvalidHandleError):
        saxpy[1, 16](1.0, x, y, 10)


@pytest.mark.parametrize("grid,block,match", [
    (1, 512, "at most 256"), (0.5, 16, "grid"), (1, 0, "block"), ((1, 2, 3, 4), 1, "1 to 3"),
    (2**30, 4, "i32 range"),
])
def test_bad_launch_shapes(fake, grid, block, match):
    x, y = _xy(fake, 10)
    with pytest.raises(hal.InvalidArgumentError, match=match):
        saxpy[grid, block](1.0, x, y, 10)


def test_zero_grid_is_a_no_op(fake):
    x, y = _xy(fake, 10)
    saxpy[0, 16](1.0, x, y, 10)
    np.testing.assert_array_equal(y.numpy(), np.ones(10))


def test_missing_feature_is_unsupported(fake):
    with pytest.raises(hal.UnsupportedError, match="f64"):
        fake.compile(needs_f64)


def test_fault_surfaces_at_sync_and_queue_recovers(fake):
    x, y = _xy(fake, 16)
    q = fake.queue()
    oob[1, 16, q](x)
    with pytest.raises(hal.DeviceFault, match="oob"):
        q.synchronize()
    saxpy[1, 16, q](1.0, x, y, 16)
    q.synchronize()
    assert y.numpy()[0] == 1.0


def test_kernel_profile_record(fake):
    x, y = _xy(fake, 64)
    with hal.profile() as prof:
        saxpy[1, 64](1.0, x, y, 64)
    (rec,) = prof.records
    assert rec.name == "saxpy" and rec.grid == (1, 1, 1) and rec.block == (64, 1, 1)
    assert rec.counters["threads"] == 64
