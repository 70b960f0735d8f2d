"""What tox's lint environment checks: ruff on the tree, mypy --strict on hal/ and the bundled plugins."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("tool,args", [
    ("ruff", ["check", "hal", "plugins", "tests", "benchmarks", "examples"]),
    ("mypy", ["hal", "plugins"]),
])
def test_lint(tool: str, args: list[str]) -> None:
    run = subprocess.run([sys.executable, "-m", tool, *args], capture_output=True, text=True, cwd=ROOT,
                         timeout=600)
    assert "No module named" not in run.stderr, f"{tool} is missing: pip install -e '.[test]' installs it"
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
