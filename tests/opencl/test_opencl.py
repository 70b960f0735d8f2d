"""The OpenCL backend on a real driver (PoCL in CI): discovery without a driver, the emitter's
source, the binary cache across processes, faults, and queues used from several threads."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import hal
from hal.kernel import opencl, simt

STATUS = next((s for s in hal.backends() if s.name == "opencl"), None)
needs_device = pytest.mark.skipif(STATUS is None or not STATUS.device_count,
                                  reason=f"no OpenCL device: {STATUS.version if STATUS else 'plugin missing'}")


@hal.kernel
def axpy(a: hal.f32, x: hal.Ptr[hal.f32], y: hal.Ptr[hal.f32], n: hal.i32):
    i = hal.global_id(0)
    if i < n:
        y[i] = a * x[i] + y[i]


def test_no_driver_is_zero_devices_with_the_reason(tmp_path: Path) -> None:
    code = ("import hal; s = next(s for s in hal.backends() if s.name == 'opencl'); "
            "print(s.status, s.device_count, s.version)")
    env = {"OCL_ICD_VENDORS": str(tmp_path), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.startswith("loaded 0 ") and "no devices:" in out


def test_source_keeps_contraction_off_and_has_no_fp64_without_the_extension() -> None:
    text = simt.emit(axpy.ir, opencl.OpenCL(fp64=False, int64_atomics=False)).text
    assert "#pragma OPENCL FP_CONTRACT OFF" in text and "double" not in text
    assert "-cl-fast-relaxed-math" not in opencl.BUILD_OPTIONS


def test_hal_compile_prints_opencl_c(tmp_path: Path) -> None:
    out = tmp_path / "axpy.cl"
    subprocess.run([sys.executable, "-m", "hal", "compile", f"{__file__}:axpy", "--target", "opencl", "-o", str(out)],
                   check=True)
    assert "__kernel void hal_entry(" in out.read_text()


@needs_device
def test_cached_binary_is_used_by_a_fresh_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAL_CACHE_DIR", str(tmp_path))
    code = (f"import hal, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import test_opencl as t; "
            "print(hal.device('opencl:0').compile(t.axpy).report()['cached'])")
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
            for _ in range(2)]
    assert runs == ["False", "True"]
    assert list((tmp_path / "opencl").glob("*.bin.tag"))


def _plus(c: float) -> hal.KernelFunction:
    return hal.kernel.from_source(f"""
def plus(x: hal.Ptr[hal.f32]):
    i = hal.global_id(0)
    x[i] = x[i] + {c}
""")


def _run_plus(kernel: hal.KernelFunction) -> tuple[float, bool]:
    dev = hal.device("opencl:0")
    x = dev.zeros((4,), np.float32)
    kernel[1, 4](x)
    return float(x.numpy()[0]), dev.compile(kernel).report()["cached"]


@needs_device
def test_another_kernels_binary_copied_over_an_entry_is_never_run(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A's binary and its tag copied over B's: B's entry no longer matches its key, so B is built
    again from its own source (x + 2, not A's x + 1)."""
    import shutil

    monkeypatch.setenv("HAL_CACHE_DIR", str(tmp_path))
    a, b = _plus(1.0), _plus(2.0)
    assert _run_plus(a) == (1.0, False) and _run_plus(b) == (2.0, False)
    folder = tmp_path / "opencl"
    pa, pb = (Path(hal.device("opencl:0").compile(k).report()["binary"]) for k in (a, b))
    for suffix in ("", ".tag"):
        shutil.copyfile(folder / (pa.name + suffix), folder / (pb.name + suffix))
    assert _run_plus(_plus(2.0)) == (2.0, False)  # a new kernel object: the cache is asked again
    assert _run_plus(_plus(2.0)) == (2.0, True)  # rebuilt and stored under its own key


@needs_device
def test_an_unusable_cache_dir_runs_uncached_with_one_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    import warnings

    from hal.backend import _cache

    monkeypatch.setattr(_cache, "_warned", set())
    monkeypatch.setenv("HAL_CACHE_DIR", "/dev/null")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert _run_plus(_plus(3.0)) == (3.0, False)
        assert _run_plus(_plus(4.0)) == (4.0, False)
    assert [w.category for w in caught if issubclass(w.category, hal.HalWarning)] == [hal.CacheWarning]


@needs_device
def test_out_of_bounds_is_a_device_fault_in_checked_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAL_CHECK", "1")
    dev = hal.device("opencl:0")
    x, y = dev.array(np.ones(8, np.float32)), dev.zeros((8,), np.float32)
    axpy[1, 16](2.0, x, y, 16)
    with pytest.raises(hal.DeviceFault, match=r"kernel 'axpy' at .*test_opencl.py:\d+: out-of-bounds load global "
                                              r"buffer 'x': index 8 is outside \[0, 8\) for thread global \(8, 0, 0\)"):
        dev.synchronize()
    y = dev.zeros((8,), np.float32)
    axpy[1, 8](2.0, x, y, 8)  # the device keeps working
    np.testing.assert_array_equal(y.numpy(), 2.0)


