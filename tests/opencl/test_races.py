"""Data races in hal's OpenCL C, found by Oclgrind (an OpenCL device simulator with a race
detector: ``apt install oclgrind``). ``oclgrind --data-races CMD`` runs CMD with Oclgrind as the
only OpenCL platform, so ``opencl:0`` is Oclgrind's device; every race it sees between
work-items (shared or global memory, unordered by a barrier or atomics) goes to its log.

The conformance suite's kernels run there: the hand-written ones (shared-memory reductions,
barriers, atomics, local arrays) and the portable ``hal.ops`` kernels (tiled gemm, two-pass
reductions, softmax). A race there is a silent wrong result on some GPU, whatever PoCL computes.
Generated programs do not run: Oclgrind 21.10 cannot execute ``llvm.abs.i32``, which its clang
makes of ``abs()`` (``test_integer_semantics`` is left out for the same reason)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

OCLGRIND = shutil.which("oclgrind")
pytestmark = pytest.mark.skipif(OCLGRIND is None, reason="oclgrind is not installed: apt install oclgrind")
SUITE = "(test_kernels or test_generic or test_ops) and not test_integer_semantics"

RACY = '''import numpy as np, hal

@hal.kernel
def shift(x: hal.Ptr[hal.f32], out: hal.Ptr[hal.f32]):
    s = hal.shared(hal.f32, 64)
    lid = hal.local_id(0)
    s[lid] = x[hal.global_id(0)]
    out[hal.global_id(0)] = s[(lid + 1) % 64]  # a neighbour's slot, read without a barrier

dev = hal.device("opencl:0")
out = dev.zeros((128,), np.float32)
shift[2, 64](dev.array(np.arange(128, dtype=np.float32)), out)
dev.synchronize()
print(dev.info.name)
'''


def _under_oclgrind(tmp_path: Path, *command: str) -> tuple[subprocess.CompletedProcess[str], str]:
    """Run ``command`` on Oclgrind's device with race detection; its result and Oclgrind's log.
    A cache of its own: binaries built by Oclgrind's compiler stay apart from PoCL's."""
    log = tmp_path / "oclgrind.log"
    assert OCLGRIND is not None
    run = subprocess.run([OCLGRIND, "--data-races", "--log", str(log), *command], capture_output=True, text=True,
                         cwd=tmp_path, timeout=600, env={**os.environ, "HAL_CACHE_DIR": str(tmp_path / "cache")})
    return run, log.read_text() if log.exists() else ""


def test_a_kernel_that_reads_shared_memory_without_a_barrier_is_reported(tmp_path: Path) -> None:
    script = tmp_path / "racy.py"
    script.write_text(RACY)
    run, log = _under_oclgrind(tmp_path, sys.executable, str(script))
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Oclgrind" in run.stdout
    assert "Read-write data race at local memory" in log and "Kernel: hal_entry" in log


def test_the_conformance_kernels_have_no_data_races(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    run, log = _under_oclgrind(tmp_path, sys.executable, "-m", "hal", "conformance", "opencl", "--json", str(report),
                               "-k", SUITE, "-p", "no:cacheprovider")
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    devices = json.loads(report.read_text())["devices"]
    assert [d["name"] for d in devices.values()] == ["Oclgrind Simulator"]
    assert sum(t["outcome"] == "passed" for t in json.loads(report.read_text())["tests"]) >= 30
    assert not log.strip(), log[:6000]
