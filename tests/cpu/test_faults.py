"""Kernels that misbehave on the CPU: one that never ends is stopped by Queue.abort(), one that
touches memory it must not (without HAL_CHECK) is a DeviceFault instead of a crash."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hal_cpu import _compiler
from hal_cpu._device import CpuBuffer, CpuDevice
from hal_cpu._queue import CpuQueue

import hal
from hal.kernel import cemit

pytestmark = pytest.mark.skipif(__import__("shutil").which("gcc") is None, reason="needs gcc")


@dataclass(frozen=True)
class Arg:
    """A pointer argument as the core passes it (hal.backend.ArgBuffer)."""

    buffer: CpuBuffer
    offset: int
    size: int


@hal.kernel
def spin(x: hal.Ptr[hal.f32]):
    i = hal.global_id(0)
    while x[0] < 1.0:
        x[i + 1] = x[i + 1] + 1.0


@hal.kernel
def spin_in_step(x: hal.Ptr[hal.f32], n: hal.i32):
    sh = hal.shared(hal.f32, 64)
    lid = hal.local_id(0)
    while n > 0:  # uniform: a work-group-level loop around barriers
        sh[lid] = x[lid + 1]
        hal.barrier()
        x[lid + 1] = sh[63 - lid] + 1.0
        hal.barrier()


@hal.kernel
def counted(x: hal.Ptr[hal.f32], n: hal.i32):
    i = hal.global_id(0)
    for k in range(n):
        x[i] = x[i] + hal.f32(k)


@pytest.fixture(scope="module")
def device() -> CpuDevice:
    return CpuDevice()


def test_only_while_loops_check_for_a_stop() -> None:
    """The check opens every `while` body and is nowhere else: `for` loops and the work-item loops
    stay vectorisable."""
    for kernel in (spin, spin_in_step):
        lines = [line.strip() for line in cemit.emit(kernel.ir).splitlines()]
        whiles = [i for i, line in enumerate(lines) if line.startswith("while (") and line.endswith(") {")]
        checks = [i for i, line in enumerate(lines) if line.endswith("hal_quit(C);")]
        assert whiles and checks == [i + 1 for i in whiles]
    assert "hal_quit(C);" not in cemit.emit(counted.ir)


_STUCK: list[CpuQueue] = []
"""Queues whose kernel abort() failed to stop: never collected (closing one would wait forever)."""


@pytest.mark.parametrize("kernel, grid, block, extra", [
    (spin, (1, 1, 1), (1, 1, 1), []),            # one work-item, run inline on the queue's thread
    (spin, (64, 1, 1), (256, 1, 1), []),         # across the pool
    (spin_in_step, (32, 1, 1), (64, 1, 1), [1]),  # a work-group-level while around barriers
])
def test_abort_stops_a_kernel_that_never_ends(device: CpuDevice, kernel: Any, grid: tuple[int, int, int],
                                              block: tuple[int, int, int], extra: list[int]) -> None:
    exe = _compiler.compile_kernel(kernel.ir)
    n = grid[0] * block[0] + 1
    x, src, dst = device.allocate(4 * n), device.allocate(64), device.allocate(64)
    x.host_array()[:] = 0
    src.host_array()[:] = 7
    queue = device.create_queue()
    assert not queue.abort()  # nothing runs
    queue.launch(exe, grid, block, [Arg(x, 0, n), *extra], None)
    queue.copy(dst, 0, src, 0, 64, None)  # after the kernel: still runs
    event = queue.record()
    t0 = time.monotonic()
    finished = queue.drain(0.2)
    waited = time.monotonic() - t0
    running = not event.wait(0.01) and not queue.idle()
    aborted = queue.abort()
    if not queue.drain(5.0):
        x.host_array().view(np.float32)[0] = 2.0  # ends `spin`; `spin_in_step` cannot end
        _STUCK.append(queue)
        pytest.fail(f"abort() did not stop {kernel.name}")
    assert not finished and 0.19 < waited < 1.0 and running and aborted
    assert event.query() and not queue.idle()  # the fault waits for synchronize
    with pytest.raises(hal.DeviceFault, match=rf"kernel '{kernel.name}' \(.*test_faults.py:\d+\): aborted"):
        queue.synchronize()
    assert queue.idle()
    assert (dst.host_array() == 7).all()
    src.host_array()[:] = 9
    queue.copy(dst, 0, src, 0, 64, None)  # the queue goes on
    queue.synchronize()
    assert (dst.host_array() == 9).all()
    queue.close()
    for buf in (x, src, dst):
        device.free(buf)


CRASHES = textwrap.dedent("""
    import ctypes
    import numpy as np
    import hal

    @hal.kernel
    def past_end(x: hal.Ptr[hal.f32], n: hal.i32):
        i = hal.global_id(0)
        x[i + n] = 1.0

    @hal.kernel
    def far_away(x: hal.Ptr[hal.f32], y: hal.Ptr[hal.f32]):
        i = hal.global_id(0)
        y[i] = x[1000000000]

    @hal.kernel
    def double(x: hal.Ptr[hal.f32]):
        i = hal.global_id(0)
        x[i] = x[i] * 2.0

    def fault_of(q):
        try:
            q.synchronize()
        except hal.DeviceFault as e:
            return str(e)
        return "no fault"

    dev = hal.device("cpu")
    q = dev.queue()
    n = 1 << 22  # 16 MiB: a block with a guard page right after it
    x = dev.zeros((n,), np.float32)
    past_end[1, 256, q](x, n)  # one work-item after another: x[n] faults first
    print("past_end:", fault_of(q))
    small, y = dev.zeros((16,), np.float32), dev.zeros((1 << 16,), np.float32)
    far_away[256, 256, q](small, y)  # every thread of the pool faults
    print("far_away:", fault_of(q))
    for _ in range(2):
        a = dev.array(np.arange(1 << 16, dtype=np.float32))
        double[256, 256, q](a)
        print("double:", fault_of(q), np.array_equal(a.numpy(), 2 * np.arange(1 << 16, dtype=np.float32)))
    print("done", flush=True)
    ctypes.string_at(0)  # not in a kernel: crashes as before (faulthandler reports it)
