"""The pytest plugin behind the conformance suite (registered under ``pytest11``): its
options, the choice of devices, the ``feature`` marker, the feature x device matrix, the JSON
report (outcome, duration, failure message or skip reason of every test; device model, driver,
hal and plugin versions) and stable JUnit names. The device fixture and the skip/xfail rules
live in the suite's ``conftest.py``, so other test suites are untouched.
"""

from __future__ import annotations

import json
import os
import platform
from collections import defaultdict
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

CORE = "core"
"""Feature column of tests that every device must pass."""
SUITE = Path(__file__).resolve().parent
"""The suite's directory: JUnit names are made stable for its tests."""
MESSAGE_CHARS = 2000
"""A failure message in the JSON report is cut to this many characters."""


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
    if config.getoption("--hal-backend") or config.getoption("--hal-device"):
        device_specs(config)  # a bad name is one usage error now, not a collection error per module


_SPECS = pytest.StashKey[list[str]]()
_SKIPPED = pytest.StashKey[dict[str, str]]()


def device_specs(config: pytest.Config) -> list[str]:
    """The devices the suite runs on, from ``--hal-device``, ``--hal-backend`` or ``$HAL_DEVICE``
    (default cpu); chosen once per run. A name that gives no device is a ``pytest.UsageError``
    that lists the backends there are; with ``all``, a backend without devices (or that failed to
    load) is left out with its reason, printed after the run and in the JSON report."""
    if _SPECS not in config.stash:
        config.stash[_SPECS], config.stash[_SKIPPED] = _select(config)
    return config.stash[_SPECS]


def _select(config: pytest.Config) -> tuple[list[str], dict[str, str]]:
    import hal
    from hal._lookup import no_device_reason

    one = config.getoption("--hal-device")
    if one:
        try:
            return [hal.device(one).spec], {}
        except hal.HalError as exc:
            raise pytest.UsageError(f"hal conformance: {exc}") from None
    wanted = config.getoption("--hal-backend") or os.environ.get("HAL_DEVICE", "cpu").split(":")[0]
    statuses = hal.backends()
    loaded = [s.name for s in statuses if s.ok]
    names = loaded if wanted == "all" else [n.strip() for n in wanted.split(",") if n.strip()]
    available = f"available backends: {', '.join(loaded) or 'none'} (see `hal backends`)"
    if not names:
        raise pytest.UsageError(f"hal conformance: no backend to test; {available}")
    devices = hal.devices()
    specs: list[str] = []
    skipped = {s.name: f"{s.status}: {s.error}" for s in statuses if wanted == "all" and not s.ok}
    for name in names:
        found = [d.spec for d in devices if d.backend.name == name]
        if found:
            specs += found
            continue
        status = next((s for s in statuses if s.name == name), None)  # a loaded row sorts first
        if status is None:
            why = f"no backend {name!r}"
        elif status.ok:
            why = f"backend {name!r} has no device"
            if wanted == "all":
                skipped[name] = f"no device ({no_device_reason(name) or 'the backend reports none'})"
                continue
        else:
            why = f"backend {name!r} is {status.status} ({status.error})"
        raise pytest.UsageError(f"hal conformance: {why}; {available}")
    if not specs:
        raise pytest.UsageError(f"hal conformance: no backend has a device; {available}")
    return specs, skipped


def features_of(item: pytest.Item) -> list[str]:
    """The hal.Feature names a test is tagged with (``@pytest.mark.feature``)."""
    return [m.args[0] for m in item.iter_markers("feature")]


def suite_id(item: pytest.Item) -> str:
    """``test_kernels.py::test_saxpy[cpu:0]``: the test's id inside the suite, the same from any
    working directory or rootdir (known failures match it; the JSON report uses it)."""
    return f"{item.path.name}::{item.name}"


def _device_of(item: pytest.Item) -> str | None:
    spec = getattr(item, "callspec", None)
    return spec.params.get("device_spec") if spec else None


def _outcome(report: pytest.TestReport) -> str:
    if hasattr(report, "wasxfail"):  # a known failure that failed (xfailed), or passed non-strictly
        return "xfailed" if report.skipped else "failed"
    return report.outcome


