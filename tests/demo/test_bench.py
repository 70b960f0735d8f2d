from __future__ import annotations

import json

from hal.demo.bench import Sizes, run_bench, summary
from hal.demo.cli import main

TINY = Sizes(copy_bytes=4096, saxpy_n=256, reduce_n=256, gemm_n=8, launches=2, repeats=1)


def test_every_benchmark_on_cpu_and_simgpu() -> None:
    points = run_bench(["cpu", "simgpu"], TINY)
    assert {(p.device, p.bench) for p in points} == {
        (d, b) for d in ("cpu:0", "simgpu:0") for b in ("copy h2d", "copy d2h", "saxpy", "reduce", "gemm", "launch")}
    assert all(p.error is None and p.wall_s > 0 for p in points)
    assert all(p.numpy_ratio is not None and p.sim_s is None for p in points if p.device == "cpu:0")
    assert all(p.sim_s is not None and p.sim_s > 0 for p in points if p.device == "simgpu:0")
    assert "saxpy" in summary(points)


def test_accelerator_reports_what_it_cannot_run() -> None:
    points = {p.bench: p for p in run_bench(["accel"], TINY)}
    assert points["reduce"].error and points["saxpy"].impl == "hal.ops mul+add"


def test_cli_writes_json(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--device", "cpu", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["sizes"]["gemm_n"] == 16 and len(doc["points"]) == 6
