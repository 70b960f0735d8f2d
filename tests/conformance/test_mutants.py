"""The conformance suite's mutation self-test: the reference backend (``mutant/``) passes the unchanged
suite, and each bug it can plant (``mutant/bugs.py``) makes the suite fail. One subprocess runs them
all (``python -m tests.conformance.mutant``); each bug is one test here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .. import background
from .mutant.bugs import BUGS

ROOT = Path(__file__).resolve().parents[2]


def _args(folder: Path) -> list[str]:
    return ["-m", "tests.conformance.mutant", "--json", str(folder / "runs.jsonl")]


def start_in_background(test: str) -> None:
    """Called at the end of collection for each selected test (tests/background.py): one run for all."""
    background.start("mutants", _args, cwd=ROOT, timeout=300)


@pytest.fixture(scope="module")
def runs() -> dict[str, dict[str, Any]]:
    """The driver's result per bug ("" for the clean run); a bug missing from it was not reached (a hang
    past the timeout: the bugs it did not reach fail below)."""
    folder, _ = background.result("mutants", _args, cwd=ROOT, timeout=300)
    lines = folder / "runs.jsonl"
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
