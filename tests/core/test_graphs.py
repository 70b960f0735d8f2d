"""Graphs beyond the conformance family: the sanitizer around replays, profiling, the CPU's native
form, graph files (and every way a file is refused) and hal.verify."""

from __future__ import annotations

import gc
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import hal
from hal._cli import main
from hal._hazards import HazardTracker
from hal.backend import NativeOp, operand_view


@hal.kernel
def axpy(a: hal.f32, x: hal.Ptr[hal.f32], y: hal.Ptr[hal.f32], n: hal.i32):
    i = hal.global_id(0)
    if i < n:
        y[i] = a * x[i] + y[i]


@hal.kernel
def twice(x: hal.Ptr[hal.f64], n: hal.i32):
    i = hal.global_id(0)
    if i < n:
        x[i] = x[i] * 2.0


N = 512


def _step(dev: hal.Device, q: hal.Queue) -> tuple[hal.Graph, list[hal.Array]]:
    x = dev.array(np.linspace(-2, 2, N, dtype=np.float32))
    y = dev.array(np.sin(np.arange(N, dtype=np.float32)))
    z = dev.zeros((N,), np.float32)
    with q.capture() as g:
        axpy[2, 256, q](1.5, x, y, N)
        q.copy(z, y)
        hal.ops.mul(z, y, out=z, queue=q)
        q.fill(x[:4], 0.25)
        q.copy(y[4:8], np.arange(4, dtype=np.float32), blocking=False)
        axpy[2, 256, q](-0.5, z, x, N)
    return g, [x, y, z]


def test_a_replay_is_one_command_for_the_sanitizer(monkeypatch: pytest.MonkeyPatch) -> None:
    dev = hal.device("cpu")
    monkeypatch.setattr(dev, "_hazards", HazardTracker(dev.spec))
    q1, q2 = dev.queue("q1"), dev.queue("q2")
    g, (x, y, z) = _step(dev, q1)  # the capture itself is no access
    out = dev.empty((N,), np.float32)
    g.launch(q1)
    with pytest.raises(hal.HazardError, match="graph of 6 nodes"):
        q2.copy(out, z)  # reads what the replay writes, unordered
    q2.wait(q1.record())
    q2.copy(out, z)  # ordered: fine
    with pytest.raises(hal.HazardError):
        g.launch(q1)  # writes z, which q2 reads unordered
    q1.wait(q2.record())
    g.launch(q1)
    dev.synchronize()


def test_replays_are_profiled_node_by_node() -> None:
    dev = hal.device("cpu")
    q = dev.queue()
    g, _ = _step(dev, q)
    with hal.profile() as prof:
        g.launch(q)
        q.synchronize()
    names = [r.name for r in prof.records]
    assert names[0] == "axpy" and "copy" in names and "fill" in names and len(names) == len(g.nodes)


def test_the_cpu_graph_runs_native_operators_between_c_runs_and_outlives_its_graph() -> None:
    dev = hal.device("cpu")
    q = dev.queue()
    a = dev.array(np.arange(64, dtype=np.float32).reshape(8, 8) / 8)
    c = dev.zeros((8, 8), np.float32)
    d = dev.zeros((8, 8), np.float32)
    with q.capture() as g:
        q.fill(c, 1.0)
        hal.ops.gemm(a, c, out=d, beta=1.0, queue=q)  # the native gemm: Python, between two C runs
        q.copy(c, d)
        q.copy(d[:1], np.full((1, 8), 7.0, np.float32), blocking=False)
    assert [n.kind for n in g.nodes] == ["fill", "op", "copy", "write"]
    g.launch(q)
    g.launch(q)
    del g
    gc.collect()
    q.synchronize()
    ah = np.arange(64, dtype=np.float32).reshape(8, 8) / 8
    first = ah @ np.ones((8, 8), np.float32)
    first[0] = 7.0
    want = ah @ np.ones((8, 8), np.float32) + first
    want_c = want.copy()
    want[0] = 7.0
    np.testing.assert_array_equal(d.numpy(), want)
    np.testing.assert_array_equal(c.numpy(), want_c)


