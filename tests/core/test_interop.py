"""``dev.asarray`` / ``hal.from_dlpack``: host memory of numpy, PyTorch and JAX shared without a
copy where the device can address it; copies, ``copy=False`` errors, read-only producers, lifetimes;
and ``np.asarray(x, copy=False)`` on hal arrays."""

from __future__ import annotations

import gc
import importlib.util
import subprocess
import sys
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import hal
from hal.kernel.samples import saxpy


@hal.kernel
def double(x: hal.Ptr[hal.f32], n: hal.i32):
    i = hal.global_id(0)
    if i < n:
        x[i] = x[i] * 2.0


@hal.kernel
def slow(x: hal.Ptr[hal.f32], iterations: hal.i32):
    """Keeps its queue busy for a while (one thread, a dependent chain of multiplications)."""
    v = x[0]
    for _ in range(iterations):
        v = v * 1.0000001 + 1e-9
    x[0] = v


@pytest.fixture
def cpu() -> hal.Device:
    return hal.device("cpu")


def _shares(x: hal.Array, host: np.ndarray) -> bool:
    return bool(x.buffer.host_array().ctypes.data == host.ctypes.data)  # type: ignore[union-attr]


# ---------------------------------------------------------------- numpy
@pytest.mark.parametrize("spec", ["cpu", "fake:0"])
def test_numpy_memory_is_shared_both_ways(spec: str) -> None:
    dev = hal.device(spec)
    a = np.arange(64, dtype=np.float32).reshape(8, 8)
    for x in (dev.asarray(a), dev.asarray(a, copy=False), hal.from_dlpack(a, device=dev)):
        assert x.shape == (8, 8) and x.dtype == np.float32 and not x.readonly and _shares(x, a)
    x = dev.asarray(a)
    double[1, 64](x, 64)
    dev.synchronize()
    np.testing.assert_array_equal(a, 2 * np.arange(64).reshape(8, 8))  # the device's writes, in the producer
    a[0, 0] = -1.0
    assert x.numpy()[0, 0] == -1.0  # the producer's writes, on the device


def test_every_stored_dtype_is_shared(cpu: hal.Device) -> None:
    for name in cpu.info.dtypes:
        a = (np.arange(12) % 2).astype(name).reshape(3, 4)
        x = cpu.asarray(a, copy=False)
        assert x.dtype == a.dtype and _shares(x, a)
        np.testing.assert_array_equal(x.numpy(), a)


def test_copy_true_always_copies(cpu: hal.Device) -> None:
    a = np.arange(8, dtype=np.float32)
    x = cpu.asarray(a, copy=True)
    assert not _shares(x, a)
    double[1, 8](x, 8)
    np.testing.assert_array_equal(x.numpy(), 2 * a)
    np.testing.assert_array_equal(a, np.arange(8))
    assert cpu.memory_stats().in_use >= x.nbytes  # pool memory, unlike a shared array


@pytest.mark.parametrize("make,why", [
    (lambda: np.arange(16, dtype=np.float32)[::2], "not C-contiguous"),
    (lambda: np.arange(16, dtype=np.float32).reshape(4, 4).T, "not C-contiguous"),
    (lambda: np.arange(8, dtype=">f4"), "converted"),
    (lambda: np.frombuffer(bytearray(33), np.float32, 8, offset=1), "not aligned"),
    (lambda: [1.0, 2.0, 3.0], "not memory of its own"),
])
def test_what_cannot_be_shared_is_copied_or_refused(cpu: hal.Device, make: Any, why: str) -> None:
    host = make()
    x = cpu.asarray(host)
    np.testing.assert_array_equal(x.numpy(), np.asarray(host))
    assert x.dtype.isnative and not x.readonly
    with pytest.raises(hal.ZeroCopyError, match=why) as info:
        cpu.asarray(host, copy=False)
    assert isinstance(info.value, ValueError) and "copy=None" in str(info.value)
    np.testing.assert_array_equal(cpu.asarray([5.0]).numpy(), [5.0])  # the device keeps working


def test_dtype_conversion_copies(cpu: hal.Device) -> None:
    a = np.arange(4, dtype=np.int32)
    x = cpu.asarray(a, np.float32)
    assert x.dtype == np.float32 and not _shares(x, a)
    assert _shares(cpu.asarray(a, np.int32, copy=False), a)
    with pytest.raises(hal.ZeroCopyError, match="converted to float32"):
        cpu.asarray(a, np.float32, copy=False)
    with pytest.raises(hal.InvalidArgumentError, match="does not store complex64"):
        cpu.asarray(np.zeros(3, np.complex64))
    with pytest.raises(hal.InvalidArgumentError, match="copy must be"):
        cpu.asarray(a, copy="yes")  # type: ignore[arg-type]


