"""Every bundled backend passes the conformance suite: what tox's conformance-<backend>
environments run, here in one subprocess so that the README's test command covers it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

import hal

from .. import background

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


def _args(backends: tuple[str, ...], *extra: str) -> Callable[[Path], list[str]]:
    return lambda folder: ["-m", "hal", "conformance", ",".join(backends), "--json", str(folder / "conformance.json"),
                           *extra]


def _device_count(backend: str) -> tuple[int, str]:
    status = next((s for s in hal.backends() if s.name == backend), None)
    return (status.device_count, status.version) if status else (0, "backend not installed")


RUNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "test_every_bundled_backend_passes_its_declared_features": (BUNDLED, ()),
    "test_opencl_passes_the_whole_suite": ((OPENCL,), ("--hal-examples", OPENCL_EXAMPLES)),
    "test_cuda_passes_the_whole_suite": (("cuda",), ()),
}
"""Each test's conformance run: backends, extra arguments."""


def start_in_background(test: str) -> None:
    """Called at the end of collection for each selected test (tests/background.py)."""
    backends, extra = RUNS[test]
    if backends == BUNDLED or _device_count(backends[0])[0]:
        background.start(test, _args(backends, *extra), env=REMOTE, timeout=900)


def _run(test: str) -> None:
    backends, extra = RUNS[test]
    folder, run = background.result(test, _args(backends, *extra), env=REMOTE, timeout=900)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    _check_report(folder / "conformance.json", backends, run.stdout)


def test_every_bundled_backend_passes_its_declared_features() -> None:
    _run("test_every_bundled_backend_passes_its_declared_features")


def test_opencl_passes_the_whole_suite() -> None:
    count, why = _device_count(OPENCL)
    if not count:
        pytest.skip(f"no OpenCL device: {why}")
    _run("test_opencl_passes_the_whole_suite")


def test_cuda_passes_the_whole_suite() -> None:
    count, why = _device_count("cuda")
    if not count:
        pytest.skip(f"no CUDA device: {why}")
    _run("test_cuda_passes_the_whole_suite")


def _check_report(report: Path, backends: tuple[str, ...], stdout: str) -> None:
    data = json.loads(report.read_text())
    assert {spec.split(":")[0] for spec in data["devices"]} == set(backends)
    failed = [t for t in data["tests"] if t["outcome"] == "failed"]
    assert not failed
    for spec, device in data["devices"].items():
        passed = sum(counts["passed"] for counts in device["features"].values())
        assert passed > 0, f"{spec} ran no test"
    assert "feature x device" in stdout  # the matrix was printed
