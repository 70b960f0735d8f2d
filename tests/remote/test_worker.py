"""The worker in process (no Ray): batches of every command on a hosted device that the host
cannot address, faults and errors as values, and ring collectives planned as the driver plans
them, on three workers of two kinds."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
from hal_remote._collective import parts, plan, sends
from hal_remote._protocol import (
    CLOSE,
    COPY,
    FILL,
    GRAPH,
    LAUNCH,
    READ,
    RECORD,
    TRACE,
    WAIT,
    WRITE,
    BatchResult,
    pack_error,
    unpack_error,
)
from hal_remote._worker import Worker

import hal
from hal.kernel.samples import saxpy


@hal.kernel
def _oob(x: hal.Ptr[hal.f32], n: hal.i32):
    x[hal.global_id(0) + n] = 1.0


def _worker(spec: str) -> Worker:
    worker = Worker(spec, {})
    ok, (info, where) = worker.open()
    assert ok and info["name"] and where
    return worker


def _alloc(worker: Worker, bid: int, nbytes: int) -> None:
    assert worker.allocate(bid, nbytes) == (True, None)


def test_a_batch_of_every_command_on_a_device_the_host_cannot_address() -> None:
    w = _worker("simgpu:0")
    for bid in (1, 2, 3):
        _alloc(w, bid, 4096)
    assert w._compile(10, saxpy.ir.to_json()) == (True, None)
    x = np.arange(1024, dtype=np.float32)
    trace = hal.backend.CommandTrace("saxpy", "kernel", "remote:0")
    batch: list[tuple[Any, ...]] = [
        (WRITE, 1, 0, x.view(np.uint8)),  # large data: an array (through the object store)
        (WRITE, 2, 0, np.ones(1024, np.float32).tobytes()),  # inline bytes
        (RECORD, 100),
        (TRACE, (LAUNCH, 10, (8, 1, 1), (128, 1, 1), [2.0, (1, 0, 1024), (2, 0, 1024), 1024]), trace),
        (FILL, 3, 0, 4096, b"\x00\x00\x80\x3f"),  # 1.0f
        (COPY, 3, 0, 2, 0, 2048),
        (READ, 3, 0, 4096),
        (RECORD, 101),
    ]
    other: list[tuple[Any, ...]] = [(WAIT, 101), (READ, 2, 4, 8), (CLOSE,)]

    async def run() -> tuple[BatchResult, BatchResult]:
        first = await w.submit(0, 7, batch, [], [])
        second = await w.submit(1, 8, other, [], [])
        return first, second
    first, second = asyncio.run(run())
    assert first.fault is None and second.fault is None
    out = first.reads[0].view(np.float32)
    np.testing.assert_array_equal(out[:512], 2 * x[:512] + 1)
    assert (out[512:] == 1).all()
    np.testing.assert_array_equal(second.reads[0].view(np.float32), 2 * x[1:3] + 1)
    assert len(first.times) == 2 and first.times[1] > first.times[0]  # simulated seconds
    (filled,) = first.traces
    assert filled.device_s > 0 and filled.counters["cycles"] > 0
    assert 8 not in w.queues  # closed once its work had run
    w.release([1, 2, 3], [100, 101])
    assert not w.buffers and not w.events


@pytest.mark.parametrize("spec", ["cpu", "simgpu:0"])
def test_a_graph_is_defined_once_and_replayed_by_one_command(spec: str) -> None:
    w = _worker(spec)
    for bid in (1, 2):
        _alloc(w, bid, 4096)
    assert w._compile(10, saxpy.ir.to_json()) == (True, None)
    x = np.arange(1024, dtype=np.float32)
    graph = [(WRITE, 1, 0, x.tobytes()), (FILL, 2, 0, 4096, b"\x00\x00\x80\x3f"),
             (LAUNCH, 10, (8, 1, 1), (128, 1, 1), [2.0, (1, 0, 1024), (2, 0, 1024), 1024]),
             (COPY, 1, 0, 2, 0, 4096)]
    assert w.define_graph(50, graph) == (True, None)

    async def run() -> BatchResult:
        await w.submit(0, 7, [(GRAPH, 50), (GRAPH, 50)], [], [])
        return await w.submit(1, 7, [(READ, 1, 0, 4096)], [], [50])
    result = asyncio.run(run())
    assert result.fault is None
    np.testing.assert_array_equal(result.reads[0].view(np.float32), 2 * x + 1)  # the second replay's
    assert 50 not in w.graphs  # forgotten with the events
    assert w.define_graph(51, [(LAUNCH, 99, (1, 1, 1), (1, 1, 1), [])])[0] is False  # an unknown kernel: a value


def test_faults_and_errors_travel_as_values() -> None:
    w = _worker("simgpu:0")
    _alloc(w, 1, 256)
    assert w._compile(2, _oob.ir.to_json()) == (True, None)
    result = asyncio.run(w.submit(0, 1, [(LAUNCH, 2, (1, 1, 1), (64, 1, 1), [(1, 0, 64), 1]), (FILL, 1, 0, 256, b"\x00")],
                                  [], []))
    fault = unpack_error(result.fault, "remote:3")  # type: ignore[arg-type]
    assert isinstance(fault, hal.DeviceFault) and str(fault).startswith("remote:3: ") and "_oob" in str(fault)
    ok, packed = w.allocate(9, 1 << 62)
    assert not ok and isinstance(unpack_error(packed), hal.OutOfMemoryError)
    ok, packed = w._compile(3, "{}")
    assert not ok and isinstance(unpack_error(packed), hal.DeviceFault) and "ValueError" in packed[1]
    error = unpack_error(pack_error(hal.CompileError("no lists", "k.py", 7)))
    assert isinstance(error, hal.CompileError) and (error.filename, error.line) == ("k.py", 7)
    assert str(error) == "k.py:7: no lists"
    assert isinstance(unpack_error(("NoSuchError", "boom", {})), hal.DeviceFault)


def test_opening_a_device_that_is_not_there_is_an_error_value() -> None:
    ok, packed = Worker("simgpu:9", {}).open()
    assert not ok and isinstance(unpack_error(packed), hal.DeviceNotFoundError)


@pytest.mark.parametrize("n", [1, 2, 3, 4])
@pytest.mark.parametrize("kind", ["all_reduce", "reduce_scatter", "all_gather", "broadcast"])
def test_every_chunk_is_sent_and_received_once_per_phase(kind: str, n: int) -> None:
    for pos in range(n):
        steps = plan(kind, "sum", n, pos)
        assert len(steps) == len(sends(kind, n, pos)) + 1 and steps[-1][1] is None and steps[0][0] is None
    if kind == "broadcast":
        got = {(pos, recv[0]) for pos in range(n) for recv, _ in plan(kind, "sum", n, pos) if recv}
        assert got == {(pos, c) for pos in range(1, n) for c in range(n)}  # every non-root gets every chunk
    if kind == "all_reduce" and n == 2:  # two ranks swap whole arrays and reduce them at once
        assert parts(kind, n) == 1 and plan(kind, "max", 2, 1) == [(None, 0), ((0, "max"), None)]


def _ring(workers: list[Worker], kind: str, op: str, inputs: list[int], outputs: list[int], nbytes: int,
          dtype: np.dtype[Any], root: int = 0) -> None:
    """Run a collective the way the driver plans it, calling the workers in dependency order."""
    n = len(workers)
    plans = [plan(kind, op, n, r, root) for r in range(n)]
    out_bytes = nbytes * n if kind == "all_gather" else nbytes // n if kind == "reduce_scatter" else nbytes
    outs: list[Any] = [None] * n
    for k in range(len(plans[0])):
        step_outs = []
        for r, w in enumerate(workers):
            start = {"all_reduce": "dst", "reduce_scatter": "src", "all_gather": "none",
                     "broadcast": "dst" if r == root else "none"}[kind]
            opening = (start, (inputs[r], 0, nbytes), (outputs[r], 0, out_bytes), dtype.str, parts(kind, n),
                       r if kind == "all_gather" else None, r if kind == "reduce_scatter" else None)
            recv, send = plans[r][k]
            step = (opening if k == 0 else None, recv, send, k == len(plans[r]) - 1)
            out, _ = asyncio.run(w.collective(1, step, outs[(r - 1) % n] if recv else None, None))
            step_outs.append(None if out is None else out.copy())  # Ray copies what a step returns
        outs = step_outs


def _fill(w: Worker, bid: int, data: np.ndarray) -> None:
    _alloc(w, bid, max(data.nbytes, 1))
    assert asyncio.run(w.submit(w._next, 1, [(WRITE, bid, 0, data.view(np.uint8).reshape(-1))], [], [])).fault is None


def _read(w: Worker, bid: int, nbytes: int, dtype: Any) -> np.ndarray:
    result = asyncio.run(w.submit(w._next, 1, [(READ, bid, 0, nbytes)], [], []))
    return result.reads[0].view(dtype)


@pytest.mark.parametrize("kind", ["all_reduce", "reduce_scatter", "all_gather", "broadcast"])
def test_ring_collectives_on_three_workers_of_two_kinds(kind: str) -> None:
    workers = [_worker("cpu"), _worker("simgpu:0"), _worker("simgpu:1")]
    size = 3 * 37 if kind == "reduce_scatter" else 37  # chunks of unequal length elsewhere
    data = [np.arange(size, dtype=np.float64) * (r + 1) + r for r in range(3)]
    for r, w in enumerate(workers):
        _fill(w, 1, data[r])
        out_size = {"all_gather": 3 * size, "reduce_scatter": size // 3}.get(kind, size)
        _alloc(w, 2, out_size * 8)
    in_place = kind in ("all_reduce", "broadcast")
    _ring(workers, kind, "max" if kind == "reduce_scatter" else "sum", [1] * 3, [1 if in_place else 2] * 3,
          size * 8, np.dtype(np.float64), root=1)
    for r, w in enumerate(workers):
        if kind == "all_reduce":
            np.testing.assert_array_equal(_read(w, 1, size * 8, np.float64), sum(data))
        elif kind == "broadcast":
            np.testing.assert_array_equal(_read(w, 1, size * 8, np.float64), data[1])
        elif kind == "all_gather":
            np.testing.assert_array_equal(_read(w, 2, 3 * size * 8, np.float64), np.concatenate(data))
            np.testing.assert_array_equal(_read(w, 1, size * 8, np.float64), data[r])  # the input is intact
        else:
            np.testing.assert_array_equal(_read(w, 2, size // 3 * 8, np.float64),
                                          np.maximum.reduce(data)[r * 37:(r + 1) * 37])
            np.testing.assert_array_equal(_read(w, 1, size * 8, np.float64), data[r])
        assert not w._collectives


def test_a_remote_device_cannot_host_a_remote_device() -> None:
    from hal_remote._cluster import start_worker

    with pytest.raises(hal.DeviceNotFoundError, match="HAL_REMOTE=cpu,simgpu:1"):
        start_worker("remote:0")


@pytest.mark.parametrize("command", [
    (READ, 1, 4096, 4096), (READ, 1, 1 << 40, 8), (READ, 1, -8, 8), (READ, 1, 0, 1 << 40),
    (WRITE, 1, 4090, b"12345678"), (COPY, 1, 0, 2, 1024, 4096), (COPY, 1, 1 << 40, 2, 0, 8),
    (FILL, 1, 4088, 16, b"\0\0\0\0"), (FILL, 1, 0, 6, b"\0\0\0\0"),
    (LAUNCH, 10, (8, 1, 1), (128, 1, 1), [2.0, (1, 0, 1025), (2, 0, 1024), 1024]),  # 1025 f32 > 4096 bytes
    (LAUNCH, 10, (8, 1, 1), (128, 1, 1), [2.0, (1, 4, 1024), (2, 0, 1024), 1024]),
    (LAUNCH, 10, (8, 1, 1), (1 << 20, 1, 1), [2.0, (1, 0, 1024), (2, 0, 1024), 1024]),  # block too large
    (LAUNCH, 10, (8, 1, 1), (128, 1, 1), [2.0, (1, 0, 1024)]),
    (READ, 9, 0, 8), (LAUNCH, 11, (1, 1, 1), (1, 1, 1), []), (WAIT, 55), (99,),
])
def test_the_worker_checks_every_id_offset_and_size_before_touching_memory(command: tuple[Any, ...]) -> None:
    """A command the driver's core would have refused (sent by anything that reaches the actor) is a
    HalError for the caller, before any memory is touched; the reply keeps one read per READ, and
    the worker keeps serving."""
    w = _worker("cpu")
    _alloc(w, 1, 4096)
    _alloc(w, 2, 4096)
    assert w._compile(10, saxpy.ir.to_json()) == (True, None)
    x = np.arange(1024, dtype=np.float32)
    batch = [(WRITE, 1, 0, x.tobytes()), (READ, 1, 0, 16), command, (READ, 1, 4, 8)]
    result = asyncio.run(w.submit(0, 1, batch, [], []))
    error = unpack_error(result.fault)  # type: ignore[arg-type]
    assert isinstance(error, (hal.InvalidArgumentError, hal.InvalidHandleError)), error
    assert "the remote worker hosting cpu" in str(error) or "allows at most 1024 per block" in str(error)
    reads = [r for r in result.reads if r.size]  # a refused READ comes back empty
    assert len(result.reads) == 2 + (command[0] == READ)
    np.testing.assert_array_equal(reads[0].view(np.float32), x[:4])
    np.testing.assert_array_equal(reads[-1].view(np.float32), x[1:3])
    assert asyncio.run(w.submit(1, 1, [(READ, 1, 0, 4096)], [], [])).reads[0].view(np.float32).tolist() == x.tolist()