def test_devices_that_cannot_address_host_memory_copy(fake_remote: hal.Device) -> None:
    a = np.arange(4, dtype=np.float32)
    x = fake_remote.asarray(a)
    np.testing.assert_array_equal(x.numpy(), a)
    with pytest.raises(hal.ZeroCopyError, match="cannot address host memory.*host-visible device"):
        fake_remote.asarray(a, copy=False)
    sim = hal.device("simgpu")
    np.testing.assert_array_equal(hal.from_dlpack(a, device=sim).numpy(), a)
    with pytest.raises(hal.ZeroCopyError):
        hal.from_dlpack(a, device="simgpu", copy=False)


def test_empty_and_zero_d(cpu: hal.Device) -> None:
    assert cpu.asarray(np.zeros((0, 3), np.float32), copy=False).shape == (0, 3)
    s = np.array(7, np.int64)
    x = cpu.asarray(s, copy=False)
    assert x.shape == () and _shares(x, s) and x.numpy() == 7


# ---------------------------------------------------------------- read-only producers
def test_read_only_memory_is_shared_and_never_written(cpu: hal.Device) -> None:
    a = np.arange(8, dtype=np.float32)
    a.flags.writeable = False
    x = cpu.asarray(a, copy=False)
    assert x.readonly and _shares(x, a) and x[2:].readonly and x.reshape(2, 4).view(np.int32).readonly
    y = cpu.zeros((8,), np.float32)
    q = cpu.queue()
    saxpy[1, 8, q](2.0, x, y, 8)  # reading it is fine
    q.copy(y, x)
    np.testing.assert_array_equal(y.numpy(), a)
    refused = [
        lambda: saxpy[1, 8, q](2.0, y, x, 8),
        lambda: double[1, 8, q](x[4:], 4),
        lambda: q.fill(x, 0.0),
        lambda: q.copy(x, y),
        lambda: q.copy(x, np.zeros(8, np.float32)),
        lambda: hal.ops.add(y, y, out=x),
        lambda: hal.collective.all_reduce([x]),
    ]
    for write in refused:
        with pytest.raises(hal.InvalidArgumentError, match="read-only.*copy=True"):
            write()
    q.synchronize()
    np.testing.assert_array_equal(a, np.arange(8))
    assert not np.from_dlpack(x).flags.writeable  # exports stay read-only
    w = cpu.asarray(a, copy=True)
    assert not w.readonly
    double[1, 8, q](w, 8)  # the device keeps working
    np.testing.assert_array_equal(w.numpy(), 2 * a)


# ---------------------------------------------------------------- hal arrays
def test_hal_arrays(cpu: hal.Device, fake: hal.Device) -> None:
    x = cpu.array(np.arange(4, dtype=np.float32))
    assert cpu.asarray(x) is x and cpu.asarray(x, copy=False) is x and hal.from_dlpack(x) is x
    c = cpu.asarray(x, copy=True)
    assert c.buffer is not x.buffer
    np.testing.assert_array_equal(c.numpy(), x.numpy())
    np.testing.assert_array_equal(cpu.asarray(x, np.int32).numpy(), [0, 1, 2, 3])
    other = fake.asarray(x)
    assert other.device is fake
    np.testing.assert_array_equal(other.numpy(), [0, 1, 2, 3])
    for bad in (lambda: fake.asarray(x, copy=False), lambda: cpu.asarray(x, np.int32, copy=False)):
        with pytest.raises(hal.ZeroCopyError, match="copy=None"):
            bad()


