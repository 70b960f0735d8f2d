"""The compressed all-reduce among remote devices: encoded parts move worker to worker, every
rank ends with the same bits as the host path, the residuals hold what compression lost, and
the bytes counted are the encoded ones."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
from hal_remote._worker import Worker

import hal
from hal.collective import _host, compression

from .test_worker import _fill, _read, _worker


def test_int8_between_two_remote_devices_moves_a_quarter(pair: list[hal.Device], monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(5)
    data = [rng.standard_normal(50_000).astype(np.float32) for _ in pair]
    arrays = [d.array(x) for d, x in zip(pair, data)]
    residuals = [d.zeros((50_000,), np.float32) for d in pair]

    def refuse(*args: Any) -> None:
        raise AssertionError("remote arrays went through the driver")
    monkeypatch.setattr(_host, "run_compressed", refuse)
    with hal.profile() as prof:
        hal.collective.all_reduce(arrays, compress="int8", residuals=residuals)
    result = arrays[0].numpy()
    assert np.array_equal(arrays[1].numpy(), result)
    exact = data[0].astype(np.float64) + data[1]
    peaks = [float(np.abs(x).max()) for x in data]
    half_scales = sum(peaks) / 254  # one per rank's encoding, and one for the sum's (peak at most their sum)
    assert np.abs(result - exact).max() <= half_scales * (1 + 1 + 1 / 127) * (1 + 1e-5)
    lost = residuals[0].numpy().astype(np.float64) + residuals[1].numpy()
    np.testing.assert_allclose(result + lost, exact, atol=1e-5)  # the residuals hold exactly what was lost
    moved = [r.nbytes for r in prof.records if r.kind == "collective"]
    assert moved == compression.moved(50_000, 2, "int8") and max(moved) <= 0.27 * 2 * data[0].nbytes


def _compressed(workers: list[Worker], count: int, scheme: str, residual: int | None) -> None:
    """Run a compressed all-reduce of buffer 1 (residual: that buffer) the way the driver plans
    it, in dependency order."""
    n = len(workers)
    enc = [asyncio.run(w.compressed_encode(7, r, (1, 0, count * 4), None if residual is None else
                                           (residual, 0, count * 4), "<f4", n, scheme))
           for r, w in enumerate(workers)]
    red = [asyncio.run(w.compressed_reduce(7, j, *(e[j] for e in enc))) for j, w in enumerate(workers)]
    for w in workers:
        w.compressed_decode(7, *red)
        assert not w._compressed


def test_three_workers_of_two_kinds_give_the_host_paths_bits() -> None:
    workers = [_worker("cpu"), _worker("simgpu:0"), _worker("simgpu:1")]  # host memory and not
    rng = np.random.default_rng(6)
    count = 3 * compression.BLOCK + 11
    data = [rng.standard_normal(count).astype(np.float32) for _ in workers]
    for w, x in zip(workers, data):
        _fill(w, 1, x)
        _fill(w, 2, np.zeros(count, np.float32))
    _compressed(workers, count, "int4", residual=2)
    local = [hal.device(s).array(x) for s, x in zip(("cpu", "simgpu:0", "simgpu:1"), data)]
    kept = [a.device.zeros((count,), np.float32) for a in local]
    hal.collective.all_reduce(local, compress="int4", residuals=kept)
    for w, a, r in zip(workers, local, kept):
        np.testing.assert_array_equal(_read(w, 1, count * 4, np.float32), a.numpy())
        np.testing.assert_array_equal(_read(w, 2, count * 4, np.float32), r.numpy())


def test_the_worker_checks_what_it_is_asked_to_encode() -> None:
    w = _worker("cpu")
    _fill(w, 1, np.zeros(16, np.float32))
    with pytest.raises(hal.InvalidHandleError, match="buffer 99 does not exist"):
        asyncio.run(w.compressed_encode(8, 0, (99, 0, 64), None, "<f4", 2, "int8"))
    with pytest.raises(hal.InvalidArgumentError, match="outside buffer 1"):
        asyncio.run(w.compressed_encode(8, 0, (1, 0, 64), (1, 32, 64), "<f4", 2, "int8"))
    with pytest.raises(hal.InvalidArgumentError, match="as 'int2'"):
        asyncio.run(w.compressed_encode(8, 0, (1, 0, 64), None, "<f4", 2, "int2"))
    assert not w._compressed
