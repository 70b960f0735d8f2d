"""Every bundled backend passes the conformance suite: what tox's conformance-<backend>
environments run, here in one subprocess so that the README's test command covers it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import hal

BUNDLED = ("cpu", "simgpu", "accel", "fpga", "remote")
REMOTE = {"HAL_REMOTE": "simgpu", "RAY_USAGE_STATS_ENABLED": "0"}
"""remote: one Ray worker hosting a simulated GPU (its timing and bounds checks cross the process
boundary too) on a local cluster that hal starts and stops; tox's conformance-remote runs more."""
OPENCL = "opencl"
"""Run too where a real OpenCL driver is installed (CI installs PoCL): the whole suite, the generated
(differential) kernels included. The one that had failed on PoCL was PoCL's builtins deleting code
around a call with a constant NaN or huge argument, which hal's OpenCL C now keeps from them
(hal.kernel.opencl, tests/opencl/test_pocl_builtins.py). PoCL builds every generated program
(about 0.1 s each), so the default run draws 10 per family; `tox -e conformance-opencl` draws 25."""
OPENCL_EXAMPLES = "10"


def _run(tmp_path: Path, backends: tuple[str, ...], *extra: str) -> None:
    report = tmp_path / "conformance.json"
    run = subprocess.run([sys.executable, "-m", "hal", "conformance", ",".join(backends), "--json", str(report),
                          *extra], capture_output=True, text=True, cwd=tmp_path, timeout=900,
                         env={**os.environ, **REMOTE})
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    _check_report(report, backends, run.stdout)


def test_every_bundled_backend_passes_its_declared_features(tmp_path: Path) -> None:
    _run(tmp_path, BUNDLED)


def test_opencl_passes_the_whole_suite(tmp_path: Path) -> None:
    opencl = next((s for s in hal.backends() if s.name == OPENCL), None)
    if opencl is None or not opencl.device_count:
        pytest.skip(f"no OpenCL device: {opencl.version if opencl else 'backend not installed'}")
    _run(tmp_path, (OPENCL,), "--hal-examples", OPENCL_EXAMPLES)


def test_cuda_passes_the_whole_suite(tmp_path: Path) -> None:
    cuda = next((s for s in hal.backends() if s.name == "cuda"), None)
    if cuda is None or not cuda.device_count:
        pytest.skip(f"no CUDA device: {cuda.version if cuda else 'backend not installed'}")
    _run(tmp_path, ("cuda",))


def _check_report(report: Path, backends: tuple[str, ...], stdout: str) -> None:
    data = json.loads(report.read_text())
    assert {spec.split(":")[0] for spec in data["devices"]} == set(backends)
    failed = [t for t in data["tests"] if t["outcome"] == "failed"]
    assert not failed
    for spec, device in data["devices"].items():
        passed = sum(counts["passed"] for counts in device["features"].values())
        assert passed > 0, f"{spec} ran no test"
    assert "feature x device" in stdout  # the matrix was printed
