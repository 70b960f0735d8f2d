"""Compressed all-reduce (``compress="int8" | "int4"``): the codec's error bound, the result's
bound, error feedback over many calls, threads, and the checks. Bounds are computed here from
the scheme's definition (a half-scale per encoding, scale = block peak / level)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import pytest

import hal
from hal.collective import compression

DEVICES = ("cpu:0", "fake:0", "fake:1")
LEVEL = {"int8": 127, "int4": 7}


def _arrays(data: Sequence[np.ndarray]) -> list[hal.Array]:
    return [hal.device(spec).array(d) for spec, d in zip(DEVICES, data)]


def _call_bound(inputs: Sequence[np.ndarray], scheme: str) -> float:
    """Largest error of one compressed all-reduce of ``inputs``: a half-scale per rank's encoding
    and one for the encoded sum, whose peak is at most the exact peak plus those errors."""
    level = LEVEL[scheme]
    encodings = sum(float(np.abs(x).max()) for x in inputs) / (2 * level)
    peak = float(np.abs(np.sum(inputs, axis=0)).max()) + encodings
    return (encodings + peak / (2 * level)) * (1 + 1e-5)


@pytest.mark.parametrize("scheme", ["int8", "int4"])
def test_codec_error_is_at_most_half_a_scale_per_block(scheme: str) -> None:
    rng = np.random.default_rng(0)
    count = 5 * compression.BLOCK + 37  # a partial last block
    x = rng.standard_normal(count) * np.repeat(10.0 ** rng.integers(-3, 3, 6), compression.BLOCK)[:count]
    x[compression.BLOCK:2 * compression.BLOCK] = 0  # an all-zero block
    for dtype in (np.float32, np.float64):
        values = x.astype(dtype)
        packed = compression.encode(values, scheme)
        back = compression.decode(packed, np.dtype(dtype))
        assert back.dtype == dtype and back.shape == values.shape
        codes_bytes = count if scheme == "int8" else (count + 1) // 2
        assert packed.nbytes == compression.packed_nbytes(count, scheme) == codes_bytes + 4 * 6
        for b in range(6):
            block = slice(b * compression.BLOCK, (b + 1) * compression.BLOCK)
            half_scale = np.abs(values[block]).max() / LEVEL[scheme] / 2
            assert np.abs(back[block] - values[block]).max() <= half_scale * (1 + 1e-5)
        assert (back[compression.BLOCK:2 * compression.BLOCK] == 0).all()


def test_a_non_finite_value_spoils_its_block_only() -> None:
    x = np.ones(3 * compression.BLOCK, np.float32)
    x[compression.BLOCK + 5] = np.inf
    back = compression.decode(compression.encode(x, "int8"), np.dtype(np.float32))
    assert np.isnan(back[compression.BLOCK:2 * compression.BLOCK]).all()
    assert (back[:compression.BLOCK] == 1).all() and (back[2 * compression.BLOCK:] == 1).all()


@pytest.mark.parametrize("scheme", ["int8", "int4"])
def test_all_reduce_within_the_bound_same_bits_everywhere(scheme: str) -> None:
    rng = np.random.default_rng(1)
    data = [(rng.standard_normal((40, 33)) * (i + 1)).astype(np.float32) for i in range(3)]
    arrays = _arrays(data)
    with hal.profile() as prof:
        hal.collective.all_reduce(arrays, compress=scheme)
    result = arrays[0].numpy()
    assert all(np.array_equal(a.numpy(), result) for a in arrays[1:])
    exact = np.sum(np.array(data, np.float64), axis=0)
    assert np.abs(result - exact).max() <= _call_bound(data, scheme)
    assert np.abs(result - exact).max() > 0  # it did compress
    moved = [r.nbytes for r in prof.records if r.kind == "collective"]
    assert moved == [2 * data[0].nbytes] * 3  # the host path moves full values to and from the host


def test_error_feedback_keeps_the_sum_over_calls_exact_to_one_calls_error() -> None:
    rng = np.random.default_rng(2)
    steps, shape = 40, (700,)
    inputs = [[(rng.standard_normal(shape) + 0.5).astype(np.float32) for _ in DEVICES] for _ in range(steps)]
    exact = np.sum(np.array(inputs, np.float64), axis=(0, 1))
    sums = {}
    for feedback in (True, False):
        residuals = [hal.device(s).zeros(shape, np.float32) for s in DEVICES] if feedback else None
        total = np.zeros(shape)
        for data in inputs:
            arrays = _arrays(data)
            hal.collective.all_reduce(arrays, compress="int4", residuals=residuals)
            total += arrays[1].numpy()
        sums[feedback] = total
    # the residuals carry at most a half-scale per encoding; inputs with the residuals added are
    # at most one call's bound above the data
    worst = max(_call_bound(d, "int4") for d in inputs)
    padded = [[np.abs(x).max() + worst for x in d] for d in inputs]
    bound = max(sum(p) / 14 + (sum(p) + sum(p) / 14) / 14 for p in padded)
    with_feedback, without = np.abs(sums[True] - exact).max(), np.abs(sums[False] - exact).max()
    assert with_feedback <= bound < without  # without feedback the errors pile up past any one call's


def test_concurrent_compressed_all_reduces_from_threads() -> None:
    rng = np.random.default_rng(4)
    jobs = [[rng.standard_normal(1000).astype(np.float32) for _ in DEVICES] for _ in range(6)]
    arrays = [_arrays(d) for d in jobs]
    residuals = [[hal.device(s).zeros((1000,), np.float32) for s in DEVICES] for _ in jobs]
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            hal.collective.all_reduce(arrays[i], compress="int8", residuals=residuals[i])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for data, arrs, res in zip(jobs, arrays, residuals):
        result = arrs[0].numpy()
        assert all(np.array_equal(a.numpy(), result) for a in arrs)
        assert np.abs(result - np.sum(data, axis=0)).max() <= _call_bound(data, "int8")
        # what the result lacks is exactly what the residuals hold
        np.testing.assert_allclose(result + sum(r.numpy() for r in res), np.sum(data, axis=0), atol=1e-5)


def test_bad_compression_arguments_are_refused_and_the_devices_keep_working() -> None:
    cpu, fake = hal.device("cpu"), hal.device("fake:0")
    x, y = cpu.full((8,), 1, np.float32), fake.full((8,), 1, np.float32)
    with pytest.raises(hal.InvalidArgumentError, match="compress must be one of 'int8', 'int4'"):
        hal.collective.all_reduce([x, y], compress="int2")
    with pytest.raises(hal.InvalidArgumentError, match="op='max' cannot be compressed"):
        hal.collective.all_reduce([x, y], op="max", compress="int8")
    with pytest.raises(hal.InvalidArgumentError, match="takes float32 or float64 arrays, got int32"):
        hal.collective.all_reduce([cpu.zeros((8,), np.int32), fake.zeros((8,), np.int32)], compress="int8")
    with pytest.raises(hal.InvalidArgumentError, match="residuals .error feedback. need a compress scheme"):
        hal.collective.all_reduce([x, y], residuals=[cpu.zeros((8,), np.float32), fake.zeros((8,), np.float32)])
    with pytest.raises(hal.InvalidArgumentError, match="need the device and dtype of their input"):
        hal.collective.all_reduce([x, y], compress="int8", residuals=[fake.zeros((8,), np.float32),
                                                                       cpu.zeros((8,), np.float32)])
    with pytest.raises(hal.InvalidArgumentError, match="need the shape of their input"):
        hal.collective.all_reduce([x, y], compress="int8", residuals=[cpu.zeros((2, 4), np.float32),
                                                                       fake.zeros((2, 4), np.float32)])
    hal.collective.all_reduce([x, y], compress="int8")
    assert (x.numpy() == 2).all() and (y.numpy() == 2).all()
    hal.collective.all_reduce([cpu.zeros((0,), np.float32), fake.zeros((0,), np.float32)], compress="int8")
    single = [cpu.array(np.arange(4, dtype=np.float32))]
    hal.collective.all_reduce(single, compress="int4")  # one device: nothing sent, nothing lost
    np.testing.assert_array_equal(single[0].numpy(), np.arange(4))
