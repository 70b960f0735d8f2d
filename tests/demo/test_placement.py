from __future__ import annotations

import numpy as np
import pytest

import hal
from hal.demo.placement import Impl, Op, Placer, Tensor


def _double(dev: hal.Device, x: hal.Array) -> hal.Array:
    if dev.spec.startswith("simgpu"):
        raise hal.UnsupportedError("this test's device refuses 'double'", feature="double")
    return hal.ops.mul(x, 2.0)


DOUBLE = Op("double", (Impl("mul", _double),))


def test_refused_op_runs_on_fallback_and_moves_are_counted() -> None:
    placer = Placer(hal.device("simgpu"), hal.device("cpu"))
    x = placer.tensor(np.arange(8, dtype=np.float32))
    (y,) = placer(DOUBLE, x)
    assert isinstance(y, Tensor) and y.home.spec == "cpu:0"
    np.testing.assert_array_equal(y.numpy(), 2 * np.arange(8))
    p = placer.placements["double"]
    assert p.fallback and p.device == "cpu:0" and "refuses" in p.refused[0]
    assert placer.moves.count == 1 and placer.moves.nbytes == 32
    placer(DOUBLE, x)  # the copy on the fallback is reused, the choice is cached
    assert placer.moves.count == 1 and placer.calls["double"] == 2


def test_kernel_impl_is_rejected_before_inputs_move() -> None:
    from hal.demo.kernels import relu_grad

    placer = Placer(hal.device("accel"), hal.device("cpu"))
    seen: list[str] = []

    def fn(dev: hal.Device, x: hal.Array) -> hal.Array:
        seen.append(dev.spec)
        return hal.ops.relu(x)

    op = Op("k", (Impl("kernel", fn, (relu_grad,)),))
    placer(op, placer.tensor(np.ones(4, np.float32)))
    assert seen == ["cpu:0"] and placer.placements["k"].fallback


def test_no_device_can_run_it() -> None:
    placer = Placer(hal.device("simgpu"), hal.device("simgpu"))
    with pytest.raises(hal.UnsupportedError, match="double"):
        placer(DOUBLE, placer.tensor(np.ones(2, np.float32)))
