"""``hal conformance`` as a command: the same result and the same JUnit test names from any working
directory, and one line for a backend that does not exist."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

SELECTED = "test_saxpy or test_listed_and_found_by_spec"
STABLE_NAMES = [("hal.conformance.test_devices", "test_listed_and_found_by_spec[fpga:0]"),
                ("hal.conformance.test_kernels", "test_saxpy[fpga:0]")]


def _conformance(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hal", "conformance", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def test_the_working_directory_does_not_change_the_run(tmp_path: Path) -> None:
    """A project's pytest.ini, conftest.py and tests/conftest.py (which used to register its test-only
    backends into the run) are none of the suite's business."""
    project = tmp_path / "project"
    (project / "tests").mkdir(parents=True)
    (project / "pytest.ini").write_text("[pytest]\naddopts = --no-such-option\n")
    for conftest in (project / "conftest.py", project / "tests" / "conftest.py"):
        conftest.write_text("raise RuntimeError('the project conftest was loaded')\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    runs = [_conformance(cwd, "fpga", "-k", SELECTED, "--junit", "junit.xml") for cwd in (project, elsewhere)]
    for run in runs:
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    summaries = [r.stdout.splitlines()[-1].split(" in ")[0] for r in runs]  # "2 passed, N deselected"
    assert summaries[0].startswith("2 passed") and summaries[0] == summaries[1]
    assert not (project / ".pytest_cache").exists()
    assert _junit_names(project / "junit.xml") == _junit_names(elsewhere / "junit.xml") == STABLE_NAMES


def test_junit_names_do_not_depend_on_how_pytest_was_started(tmp_path: Path) -> None:
    """pytest names a JUnit class after the test file's path from its rootdir, which depends on where it
    was started (``tmp.eco.venv.lib.site-packages.hal.conformance.test_kernels``, or ``test_kernels``
    from here); a dashboard that follows a test across machines needs one name."""
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--pyargs", "hal.conformance",
                          f"--rootdir={tmp_path}", "--hal-backend=fpga", "-k", SELECTED,
                          f"--junitxml={tmp_path / 'junit.xml'}"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert _junit_names(tmp_path / "junit.xml") == STABLE_NAMES


def _junit_names(path: Path) -> list[tuple[str | None, str | None]]:
    return sorted((case.get("classname"), case.get("name")) for case in ET.parse(path).iter("testcase"))


def test_an_unknown_backend_is_one_line_listing_the_available_ones(tmp_path: Path) -> None:
    run = _conformance(tmp_path, "nosuch")
    assert run.returncode != 0
    lines = [line for line in (run.stdout + run.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "no backend 'nosuch'" in lines[0] and "available backends: " in lines[0] and "cpu" in lines[0]


@pytest.mark.parametrize("option", ["--json", "--junit"])
def test_an_unwritable_report_fails_before_the_run(option: str, tmp_path: Path) -> None:
    run = _conformance(tmp_path, "fpga", option, str(tmp_path / "missing" / "report"))
    assert run.returncode == 1 and not run.stdout
    assert run.stderr.splitlines() == [f"hal: error: cannot write {option} '{tmp_path / 'missing' / 'report'}': "
                                       f"directory '{tmp_path / 'missing'}' does not exist; name a writable file"]


def test_pytest_options_may_follow_a_separator(tmp_path: Path) -> None:
    run = _conformance(tmp_path, "fpga", "--json", "report.json", "--", "-k", "test_listed_and_found_by_spec")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert run.stdout.splitlines()[-1].startswith("1 passed")