def _message(report: pytest.TestReport) -> str:
    """The one line a failure ends with (``AssertionError: 3 of 1000 elements differ ...``)."""
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr)
    return text if len(text) <= MESSAGE_CHARS else text[:MESSAGE_CHARS] + " [...]"


def _skip_reason(report: pytest.TestReport) -> str:
    if hasattr(report, "wasxfail"):
        return str(report.wasxfail)
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    return reason.removeprefix("Skipped: ")


def _name_for_junit(config: pytest.Config, item: pytest.Item, report: pytest.TestReport) -> None:
    """JUnit ``classname="hal.conformance.test_kernels" name="test_saxpy[cpu:0]"`` whatever the rootdir
    (pytest derives the class name from the path relative to it), so that a CI dashboard follows a
    test across machines and checkouts."""
    from _pytest.junitxml import xml_key  # pytest's LogXML (since pytest 7), present only with --junitxml

    xml = config.stash.get(xml_key, None)
    if xml is not None:
        reporter = xml.node_reporter(report)
        reporter.add_attribute("classname", f"hal.conformance.{item.path.stem}")
        reporter.add_attribute("name", item.name)


class _Matrix:
    """Collects each test's outcome, duration and message per device; prints the feature x device
    matrix and writes the JSON report at the end."""

    OUTCOMES = ("passed", "failed", "skipped", "xfailed")

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.counts: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
        self.tests: list[dict[str, Any]] = []
        self.running: dict[str, dict[str, Any]] = {}

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
        report = yield
        if report.when == "setup" and item.path.resolve().parent == SUITE:
            _name_for_junit(self.config, item, report)
        device_spec = _device_of(item)
        if device_spec is not None:
            self._record(item, device_spec, report)
        return report

    def _record(self, item: pytest.Item, device_spec: str, report: pytest.TestReport) -> None:
        """Fold the setup, call and teardown reports into one entry; the first phase that did not pass
        decides the outcome."""
        entry = self.running.setdefault(item.nodeid, {
            "test": suite_id(item), "device": device_spec, "features": features_of(item) or [CORE],
            "outcome": "passed", "duration": 0.0, "message": None, "reason": None})
        entry["duration"] += report.duration
        outcome = _outcome(report)
        if outcome != "passed" and entry["outcome"] == "passed":
            entry["outcome"] = outcome
            if outcome in ("failed", "xfailed"):
                entry["message"] = _message(report)
            if outcome in ("skipped", "xfailed"):
                entry["reason"] = _skip_reason(report)
        if report.when == "teardown":
            del self.running[item.nodeid]
            entry["duration"] = round(entry["duration"], 6)
            for feature in entry["features"]:
                self.counts[device_spec][feature][entry["outcome"]] += 1
            self.tests.append(entry)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if _SKIPPED in self.config.stash:
            for name, why in self.config.stash[_SKIPPED].items():
                terminalreporter.write_line(f"hal conformance: backend {name!r} skipped: {why}")
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

        plugins = {s.name: s.plugin for s in hal.backends() if s.ok}
        distributions = {ep.name: ep.dist.version for ep in entry_points(group="hal") if ep.dist is not None}
        out: dict[str, Any] = {"hal_version": hal.__version__, "api_version": list(hal.API_VERSION),
                               "python": platform.python_version(), "platform": platform.platform(),
                               "devices": {}}
        for spec in devices:
            dev = hal.device(spec)
            info = dev.info
            out["devices"][spec] = {
                "name": info.name, "model": info.model, "driver_version": info.driver_version,
                "backend": dev.backend.name, "backend_version": dev.backend.version,
                "plugin": plugins.get(dev.backend.name),
                "plugin_version": distributions.get(plugins.get(dev.backend.name, "")), "simulated": info.simulated,
                "features_declared": sorted(f.value for f in info.features),
                "features": {f: {o: c.get(o, 0) for o in self.OUTCOMES} for f, c in self.counts[spec].items()},
            }
        out["skipped_backends"] = self.config.stash[_SKIPPED] if _SKIPPED in self.config.stash else {}
        out["tests"] = self.tests
        return out
