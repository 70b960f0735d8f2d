from __future__ import annotations

import json

import numpy as np
import pytest

import hal
from hal.demo.cli import main
from hal.demo.data import load_digits
from hal.demo.train import TOLERANCE, Config, agreement, run_demo, train_on

TINY = Config(epochs=1, batch=32, limit=200)


def test_digits_split_and_batches_are_deterministic() -> None:
    a, b = load_digits(seed=3), load_digits(seed=3)
    assert a.x_train.shape == (1438, 64) and a.x_test.shape == (359, 64)
    assert np.array_equal(a.y_test, b.y_test)
    (x1, t1), (x2, _) = next(a.batches(16, 0, 1)), next(b.batches(16, 0, 1))
    assert np.array_equal(x1, x2) and t1.shape == (16, 10) and np.all(t1.sum(axis=1) == 1)


def test_one_epoch_on_cpu_learns() -> None:
    data = load_digits()
    r = train_on(hal.device("cpu"), data, Config(epochs=1, batch=64))
    assert r.losses[-1] < r.losses[0] and r.accuracy > 0.8
    assert r.launches > 0 and r.h2d_bytes > 0 and r.device_s is None and r.moves == 0


def test_simulated_device_matches_cpu_and_reports_sim_time() -> None:
    result = run_demo(["simgpu"], TINY)
    cpu, gpu = result.results
    assert cpu.device == "cpu:0" and cpu.agrees is None
    assert gpu.agrees and gpu.max_loss_diff is not None and gpu.max_loss_diff <= TOLERANCE
    assert gpu.device_s is not None and gpu.device_s > 0 and gpu.model


def test_accelerator_falls_back_for_what_it_cannot_run() -> None:
    result = run_demo(["accel"], TINY)
    r = result.results[1]
    assert r.placement["softmax_xent"].startswith("cpu:0") and r.placement["relu_grad"].startswith("cpu:0")
    assert r.placement["linear"].startswith("accel:0") and r.placement["bias_grad"] == "accel:0 (gemm(ones, dz))"
    assert r.moves > 0 and r.moved_bytes > 0 and r.fallback_launches > 0 and r.agrees


def test_agreement() -> None:
    ref = [2.3, 1.0, 0.5]
    assert agreement(ref, ref) == (0.0, True)
    assert not agreement([2.3, 1.0, 0.5 + 10 * TOLERANCE], ref)[1]
    assert not agreement(ref[:2], ref)[1]


def test_cli_json(tmp_path: pytest.TempPathFactory) -> None:
    out = tmp_path / "demo.json"  # type: ignore[operator]
    assert main(["demo", "--device", "accel", "--epochs", "2", "--batch", "32", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["reference"] == "cpu:0" and doc["tolerance"] == TOLERANCE
    assert [r["device"] for r in doc["results"]] == ["cpu:0", "accel:0"]
    for key in ("accuracy", "final_loss", "losses", "wall_s", "device_s", "h2d_bytes", "d2h_bytes", "launches",
                "fallback_launches", "moves", "moved_bytes", "placement", "agrees"):
        assert key in doc["results"][1]
    assert all(r["accuracy"] >= 0.8 for r in doc["results"])