@pytest.mark.parametrize("spec", ["simgpu:1", "cpu"])
def test_a_saved_graph_rebuilds_on_another_device(tmp_path: Path, spec: str) -> None:
    dev = hal.device("cpu")
    q = dev.queue()
    g, arrays = _step(dev, q)
    path = g.save(tmp_path / "step.halgraph", inputs=True)
    g.launch(q)
    q.synchronize()
    g2 = hal.Graph.load(path, device=spec)
    assert g2.device.spec == hal.device(spec).spec and [n.kind for n in g2.nodes] == [n.kind for n in g.nodes]
    g2.launch()
    g2.queue.synchronize()
    for old, new in zip(g.arrays, g2.arrays):
        np.testing.assert_array_equal(new.numpy().view(np.uint8), old.numpy().view(np.uint8))


def test_verify_reports_bit_identical_outputs(tmp_path: Path) -> None:
    dev = hal.device("cpu")
    g, _ = _step(dev, dev.queue())
    path = g.save(tmp_path / "step.halgraph", inputs=True)
    report = hal.verify(path, devices=["cpu", "simgpu:1", "fpga"])
    assert report.identical and bool(report)
    assert len({json.dumps(h, sort_keys=True) for h in report.hashes.values()}) == 1
    assert "bit-identical on cpu:0, simgpu:1, fpga:0" in str(report)
    assert main(["verify", str(path), "--devices", "cpu,simgpu:1"]) == 0