def test_device_copy_of_an_array_sees_queued_writes(cpu: hal.Device) -> None:
    n = 1 << 16
    x = cpu.zeros((n,), np.float32)
    q, d = cpu.queue(), cpu.default_queue
    for r in range(20):
        d.fill(x, float(r))
        q.wait(d.record())
        double[n // 256, 256, q](x, n)
        np.testing.assert_array_equal(cpu.asarray(x, copy=True).numpy()[::4096], 2.0 * r)  # waits for q


# ---------------------------------------------------------------- lifetimes
def test_the_producer_lives_as_long_as_arrays_views_and_exports(cpu: hal.Device) -> None:
    a = np.arange(1024, dtype=np.float32)
    ref = weakref.ref(a)
    x = cpu.asarray(a, copy=False)
    view = x[10:20]
    export = np.from_dlpack(view)
    del a, x
    gc.collect()
    assert ref() is not None
    view.free()  # drops hal's reference; the export still holds the memory
    cpu.synchronize()
    gc.collect()
    assert ref() is not None and export[0] == 10.0
    del export
    cpu.synchronize()
    gc.collect()
    assert ref() is None


def test_free_while_queued_keeps_the_producer_until_the_work_is_done(cpu: hal.Device) -> None:
    """A freed shared array is released only once the commands queued before the free are done;
    the producer's memory (large: unmapped when freed) is read by a copy queued behind long work."""
    n = 1 << 21
    q = cpu.queue()
    busy = cpu.zeros((1,), np.float32)
    for _ in range(5):
        slow[1, 1, q](busy, 50_000_000)
        a = np.full(n, 5.0, np.float32)
        ref = weakref.ref(a)
        x = cpu.asarray(a, copy=False)
        out = cpu.zeros((n,), np.float32)
        q.copy(out, x)
        x.free()
        del a
        gc.collect()
        assert not q.impl.idle() and ref() is not None, "the producer was let go while a copy of it was queued"
        q.synchronize()
        np.testing.assert_array_equal(out.numpy()[::4096], 5.0)
        cpu.synchronize()
        gc.collect()
        assert ref() is None, "the producer was kept after the work that used it"


def test_adopted_memory_is_not_the_pools(cpu: hal.Device) -> None:
    cpu.release_cache()
    before = cpu.memory_stats()
    a = np.ones(1 << 16, np.float32)
    x = cpu.asarray(a, copy=False)
    assert cpu.memory_stats().in_use == before.in_use
    x.free()
    assert cpu.memory_stats().cached == before.cached  # never cached for reuse
    np.testing.assert_array_equal(a[:2], [1.0, 1.0])


# ---------------------------------------------------------------- DLPack producers
class _OnDevice:
    def __init__(self, kind: int) -> None:
        self.kind = kind

    def __dlpack__(self, **kwargs: Any) -> Any:
        raise AssertionError("not called for memory the host cannot address")

    def __dlpack_device__(self) -> tuple[int, int]:
        return (self.kind, 1)


@pytest.mark.parametrize("kind,name", [(2, "CUDA"), (10, "ROCm"), (99, "DLPack device type 99")])
def test_dlpack_from_other_devices_is_a_clear_error(cpu: hal.Device, kind: int, name: str) -> None:
    for copy in (None, True, False):
        with pytest.raises(hal.InvalidArgumentError, match=rf"{name} memory \(device 1\).*copy it to host memory"):
            hal.from_dlpack(_OnDevice(kind), copy=copy)
    with pytest.raises(hal.InvalidArgumentError, match="__dlpack__"):
        hal.from_dlpack([1, 2])


@pytest.mark.parametrize("framework", ["torch", "jax"])
def test_framework_tensors_are_shared(framework: str) -> None:
    """PyTorch and JAX start threads that make a later fork() (the fork tests) deadlock, so their
    checks (tests/core/frameworks.py) run in a process of their own."""
    if importlib.util.find_spec(framework) is None:
        pytest.skip(f"{framework} is not installed")
    run = subprocess.run([sys.executable, "-m", "tests.core.frameworks", framework], capture_output=True, text=True,
                         timeout=300, cwd=Path(__file__).resolve().parents[2])
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert run.stdout.strip().endswith(f"{framework}: ok")


# ---------------------------------------------------------------- numpy's __array__ protocol
def test_np_asarray_copy_protocol(cpu: hal.Device, fake_remote: hal.Device) -> None:
    x = cpu.array(np.arange(4, dtype=np.float32))
    view = np.asarray(x, copy=False)
    double[1, 4](x, 4)
    np.testing.assert_array_equal(np.asarray(x, copy=False), [0, 2, 4, 6])  # waits for the launch
    assert np.shares_memory(view, np.asarray(x, copy=False))
    copied = np.asarray(x)
    assert not np.shares_memory(copied, view)
    assert np.array(x, copy=True) is not view
    with pytest.raises(ValueError, match="conversion"):
        np.asarray(x, dtype=np.float64, copy=False)
    np.testing.assert_array_equal(np.asarray(x, dtype=np.float64), [0, 2, 4, 6])
    with pytest.raises(ValueError, match="x.numpy"):
        np.asarray(fake_remote.array([1.0]), copy=False)
    x.free()
    assert view[1] == 2.0  # the view keeps the memory


class _CudaProducer:
    """What CuPy, PyTorch and JAX arrays in CUDA memory look like to hal (no GPU needed to refuse them)."""

    __cuda_array_interface__ = {"shape": (4,), "typestr": "<f4", "data": (0x7F0000000000, False), "strides": None,
                                "version": 3, "stream": None}


def test_cuda_memory_on_a_device_that_cannot_address_it_says_where_to_import_it() -> None:
    dev = hal.device("cpu")
    with pytest.raises(hal.InvalidArgumentError, match=r"does not address CUDA memory; import it on its CUDA device"):
        dev.asarray(_CudaProducer())
    with pytest.raises(hal.ZeroCopyError):
        dev.asarray(_CudaProducer(), copy=False)
    assert dev.asarray(np.ones(2, np.float32)).numpy().sum() == 2  # the device keeps working
