"""Data races in the generated CUDA C++, found by ThreadSanitizer in the host run (``hostcuda.py``).

The kernels are built with ``-fsanitize=thread`` (``HAL_HOSTCUDA_TSAN=1``) and run in a Python
that preloads GCC's ``libtsan``. Each work-item is a thread, ``__syncthreads()`` a barrier of
pthread mutexes and condition variables and the atomics GCC's ``__atomic`` builtins, all of which
TSan follows; so two plain accesses to one address that no barrier orders (a shared-memory read
before the barrier after its write, say) are reported, whatever x86's strong memory order makes
of them. Races of a plain access with an atomic one are not (``report_atomic_races=0``): the
float atomics' compare-and-swap loops read the old value with a volatile load first, which PTX's
memory model makes a relaxed load, no race on a GPU, while the host compiler sees a plain one.
Runs: the generated shared-memory and atomic programs, the tree reduction, shuffles and group
reductions (about a minute)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
GXX = shutil.which("g++")
pytestmark = [
    pytest.mark.skipif(GXX is None, reason="g++ is missing: the host harness compiles the CUDA C++ with it"),
    pytest.mark.skipif(os.environ.get("HAL_HOSTCUDA_TSAN") == "1", reason="already under ThreadSanitizer"),
]
SELECTED = "(generated and (shared or atomic)) or tree_reduction or shuffles or group_reductions"
"""The host tests with work-items that share memory through barriers and shuffles."""
RACY = '''import numpy as np, hal
from tests.cuda import hostcuda

@hal.kernel
def shift(x: hal.Ptr[hal.f32], out: hal.Ptr[hal.f32]):
    s = hal.shared(hal.f32, 64)
    lid = hal.local_id(0)
    s[lid] = x[hal.global_id(0)]
    out[hal.global_id(0)] = s[(lid + 1) % 64]  # a neighbour's slot, read without a barrier

hostcuda.compile(shift.ir)(2, 64, [np.arange(128, dtype=np.float32), np.zeros(128, np.float32)])
'''


def _under_tsan(*command: str) -> subprocess.CompletedProcess[str]:
    assert GXX is not None
    libtsan = subprocess.run([GXX, "-print-file-name=libtsan.so"], capture_output=True, text=True).stdout.strip()
    if not Path(libtsan).is_file():
        pytest.skip(f"GCC's ThreadSanitizer runtime is missing ({libtsan})")
    env = {**os.environ, "HAL_HOSTCUDA_TSAN": "1", "LD_PRELOAD": libtsan, "PYTHONPATH": str(ROOT),
           "TSAN_OPTIONS": "report_atomic_races=0 exitcode=66"}
    return subprocess.run([sys.executable, *command], capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)


def test_a_shared_memory_read_without_a_barrier_is_reported(tmp_path: Path) -> None:
    script = tmp_path / "racy.py"
    script.write_text(RACY)
    run = _under_tsan(str(script))
    assert "WARNING: ThreadSanitizer: data race" in run.stderr and "hal_entry" in run.stderr, run.stderr[-3000:]


def test_the_generated_cuda_has_no_data_races() -> None:
    run = _under_tsan("-m", "pytest", "-q", "-p", "no:cacheprovider", str(HERE / "test_host_cuda.py"), "-k", SELECTED)
    output = run.stdout + run.stderr
    assert "ThreadSanitizer" not in output, output[-6000:]
    assert run.returncode == 0, output[-4000:]
    assert " passed" in run.stdout.splitlines()[-1]
