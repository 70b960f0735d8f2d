"""The pytest plugin behind the conformance suite (registered under ``pytest11``): its
options, the ``feature`` marker and the feature x device matrix. The device fixture and
the skip/xfail rules live in the suite's ``conftest.py``, so other test suites are untouched.
"""

from __future__ import annotations

import json
import platform
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

CORE = "core"
"""Feature column of tests that every device must pass."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hal", "hal conformance")
    group.addoption("--hal-backend", default=None, help="run the suite on every device of these backends (comma-separated, or 'all')")
    group.addoption("--hal-device", default=None, help="run the suite on this one device (e.g. simgpu:1)")
    group.addoption("--hal-json", default=None, help="write a machine-readable report to this file")
    group.addoption("--hal-examples", type=int, default=None,
                    help="hypothesis examples per differential test (default 25)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "feature(name): the hal.Feature this test needs")
    config.pluginmanager.register(_Matrix(config), "hal-conformance-matrix")


def _features_of(item: pytest.Item) -> list[str]:
    return [m.args[0] for m in item.iter_markers("feature")]


class _Matrix:
    """Counts outcomes per (device, feature) and prints/saves the matrix at the end."""

    OUTCOMES = ("passed", "failed", "skipped", "xfailed")

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.counts: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
        self.tests: list[dict[str, Any]] = []

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
        outcome = yield
        report = outcome.get_result()
        spec = getattr(item, "callspec", None)
        device_spec = spec.params.get("device_spec") if spec else None
        if device_spec is None:
            return
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            result = report.outcome
            if hasattr(report, "wasxfail"):
                result = "xfailed" if report.outcome == "skipped" else "failed"
            features = _features_of(item) or [CORE]
            for feature in features:
                self.counts[device_spec][feature][result] += 1
            self.tests.append({"test": item.nodeid.split("hal/conformance/")[-1], "device": device_spec,
                               "features": features, "outcome": result})

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.counts:
            return
        devices = sorted(self.counts)
        features = sorted({f for d in devices for f in self.counts[d]}, key=lambda f: (f != CORE, f))
        tr = terminalreporter
        tr.section("hal conformance: feature x device (passed/failed/skipped/xfailed)")
        width = max(len(f) for f in features) + 2
        tr.write_line(" " * width + "".join(f"{d:>22}" for d in devices))
        for feature in features:
            cells = []
            for d in devices:
                c = self.counts[d].get(feature, {})
                cells.append("/".join(str(c.get(o, 0)) for o in self.OUTCOMES) if c else "-")
            tr.write_line(f"{feature:<{width}}" + "".join(f"{c:>22}" for c in cells))
        path = self.config.getoption("--hal-json")
        if path:
            Path(path).write_text(json.dumps(self.report(devices), indent=2))
            tr.write_line(f"hal conformance report written to {path}")

    def report(self, devices: list[str]) -> dict[str, Any]:
        import hal

        out: dict[str, Any] = {"hal_version": hal.__version__, "api_version": list(hal.API_VERSION),
                               "python": platform.python_version(), "devices": {}}
        for spec in devices:
            dev = hal.device(spec)
            out["devices"][spec] = {
                "name": dev.info.name, "backend": dev.backend.name, "backend_version": dev.backend.version,
                "simulated": dev.info.simulated,
                "features_declared": sorted(f.value for f in dev.info.features),
                "features": {f: {o: c.get(o, 0) for o in self.OUTCOMES} for f, c in self.counts[spec].items()},
            }
        out["tests"] = self.tests
        return out
