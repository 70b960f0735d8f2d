"""Every bundled backend passes the conformance suite: what tox's conformance-<backend>
environments run, here in one subprocess so that the README's test command covers it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import hal

BUNDLED = ("cpu", "simgpu", "accel", "fpga")
OPENCL = "opencl"
"""Run too where a real OpenCL driver is installed (CI installs PoCL); its default example counts."""


def _backends() -> tuple[str, ...]:
    opencl = next((s for s in hal.backends() if s.name == OPENCL), None)
    return BUNDLED + ((OPENCL,) if opencl is not None and opencl.device_count else ())


def test_every_bundled_backend_passes_its_declared_features(tmp_path: Path) -> None:
    report = tmp_path / "conformance.json"
    backends = _backends()
    run = subprocess.run([sys.executable, "-m", "hal", "conformance", ",".join(backends), "--json", str(report)],
                         capture_output=True, text=True, cwd=tmp_path, timeout=900)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    data = json.loads(report.read_text())
    assert {spec.split(":")[0] for spec in data["devices"]} == set(backends)
    failed = [t for t in data["tests"] if t["outcome"] == "failed"]
    assert not failed
    for spec, device in data["devices"].items():
        passed = sum(counts["passed"] for counts in device["features"].values())
        assert passed > 0, f"{spec} ran no test"
    assert "feature x device" in run.stdout  # the matrix was printed
