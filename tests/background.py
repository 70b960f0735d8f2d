"""Subprocess runs that start when collection ends and are collected by the test that needs them.

The slowest tests of the default run are whole conformance suites in subprocesses (every bundled
backend, OpenCL's whole suite, the mutation self-test). The run itself keeps about one core busy,
so these start together at the end of collection (``tests/conftest.py``, only for the tests that
were selected) and run beside everything else; the tests that wait for them are moved to the end,
and each waits for its own result with the timeout it had when it ran them itself."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Run:
    """One started subprocess: its folder, and what it printed once it ended."""

    folder: Path
    process: subprocess.Popen[str]
    timeout: float
    outcome: subprocess.CompletedProcess[str] | None = field(default=None)

    def result(self) -> subprocess.CompletedProcess[str]:
        """Wait for the run (at most its timeout from now, killing it past that) and return it."""
        if self.outcome is None:
            try:
                out, err = self.process.communicate(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                out, err = self.process.communicate()
            self.outcome = subprocess.CompletedProcess(self.process.args, self.process.returncode, out, err)
        return self.outcome


_RUNS: dict[str, Run] = {}
_FOLDERS: list[tempfile.TemporaryDirectory[str]] = []


def start(key: str, args: Callable[[Path], list[str]], *, cwd: Path | None = None,
          env: dict[str, str] | None = None, timeout: float = 900) -> None:
    """Start ``python args(folder)`` once under ``key`` (in ``cwd``, else a new folder of its own)."""
    if key in _RUNS:
        return
    holder = tempfile.TemporaryDirectory(prefix=f"hal-{key}-")
    _FOLDERS.append(holder)
    folder = Path(holder.name)
    process = subprocess.Popen([sys.executable, *args(folder)], cwd=cwd or folder, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **(env or {})})
    _RUNS[key] = Run(folder, process, timeout)


def result(key: str, args: Callable[[Path], list[str]], *, cwd: Path | None = None,
           env: dict[str, str] | None = None, timeout: float = 900) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """The run under ``key``, started now if collection did not start it; its folder and outcome."""
    start(key, args, cwd=cwd, env=env, timeout=timeout)
    run = _RUNS[key]
    return run.folder, run.result()


def stop_all() -> None:
    """At the end of the session: kill what no test waited for, remove the folders."""
    for run in _RUNS.values():
        if run.process.poll() is None:
            run.process.kill()
            run.process.communicate()
    for holder in _FOLDERS:
        holder.cleanup()
