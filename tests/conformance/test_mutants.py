"""The conformance suite's mutation self-test: the reference backend (``mutant/``) passes the unchanged
suite, and each bug it can plant (``mutant/bugs.py``) makes the suite fail. One subprocess runs them
all (``python -m tests.conformance.mutant``); each bug is one test here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .mutant.bugs import BUGS

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """The driver's result per bug ("" for the clean run); a bug missing from it was not reached."""
    lines = tmp_path_factory.mktemp("mutants") / "runs.jsonl"
    try:
        subprocess.run([sys.executable, "-m", "tests.conformance.mutant", "--json", str(lines)], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:  # a hang: the bugs it did not reach fail below
        pass
    return {run["bug"]: run for run in map(json.loads, lines.read_text().splitlines())} if lines.exists() else {}


def test_the_reference_backend_passes_the_suite(runs: dict[str, dict[str, Any]]) -> None:
    clean = runs.get("")
    assert clean is not None, "the driver did not finish the clean run"
    assert clean["exit"] == 0 and not clean["failed"], clean["failed"] or clean["output"]


@pytest.mark.parametrize("bug", list(BUGS))
def test_the_suite_catches(bug: str, runs: dict[str, dict[str, Any]]) -> None:
    run = runs.get(bug)
    assert run is not None, f"the driver stopped before HAL_MUTANT={bug} (it hung or crashed on an earlier run)"
    assert run["exit"] == 1 and run["failed"], (f"with HAL_MUTANT={bug} ({BUGS[bug].planted}) the suite's "
                                                f"selection {BUGS[bug].select!r} passed:\n{run['output']}")