""")


def test_invalid_memory_access_is_a_device_fault_and_the_device_goes_on(tmp_path: Path) -> None:
    """In a process of its own: were a fault not caught, it would kill the process."""
    script = tmp_path / "crashes.py"
    script.write_text(CRASHES)
    env = {k: v for k, v in os.environ.items() if k != "HAL_CHECK"}
    run = subprocess.run([sys.executable, "-X", "faulthandler", str(script)], capture_output=True, text=True,
                         env=env, timeout=120)
    assert "done" in run.stdout, run.stdout + run.stderr
    fault = (r"{0}: kernel '{0}' \(.*crashes.py:\d+\): invalid memory access at address 0x([0-9a-f]+); "
             r"rerun with HAL_CHECK=1 to find the index")
    lines = run.stdout.splitlines()
    past_end = re.fullmatch(fault.format("past_end"), lines[0])
    assert past_end and int(past_end[1], 16) % os.sysconf("SC_PAGE_SIZE") == 0, lines[0]  # x[n]: the guard page
    assert re.fullmatch(fault.format("far_away"), lines[1]), lines[1]
    assert lines[2:4] == ["double: no fault True"] * 2
    assert run.returncode == -signal.SIGSEGV and "Fatal Python error: Segmentation fault" in run.stderr


REPLACED = textwrap.dedent("""
    import ctypes, signal, time
    import numpy as np
    import hal

    @hal.kernel
    def far_away(x: hal.Ptr[hal.f32], y: hal.Ptr[hal.f32]):
        i = hal.global_id(0)
        y[i] = x[1000000000]

    dev = hal.device("cpu")
    q = dev.queue()
    small, y = dev.zeros((16,), np.float32), dev.zeros((1 << 16,), np.float32)
    for replaced_by in ("SIG_DFL", "a handler of its own"):
        # What Ray's core does: its own handler at ray.init (not chaining), SIG_DFL at ray.shutdown.
        signal.signal(signal.SIGSEGV, signal.SIG_DFL if replaced_by == "SIG_DFL" else lambda *a: None)
        time.sleep(0.01)
        far_away[256, 256, q](small, y)
        try:
            q.synchronize()
            print("no fault")
        except hal.DeviceFault as e:
            print("fault:", "invalid memory access" in str(e))
    print("done", flush=True)
""")


def test_a_kernel_fault_is_caught_after_another_library_replaced_the_handlers(tmp_path: Path) -> None:
    """Ray replaces SIGSEGV's handler at ray.init and resets it at ray.shutdown: the queue puts hal's
    back (chaining to the new one) before it runs more work, so a wild access stays a DeviceFault."""
    script = tmp_path / "replaced.py"
    script.write_text(REPLACED)
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                         env={k: v for k, v in os.environ.items() if k != "HAL_CHECK"})
    assert run.stdout.splitlines() == ["fault: True", "fault: True", "done"], run.stdout + run.stderr


_ENDLESS = {
    "while": """
@hal.kernel
def endless(x: hal.Ptr[hal.i32], stop: hal.i32):
    while x[0] != stop:  # an abort stops it at its next iteration
        x[1] = x[1] + 1
""",
    "for": """
@hal.kernel
def endless(x: hal.Ptr[hal.i32], stop: hal.i32):
    acc = x[1]
    for i in range(hal.i64(1) << 62):  # nothing stops it: the queue is left to the process's end
        acc = acc * 3 + stop
    x[0] = acc
""",
}


@pytest.mark.parametrize("loop", sorted(_ENDLESS))
def test_ctrl_c_out_of_an_endless_kernel_lets_the_interpreter_exit(loop: str, tmp_path: Path) -> None:
    """Shutdown used to close the queue with an unbounded wait for the kernel (and, once that was
    bounded, to dlclose the kernel's object under the worker still running it: SIGSEGV)."""
    script = tmp_path / "endless.py"
    script.write_text("import numpy as np\nimport hal\n" + _ENDLESS[loop] + textwrap.dedent("""
        dev = hal.device("cpu")
        x = dev.zeros((4,), np.int32)
        endless[1, 1](x, 7)
        print("ready", flush=True)
        dev.synchronize()
    """))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "HAL_CACHE_DIR": str(tmp_path / "cache")})
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        time.sleep(0.3)  # in dev.synchronize()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)  # it ends as Python does on Ctrl-C, in about 2 s (while) or 4 s (for)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGINT and err.rstrip().endswith("KeyboardInterrupt"), (proc.returncode, err[-2000:])
