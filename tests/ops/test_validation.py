"""Bad inputs are refused before any work, with errors that name what is wrong."""

from __future__ import annotations

import numpy as np
import pytest

import hal


@pytest.fixture
def m(interp: hal.Device) -> hal.Array:
    return interp.zeros((2, 3))


def test_gemm_shapes_dtypes_and_scalars(interp: hal.Device, m: hal.Array) -> None:
    with pytest.raises(hal.InvalidArgumentError, match=r"inner dimensions differ: op\(a\) is 2x3, op\(b\) is 2x3"):
        hal.ops.gemm(m, m)
    with pytest.raises(hal.InvalidArgumentError, match="a is float32 but b is float64"):
        hal.ops.gemm(m, interp.zeros((3, 2), np.float64))
    with pytest.raises(hal.InvalidArgumentError, match="b must be 2-D"):
        hal.ops.gemm(m, interp.zeros((3,)))
    with pytest.raises(hal.InvalidArgumentError, match="out must be a \\(2, 2\\) float32 array"):
        hal.ops.gemm(m, m, interp.zeros((2, 3)), trans_b=True)
    with pytest.raises(hal.InvalidArgumentError, match="alpha must be a real number"):
        hal.ops.gemm(m, m, trans_b=True, alpha="2")  # type: ignore[arg-type]
    with pytest.raises(hal.InvalidArgumentError, match="out overlaps an input"):
        sq = interp.zeros((2, 2))
        hal.ops.gemm(sq, sq, sq)


def test_int8_gemm_needs_the_feature(interp: hal.Device) -> None:
    a = interp.zeros((2, 2), np.int8)
    with pytest.raises(hal.UnsupportedError, match="needs the int8 feature") as info:
        hal.ops.gemm(a, a)
    assert info.value.feature == "int8"
    with pytest.raises(hal.InvalidArgumentError, match="takes float32 or float64 arrays \\(int8 only for gemm\\)"):
        hal.ops.add(a, a)


def test_devices_must_match(interp: hal.Device, cpu: hal.Device, m: hal.Array) -> None:
    with pytest.raises(hal.InvalidArgumentError, match="a lives on opsfake:0 but b on cpu:0"):
        hal.ops.add(m, cpu.zeros((2, 3)))
    with pytest.raises(hal.InvalidArgumentError, match="x lives on opsfake:0 but w on cpu:0"):
        hal.ops.conv2d(interp.zeros((1, 1, 3, 3)), cpu.zeros((1, 1, 3, 3)))
    with pytest.raises(hal.InvalidArgumentError, match="out must be a \\(2, 3\\) float32 array on opsfake:0, got "
                                                       "\\(2, 3\\) float32 on cpu:0"):
        hal.ops.relu(m, cpu.zeros((2, 3)))
    with pytest.raises(hal.InvalidArgumentError, match="queue must be a hal.Queue of opsfake:0, got a queue of cpu:0"):
        hal.ops.relu(m, queue=cpu.default_queue)


def test_operand_types(m: hal.Array) -> None:
    with pytest.raises(hal.InvalidArgumentError, match="x must be a hal.Array, got ndarray; copy it with dev.array"):
        hal.ops.exp(np.zeros(3))  # type: ignore[arg-type]
    with pytest.raises(hal.InvalidArgumentError, match="a is \\(2, 3\\) float32 but b is \\(3,\\) float32"):
        hal.ops.mul(m, hal.ops.sum(m, 0))
    with pytest.raises(hal.InvalidArgumentError, match="needs at least one hal.Array operand"):
        hal.ops.add(1.0, 2.0)
    with pytest.raises(hal.InvalidArgumentError, match="b must be a hal.Array or a real number, got str"):
        hal.ops.add(m, "1")
    with pytest.raises(hal.InvalidArgumentError, match="must be a hal.Array or a real number, got bool"):
        hal.ops.add(m, True)
    with pytest.raises(hal.InvalidArgumentError, match=r"b = 100000000000\.\.\.0000 \(401 characters\) is too "
                                                       "large for a float"):
        hal.ops.add(m, 10**400)
    np.testing.assert_array_equal(hal.ops.add(m, 10**30).numpy(), np.full((2, 3), np.float32(1e30)))


def test_freed_arrays(interp: hal.Device) -> None:
    a, b = interp.zeros((4,)), interp.zeros((4,))
    b.free()
    with pytest.raises(hal.InvalidHandleError):
        hal.ops.add(a, b)
    with pytest.raises(hal.InvalidHandleError):
        hal.ops.add(b, 1.0)
    with pytest.raises(hal.InvalidHandleError):
        hal.ops.relu(a, b)


def test_axes_and_conv_geometry(interp: hal.Device, m: hal.Array) -> None:
    with pytest.raises(hal.InvalidArgumentError, match="axis 2 is out of range for 2 dimensions"):
        hal.ops.sum(m, 2)
    with pytest.raises(hal.InvalidArgumentError, match="axis must be an int, got 0.5"):
        hal.ops.softmax(m, 0.5)  # type: ignore[arg-type]
    with pytest.raises(hal.InvalidArgumentError, match="axes \\(0, 0\\) is not a permutation"):
        hal.ops.transpose(m, (0, 0))
    x = interp.zeros((1, 2, 4, 4))
    with pytest.raises(hal.InvalidArgumentError, match="x has 2 channels but w expects 3"):
        hal.ops.conv2d(x, interp.zeros((1, 3, 3, 3)))
    with pytest.raises(hal.InvalidArgumentError, match="a 5x5 filter does not fit the 4x4 input"):
        hal.ops.conv2d(x, interp.zeros((1, 2, 5, 5)))
    with pytest.raises(hal.InvalidArgumentError, match="stride must be an int >= 1"):
        hal.ops.conv2d(x, interp.zeros((1, 2, 3, 3)), stride=0)


def test_device_keeps_working_after_errors(interp: hal.Device, m: hal.Array) -> None:
    with pytest.raises(hal.InvalidArgumentError):
        hal.ops.gemm(m, m)
    np.testing.assert_array_equal(hal.ops.add(m, 1.0).numpy(), np.ones((2, 3)))
