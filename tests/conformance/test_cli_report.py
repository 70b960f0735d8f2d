"""``hal conformance`` end to end, in a subprocess: the JSON report, the matrix, and known failures
as strict xfails (a known failure that passes fails the run; one that fails is reported as xfailed).

The backend under test is a throwaway plugin installed for real: hal's reference interpreter,
deliberately wrong on one kernel, declaring two known failures.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import hal

from ..plugins.installer import install, run_python

PLUGIN = '''"""Test backend: the reference interpreter, except that test_i64's kernel loses its stores."""

from __future__ import annotations

from typing import Any

from hal import DeviceInfo, Feature
from hal.backend import Backend, Executable, KnownFailure
from hal.hookspecs import hookimpl
from hal.kernel import interpreter
from hal.sim import SimDevice, kernel_args

api_version = (1, 0)


class KfExecutable(Executable):
    def __init__(self, kernel: Any) -> None:
        self.kernel = kernel


class KfDevice(SimDevice):
    host_visible = True

    def info(self) -> DeviceInfo:
        return DeviceInfo(name="KnownFail device", backend="knownfail", kind="gpu", vendor="hal tests",
                          memory_bytes=1 << 28, compute_units=1, max_block_size=1024, warp_size=32,
                          shared_memory_bytes=48 * 1024, simulated=True, host_visible=True, model="none",
                          features=frozenset({Feature.KERNELS, Feature.I64, Feature.HOST_VISIBLE}))

    def compile(self, kernel: Any) -> Executable:
        return KfExecutable(kernel)

    def transfer_seconds(self, kind: str, nbytes: int) -> float:
        return 0.0

    def execute(self, exe: Any, grid: Any, block: Any, args: Any) -> tuple[float, dict[str, Any]]:
        if exe.kernel.name != "i64_kernel":  # the bug its vendor declared
            interpreter.run(exe.kernel, grid, block, kernel_args(exe.kernel, args))
        return 1e-6, {}


class KfBackend(Backend):
    name = "knownfail"
    version = "0.1"
    Options = None
    known_failures = (
        KnownFailure("test_kernels.py::test_saxpy", "declared broken, but it passes"),
        KnownFailure("test_kernels.py::test_i64", "i64 stores are lost", device="KnownFail*"),
    )

    def device_count(self) -> int:
        return 1

    def open_device(self, index: int, options: Any) -> Any:
        return KfDevice()


@hookimpl
def hal_backends() -> list[Backend]:
    return [KfBackend()]