def test_hal_verify_exits_nonzero_on_a_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.halgraph").write_text("{")
    assert main(["verify", str(tmp_path / "bad.halgraph")]) == 1
    assert "not a complete .halgraph file" in capsys.readouterr().err


def test_verify_names_the_first_node_that_differs(tmp_path: Path) -> None:
    def mul(bug: int) -> Any:
        def run(queue: Any, op: str, a: Any, b: Any, out: Any, *, trace: Any) -> None:
            queue.synchronize()
            view = operand_view(out)
            view[...] = operand_view(a) * operand_view(b)
            view.reshape(-1)[5] += bug  # a planted vendor bug where bug != 0
        return run

    # Natives record as op nodes (a portable operator records its kernels), replayed by name where loaded.
    plants = [hal.ops.register(NativeOp("mul", mul(0), priority=100, backends=frozenset({"cpu"}))),
              hal.ops.register(NativeOp("mul", mul(1), priority=100, backends=frozenset({"simgpu"})))]
    try:
        dev = hal.device("cpu")
        g, _ = _step(dev, dev.queue())
        assert g.nodes[2].kind == "op"
        path = g.save(tmp_path / "step.halgraph", inputs=True)
        report = hal.verify(path, devices=["cpu", "simgpu:0"])
        assert main(["verify", str(path), "--devices", "cpu,simgpu:0"]) == 1
    finally:
        for plant in plants:
            hal.ops.unregister(plant)
    diff = report.first_difference
    assert not report.identical and diff is not None
    assert (diff.node, diff.node_name, diff.devices, diff.element) == (2, "mul", ("cpu:0", "simgpu:0"), (5,))
    assert np.float32(diff.values[1]) == np.float32(diff.values[0]) + np.float32(1)
    assert "node 2 (mul) differs" in str(report)


def _saved(tmp_path: Path, inputs: bool = True) -> Path:
    dev = hal.device("cpu")
    g, _ = _step(dev, dev.queue())
    return g.save(tmp_path / "step.halgraph", inputs=inputs)


def _edit(path: Path, change: Any) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def test_bad_graph_files_are_refused_before_anything_runs(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    text = path.read_text()
    cases = {
        "truncated": lambda: path.write_text(text[: len(text) // 2]),
        "not a graph": lambda: path.write_text('{"hello": 1}'),
        "newer format": lambda: _edit(path, lambda d: d.update(version=d["version"] + 1)),
        "other IR": lambda: _edit(path, lambda d: d.update(ir_version=-1)),
        "edited": lambda: _edit(path, lambda d: d["graph"]["nodes"][0]["args"].__setitem__(0, {"float": "0x1p+3"})),
    }
    messages = {"truncated": "truncated", "not a graph": "not a .halgraph", "newer format": "upgrade hal",
                "other IR": "IR version", "edited": "changed after it was saved"}
    for what, damage in cases.items():
        damage()
        with pytest.raises(hal.GraphFileError, match=messages[what]):
            hal.Graph.load(path, device="cpu")
        with pytest.raises(hal.GraphFileError, match=messages[what]):
            hal.verify(path, devices=["cpu"])
        path.write_text(text)
    with pytest.raises(hal.GraphFileError, match="cannot read"):
        hal.Graph.load(tmp_path / "missing.halgraph", device="cpu")
    hal.Graph.load(path, device="cpu").launch()  # the intact file still works


def test_a_device_without_a_needed_feature_refuses_the_graph(tmp_path: Path, fake: hal.Device) -> None:
    path = _saved(tmp_path)
    with pytest.raises(hal.UnsupportedError, match="kernels"):
        hal.Graph.load(path, device="accel")  # runs hal.ops natively, but no general kernels
    dev = hal.device("cpu")
    q = dev.queue()
    x = dev.zeros((8,), np.float64)
    with q.capture() as g:
        twice[1, 8, q](x, 8)
    f64 = g.save(tmp_path / "f64.halgraph")
    assert fake.supports("kernels") and not fake.supports("f64")
    with pytest.raises(hal.UnsupportedError, match="needs f64"):
        hal.Graph.load(f64, device=fake)


def test_verify_needs_the_inputs(tmp_path: Path) -> None:
    path = _saved(tmp_path, inputs=False)
    with pytest.raises(hal.GraphFileError, match="inputs=True"):
        hal.verify(path, devices=["cpu", "simgpu:1"])
    hal.Graph.load(path, device="simgpu:1").launch()  # loading without inputs works: zeros


def test_launching_on_another_device_says_how_to_move_the_graph() -> None:
    g, _ = _step(hal.device("cpu"), hal.device("cpu").queue())
    with pytest.raises(hal.InvalidArgumentError, match="Graph.load"):
        g.launch(hal.device("simgpu:1").queue())


@hal.kernel
def poke(x: hal.Ptr[hal.f32], i: hal.i64):
    x[i] = 1.0


def test_a_fault_inside_a_replay_names_its_kernel_and_the_graph_goes_on() -> None:
    dev = hal.device("cpu")
    q = dev.queue()
    x = dev.zeros((16,), np.float32)
    with q.capture() as bad:
        q.fill(x, 2.0)
        poke[1, 1, q](x, 1 << 40)  # unmapped memory: a DeviceFault on the CPU even without HAL_CHECK
        q.fill(x[:1], 3.0)
    bad.launch(q)
    with pytest.raises(hal.DeviceFault, match="poke"):
        q.synchronize()
    np.testing.assert_array_equal(x.numpy(), [3.0] + [2.0] * 15)  # later nodes still ran
    with q.capture() as good:
        poke[1, 1, q](x, 5)
    good.launch(q)
    assert x.numpy()[5] == 1.0


def test_the_simulated_gpu_charges_a_graph_launch_once() -> None:
    dev = hal.device("simgpu:1")
    q = dev.queue()
    x, y = dev.zeros((256,), np.float32), dev.zeros((256,), np.float32)
    n = 20

    def chain() -> None:
        for _ in range(n):
            axpy[1, 256, q](1.0, x, y, 256)

    with q.capture() as g:
        chain()
    times = []
    for run in (chain, g.launch):
        start = q.record()
        run()
        end = q.record()
        times.append(end.elapsed(start))
    preset = dev.impl.preset
    saved = (n - 1) * (preset.launch_latency_s - preset.graph_node_latency_s)
    assert times[1] == pytest.approx(times[0] - saved, rel=1e-6)