_WILD_STORE = """
import numpy as np, hal
@hal.kernel
def wr(x: hal.Ptr[hal.f32], idx: hal.i64, v: hal.f32):
    x[idx] = v
dev = hal.device("opencl:0")
x = dev.zeros((16,), np.float32)
print(dev.compile(wr).report()["checked"], flush=True)
try:
    wr[1, 1](x, 10**9, 7.0)
    dev.synchronize()
except hal.DeviceFault as exc:
    print("DeviceFault", exc)
wr[1, 1](x, 3, 5.0)
print(x.numpy()[3])
"""


def _run(code: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh process with a cache of its own and ``env`` (HAL_CHECK unset unless given)."""
    base = {k: v for k, v in os.environ.items() if k != "HAL_CHECK"}
    return subprocess.run([sys.executable, "-W", "always", "-c", code], capture_output=True, text=True, timeout=120,
                          env={**base, "HAL_CACHE_DIR": str(tmp_path), **env})


@needs_device
def test_a_wild_store_is_a_device_fault_by_default_and_the_process_lives_on(tmp_path: Path) -> None:
    """PoCL runs kernels in the process: unchecked, this store is a SIGSEGV. The cold build says
    nothing on stderr (PoCL's clang printed "N warnings generated.", pyopencl a CompilerWarning)."""
    run = _run(_WILD_STORE, tmp_path)
    assert run.returncode == 0 and run.stderr == "", run.stderr[-2000:]
    lines = run.stdout.splitlines()
    assert lines[0] == "True"
    assert lines[1].startswith("DeviceFault kernel 'wr'") and "index 1000000000 is outside [0, 16)" in lines[1]
    assert lines[2] == "5.0"
    assert list((tmp_path / "opencl").glob("*.bin"))  # a cold build happened: the cache was empty


@needs_device
def test_hal_check_0_builds_opencl_kernels_without_bounds_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAL_CHECK", "0")
    dev = hal.device("opencl:0")
    assert hal.Feature.BOUNDS_CHECKS not in dev.impl.info().features

    @hal.kernel
    def plain(x: hal.Ptr[hal.f32]):
        x[hal.global_id(0)] = 1.0

    report = dev.compile(plain).report()
    assert not report["checked"] and "hal_chk(hal_F" not in Path(report["source"]).read_text()


@needs_device
def test_queues_of_several_threads_ordered_by_events() -> None:
    dev = hal.device("opencl:0")
    n = 4096
    x = dev.array(np.arange(n, dtype=np.float32))
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            q1, q2 = dev.queue(), dev.queue()
            y, z = dev.zeros((n,), np.float32), dev.zeros((n,), np.float32)
            for _ in range(20):
                axpy[n // 64, 64, q1](1.0, x, y, n)
                q2.wait(q1.record())
                q2.copy(z, y)  # ordered after q1's launch, and before its next one
                q1.wait(q2.record())
            q1.synchronize()
            np.testing.assert_array_equal(z.numpy(), 20 * np.arange(n, dtype=np.float32))
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


@hal.kernel
def put(v: hal.f32, out: hal.Ptr[hal.f32], at: hal.i32):
    if hal.global_id(0) == 0:
        out[at] = v


@needs_device
def test_launches_that_change_one_argument_see_it_on_every_queue_and_thread() -> None:
    """A queue sets only the arguments that changed since its last launch of a kernel: a changed
    scalar (also -0.0 after 0.0, equal as numbers), another buffer or a view's offset must reach the
    kernel, from several threads each with queues of their own."""
    dev = hal.device("opencl:0")
    errors: list[BaseException] = []

    def worker(seed: int) -> None:
        try:
            q1, q2 = dev.queue(), dev.queue()
            a, b = dev.zeros((64,), np.float32), dev.zeros((64,), np.float32)
            expected_a, expected_b = np.zeros(64, np.float32), np.zeros(64, np.float32)
            rng = np.random.default_rng(seed)
            for step in range(200):
                q = q1 if step % 3 else q2
                out, expected = (a, expected_a) if rng.random() < 0.5 else (b, expected_b)
                at = int(rng.integers(0, 32))
                v = np.float32(-0.0 if step % 7 == 0 else 0.0 if step % 7 == 1 else step)
                view = out[32:] if step % 5 == 0 else out
                put[1, 1, q](v, view, at)
                expected[at + (32 if step % 5 == 0 else 0)] = v
                q1.wait(q2.record())
                q2.wait(q1.record())
            q1.synchronize()
            for got, want in ((a, expected_a), (b, expected_b)):
                np.testing.assert_array_equal(got.numpy().view(np.uint32), want.view(np.uint32))
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    for _ in range(3):
        threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors, errors


@needs_device
@pytest.mark.parametrize(("error", "code", "expected"), [
    ("MemoryError", "MEM_OBJECT_ALLOCATION_FAILURE", hal.OutOfMemoryError),
    ("RuntimeError", "OUT_OF_RESOURCES", hal.OutOfMemoryError),
    ("LogicError", "INVALID_WORK_GROUP_SIZE", hal.DeviceFault),
])
def test_driver_errors_become_hal_errors_that_say_what_to_do(error: str, code: str, expected: type) -> None:
    import pyopencl as cl
    from hal_opencl._queue import _hal_error

    record = cl._cl._ErrorRecord("clEnqueueNDRangeKernel", getattr(cl.status_code, code), "from the driver")
    err = _hal_error(getattr(cl, error)(record), "enqueue")
    assert isinstance(err, expected) and "clEnqueueNDRangeKernel" in str(err)
    if expected is hal.OutOfMemoryError:
        assert "free arrays" in str(err)


def _writer(value: float) -> Any:
    """A kernel of its own for each value (a closure constant: a distinct program)."""

    @hal.kernel
    def write(x: hal.Ptr[hal.f32]):
        x[hal.global_id(0)] = hal.f32(value)

    return write


@needs_device
def test_queues_keep_a_bounded_number_of_programs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each queue kept a kernel object, and so the program, of every executable it ever launched:
    distinct kernels grew the process without bound, even after they were dropped."""
    import gc
    import weakref

    from hal_opencl import _queue

    monkeypatch.setattr(_queue, "BOUND_LIMIT", 3, raising=False)
    dev = hal.device("opencl:0")
    queues = [dev.queue(), dev.queue()]
    alive: list[weakref.ref[object]] = []
    errors: list[BaseException] = []
    kept = _writer(-1.0)  # still alive, launched again after it was dropped from the queues

    def launch_many(q: hal.Queue, base: int) -> None:
        try:
            x = dev.zeros((8,), np.float32)
            for i in range(5):
                k = _writer(float(base + i))
                k[1, 8, q](x)
                alive.append(weakref.ref(dev.compile(k).impl))
                assert len(q.impl._bound) <= 3
                q.synchronize()
                np.testing.assert_array_equal(x.numpy(), base + i)
            kept[1, 8, q](x)
            np.testing.assert_array_equal(x.numpy(), -1.0)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    for q in queues:
        kept[1, 8, q](dev.zeros((8,), np.float32))
    threads = [threading.Thread(target=launch_many, args=(q, 10 * n)) for n, q in enumerate(queues)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    gc.collect()
    assert sum(ref() is not None for ref in alive) <= 2 * 3  # at most BOUND_LIMIT per queue of the 10
    assert all(len(q.impl._bound) <= 3 for q in queues)


_EXIT_WHILE_WAITING = """
import sys
import numpy as np
import hal

@hal.kernel
def busy(x: hal.Ptr[hal.f32], n: hal.i32):
    i = hal.global_id(0)
    acc = x[i]
    for k in range(n):
        acc = acc * hal.f32(0.999) + hal.f32(1.0)
    x[i] = acc

dev = hal.device("opencl:0")
x = dev.zeros((64,), np.float32)
q1, q2 = dev.queue(), dev.queue()
busy[1, 64, q1](x, 10)
q1.synchronize()
busy[1, 64, q1](x, int(sys.argv[1]))
e = q1.record()
q2.wait(e)
try:
    e.synchronize(timeout=0.001)  # hands the wait to the queue's waiter thread, still in it at exit
except hal.DeviceTimeout:
    pass
"""


@needs_device
def test_exiting_while_a_wait_is_in_the_driver_does_not_abort(tmp_path: Path) -> None:
    """The waiter thread, blocked in the driver when the script ended, took the GIL back during
    finalization: rc 134, "terminate called without an active exception" (this script: every
    run; a kernel that ends just as the interpreter exits)."""
    script = tmp_path / "exit_while_waiting.py"
    script.write_text(_EXIT_WHILE_WAITING)
    env = {**os.environ, "HAL_CACHE_DIR": str(tmp_path)}
    for n in (100_000, 300_000):  # about 5 s each here; on the old code each aborted
        run = subprocess.run([sys.executable, str(script), str(n)], capture_output=True, text=True, timeout=120, env=env)
        assert run.returncode == 0 and "terminate" not in run.stderr, (n, run.returncode, run.stderr[-2000:])
