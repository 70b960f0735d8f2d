"""Every bundled backend passes the conformance suite: what tox's conformance-<backend>
environments run, here in one subprocess so that the README's test command covers it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BUNDLED = ("cpu", "simgpu", "accel", "fpga", "remote")
REMOTE = {"HAL_REMOTE": "simgpu", "RAY_USAGE_STATS_ENABLED": "0"}
"""remote: one Ray worker hosting a simulated GPU (its timing and bounds checks cross the process
boundary too) on a local cluster that hal starts and stops; tox's conformance-remote runs more."""


def test_every_bundled_backend_passes_its_declared_features(tmp_path: Path) -> None:
    report = tmp_path / "conformance.json"
    run = subprocess.run([sys.executable, "-m", "hal", "conformance", ",".join(BUNDLED), "--json", str(report)],
                         capture_output=True, text=True, cwd=tmp_path, timeout=900, env={**os.environ, **REMOTE})
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    data = json.loads(report.read_text())
    assert {spec.split(":")[0] for spec in data["devices"]} == set(BUNDLED)
    failed = [t for t in data["tests"] if t["outcome"] == "failed"]
    assert not failed
    for spec, device in data["devices"].items():
        passed = sum(counts["passed"] for counts in device["features"].values())
        assert passed > 0, f"{spec} ran no test"
    assert "feature x device" in run.stdout  # the matrix was printed