'''
SELECTED = "test_saxpy or test_i64 or test_integer_semantics or test_atomics_with_collisions"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("project")
    (project / "pyproject.toml").write_text('[project]\nname = "hal-test-known-failures"\nversion = "0.1"\n'
                                            '[project.entry-points.hal]\nknownfail = "hal_test_known_failures"\n')
    (project / "hal_test_known_failures").mkdir()
    (project / "hal_test_known_failures" / "__init__.py").write_text(PLUGIN)
    site = tmp_path_factory.mktemp("site-packages")
    install(project, site)
    return site


def test_json_report_matrix_and_strict_known_failures(site: Path) -> None:
    out = run_python(site, "-m", "hal", "conformance", "knownfail,cpu", "--json", "report.json",
                     "-k", SELECTED)
    # test_saxpy is a declared known failure that passes: strict xfail turns it into a failed run
    assert out.returncode == 1, out.stdout + out.stderr
    assert "XPASS(strict)" in out.stdout and "declared broken, but it passes" in out.stdout

    report = json.loads((site / "report.json").read_text())
    assert report["hal_version"] == hal.__version__ and report["api_version"] == list(hal.API_VERSION)
    assert set(report["devices"]) == {"knownfail:0", "cpu:0"}
    kf = report["devices"]["knownfail:0"]
    assert kf["backend"] == "knownfail" and kf["backend_version"] == "0.1" and kf["simulated"] is True
    assert kf["features_declared"] == ["host_visible", "i64", "kernels"]

    assert kf["model"] == "none" and "driver_version" in kf
    assert (kf["plugin"], kf["plugin_version"]) == ("knownfail", "0.1")  # the entry point and its distribution
    assert report["devices"]["cpu:0"]["plugin_version"] == hal.__version__
    entry = {(t["device"], t["test"].split("::")[-1].split("[")[0]): t for t in report["tests"]}
    outcome = {key: t["outcome"] for key, t in entry.items()}
    assert all(t["duration"] >= 0 for t in report["tests"])
    assert entry["knownfail:0", "test_atomics_with_collisions"]["reason"] == \
        "KnownFail device does not declare feature 'atomics'"
    xfailed = entry["knownfail:0", "test_i64"]
    assert xfailed["reason"] == "known failure: i64 stores are lost" and "elements differ" in xfailed["message"]
    assert "[XPASS(strict)] known failure: declared broken, but it passes" in entry["knownfail:0", "test_saxpy"]["message"]
    assert entry["cpu:0", "test_saxpy"]["message"] is None and entry["cpu:0", "test_saxpy"]["reason"] is None
    assert outcome["knownfail:0", "test_saxpy"] == "failed"  # XPASS(strict)
    assert outcome["knownfail:0", "test_i64"] == "xfailed"
    assert outcome["knownfail:0", "test_integer_semantics"] == "passed"
    assert outcome["knownfail:0", "test_atomics_with_collisions"] == "skipped"  # atomics not declared
    assert all(outcome["cpu:0", name] == "passed" for name in
               ("test_saxpy", "test_i64", "test_integer_semantics", "test_atomics_with_collisions"))
    assert kf["features"]["i64"] == {"passed": 0, "failed": 0, "skipped": 0, "xfailed": 1}
    assert kf["features"]["atomics"]["skipped"] == 1
    assert kf["features"]["kernels"]["failed"] == 1 and kf["features"]["kernels"]["passed"] == 1

    matrix = out.stdout[out.stdout.index("hal conformance: feature x device"):]
    header = matrix.splitlines()[1].split()
    assert header == ["cpu:0", "knownfail:0"]
    cells = {line.split()[0]: line.split()[1:] for line in matrix.splitlines()[2:] if line.split()}
    assert cells["atomics"] == ["1/0/0/0", "0/0/1/0"] and cells["i64"] == ["1/0/0/0", "0/0/0/1"]
    assert "hal conformance report written to report.json" in out.stdout


def test_known_failures_can_be_run_as_ordinary_tests(site: Path) -> None:
    out = run_python(site, "-m", "hal", "conformance", "knownfail", "-k", "test_i64 or test_saxpy",
                     "--json", "ordinary.json", HAL_CONFORMANCE_RUN_KNOWN_FAILURES="1")
    assert out.returncode == 1
    # the summary line may carry the message after " - " (how much depends on the terminal width)
    failed = [line.split(" - ")[0] for line in out.stdout.splitlines() if line.startswith("FAILED ")]
    assert len(failed) == 1 and failed[0].endswith("test_kernels.py::test_i64[knownfail:0]")  # path from the cwd
    assert "1 failed, 1 passed" in out.stdout
    assert "XPASS" not in out.stdout
    # the failure is a one-line mismatch summary, not "assert np.False_" and two array reprs
    summary = "AssertionError: i64: 999 of 1000 elements differ (shape (1000,), int64); first: [1] got 1 want 3000000001"
    assert summary in out.stdout and "np.False_" not in out.stdout
    (entry,) = [t for t in json.loads((site / "ordinary.json").read_text())["tests"] if t["outcome"] == "failed"]
    assert entry["message"].startswith(summary) and "max abs error 2.997e+12" in entry["message"]


def test_all_runs_every_present_device_and_fails_when_one_does(site: Path) -> None:
    """``--all``: knownfail's declared-broken test_saxpy passes (a strict xfail: a failed run) while every
    other device passes it; the disabled backends and those without devices are listed as skipped."""
    out = run_python(site, "-m", "hal", "conformance", "--all", "--json", "all.json", "--", "-k", "test_saxpy",
                     HAL_PLUGINS_DISABLED="remote,opencl")
    assert out.returncode == 1, out.stdout[-3000:] + out.stderr[-2000:]
    report = json.loads((site / "all.json").read_text())
    outcome = {t["device"]: t["outcome"] for t in report["tests"]}
    assert outcome.pop("knownfail:0") == "failed"
    bundled = {"accel", "cpu", "fpga", "simgpu"}
    ran = {spec.split(":")[0] for spec in outcome}
    assert bundled <= ran <= bundled | {"cuda"}  # cuda where a GPU is
    assert outcome["cpu:0"] == "passed" and set(outcome.values()) <= {"passed", "skipped"}  # accel runs no kernel
    skipped = report["skipped_backends"]
    assert "cuda" in ran or skipped["cuda"].startswith("no device (")
    assert skipped["remote"] == skipped["opencl"] == "disabled: disabled by HAL_PLUGINS_DISABLED"
    assert "hal conformance: backend 'remote' skipped: disabled: disabled by HAL_PLUGINS_DISABLED" in out.stdout
