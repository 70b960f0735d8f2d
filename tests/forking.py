"""Running a test's checks in a forked child that must neither fail nor hang."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import pytest


def run_in_child(child: Callable[[], bool], timeout: float = 20.0) -> None:
    """Fork; the child runs ``child`` and exits 0 if it returned True. The parent fails the test if
    the child fails, crashes or is still running after ``timeout`` (then it kills it)."""
    pid = os.fork()
    if pid == 0:
        ok = False
        try:
            ok = child()
        finally:
            os._exit(0 if ok else 1)
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail(f"the child process hung (killed after {timeout:.0f} s)")
        time.sleep(0.01)
    assert os.WIFEXITED(status), f"the child process died of signal {os.WTERMSIG(status)}"
    assert os.WEXITSTATUS(status) == 0, "the child process's checks failed"
