"""The CUDA backend. Everywhere: discovery without a driver, and NVRTC compiling every conformance
kernel and generated programs to PTX for sm_80 and sm_90 (no GPU needed). On a GPU: the binary
cache across processes, faults in checked mode, queues of several threads, interop."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import hal
import hal.conformance
from hal.conformance._generate import BF16, F16, F32, F64, I8, I16, I32, I64, U8, U16, U32, U64, Program, programs
from hal.kernel import cuda, ir, nvrtc, samples, simt

pytest.importorskip("cuda.bindings.nvrtc", reason="the cuda extra is not installed: pip install 'hal-sdk[cuda]'")
STATUS = next((s for s in hal.backends() if s.name == "cuda"), None)
needs_gpu = pytest.mark.skipif(STATUS is None or not STATUS.device_count,
                               reason=f"no CUDA device: {STATUS.version if STATUS else 'plugin missing'}")
ARCHS = ("sm_80", "sm_90")


@hal.kernel
def axpy(a: hal.f32, x: hal.Ptr[hal.f32], y: hal.Ptr[hal.f32], n: hal.i32):
    i = hal.global_id(0)
    if i < n:
        y[i] = a * x[i] + y[i]


def _module_kernels() -> dict[str, ir.Kernel]:
    """Every @hal.kernel defined at module level in the conformance suite and the samples (generic
    ones in their f32 specialisation)."""
    modules = [samples] + [importlib.import_module(f"hal.conformance.{m.name}")
                           for m in pkgutil.iter_modules(hal.conformance.__path__) if m.name.startswith("test_")]
    found = {}
    for m in modules:
        for name, obj in vars(m).items():
            specializer = getattr(obj, "specializer", None)
            if specializer is not None:
                sig = specializer.sig
                obj = obj.specialize(**{v.name: hal.f32 for v in sig.variables},
                                     **{sig.params[i][0]: 64 for i, _ in sig.constants})
            if isinstance(getattr(obj, "ir", None), ir.Kernel):
                found[f"{m.__name__.rsplit('.', 1)[-1]}.{name}"] = obj.ir
    return found


KERNELS = _module_kernels()


def test_no_driver_is_zero_devices_with_the_reason() -> None:
    code = ("import hal; s = next(s for s in hal.backends() if s.name == 'cuda'); "
            "print(s.status, s.device_count, s.version)")
    env = {"LD_LIBRARY_PATH": "/nonexistent", "PATH": "/usr/bin:/bin", "CUDA_VISIBLE_DEVICES": ""}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.startswith("loaded 0 ") and "no devices:" in out


def test_the_suite_has_kernels_to_compile() -> None:
    assert len(KERNELS) >= 20 and "test_kernels.math_f32" in KERNELS


@pytest.mark.parametrize("checked", [False, True], ids=["plain", "checked"])
@pytest.mark.parametrize("name", sorted(KERNELS))
def test_every_conformance_kernel_compiles_to_ptx(name: str, checked: bool) -> None:
    text = simt.emit(KERNELS[name], cuda.Cuda(), checked=checked).text
    for arch in ARCHS:
        ptx = nvrtc.compile_source(text, KERNELS[name].name, arch, "ptx", cuda.NVRTC_OPTIONS)
        assert f".target {arch}".encode() in ptx and b".entry hal_entry" in ptx


def test_no_contraction_and_exact_division_in_the_ptx() -> None:
    text = simt.emit(samples.saxpy.ir, cuda.Cuda()).text
    ptx = nvrtc.compile_source(text, "saxpy", "sm_90", "ptx", cuda.NVRTC_OPTIONS).decode()
    assert "mul.rn.f32" in ptx and "add.rn.f32" in ptx and "fma" not in ptx
    assert "--use_fast_math" not in cuda.NVRTC_OPTIONS


@hal.kernel
def float_adds(g: hal.Ptr[hal.f32], v: hal.f32):
    s = hal.shared(hal.f32, 1)
    s[0] = v
    hal.atomic_add(s, 0, v)
    hal.atomic_add(g, 0, s[0])


def test_f32_atomic_add_in_global_memory_is_not_the_flushing_atom_add_f32() -> None:
    """PTX ``atom.add.f32`` flushes subnormals to zero on global memory (not on shared memory), and
    the IR keeps them: global f32 adds are a compare-and-swap loop (see hal.kernel.cuda)."""
    ptx = nvrtc.compile_source(simt.emit(float_adds.ir, cuda.Cuda()).text, "float_adds", "sm_90", "ptx",
                               cuda.NVRTC_OPTIONS).decode()
    assert "atom.shared.add.f32" in ptx and "atom.global.add.f32" not in ptx and "atom.add.f32" not in ptx
    assert "atom.global.cas.b32" in ptx or "atom.cas.b32" in ptx


@needs_gpu
def test_f32_atomic_adds_keep_subnormals_on_the_gpu() -> None:
    dev = hal.device("cuda:0")
    tiny = float(np.finfo(np.float32).smallest_subnormal)
    g = dev.array(np.array([tiny], np.float32))
    float_adds[1, 1](g, tiny)  # shared: tiny + tiny, then global: tiny + 2 tiny
    np.testing.assert_array_equal(g.numpy(), np.float32(3 * tiny))


WIDE = (I32, U32, I64, U64, F32, F64)
NARROW = (I32, U32, F32, F16, BF16, I8, U8, I16, U16)


@pytest.mark.parametrize(("family", "types"), [("scalar", (I32, U32, F32)), ("scalar", WIDE), ("scalar", NARROW),
                                               ("shared", (I32, U32, F32)), ("atomic", (I32, U32, F32))],
                         ids=["scalar", "scalar-64bit", "scalar-narrow", "shared", "atomic"])
def test_generated_programs_compile_for_sm80_and_sm90(family: Any, types: Any, tmp_path: Path) -> None:
    @settings(max_examples=12, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(programs(family, types))
    def compiles(program: Program) -> None:
        kernel = program.load(tmp_path).ir
        text = simt.emit(kernel, cuda.Cuda()).text
        for arch in ARCHS:
            nvrtc.compile_source(text, kernel.name, arch, "ptx", cuda.NVRTC_OPTIONS)

    compiles()


def test_an_unknown_architecture_names_the_accepted_form() -> None:
    with pytest.raises(hal.CompileError, match=r"name one as sm_XY"):
        nvrtc.compile_source("", "k", "compute_90", "ptx", ())


@pytest.mark.parametrize("emit", ["source", "ptx", "cubin"])
def test_hal_compile_for_cuda_works_without_a_gpu(emit: str, tmp_path: Path) -> None:
    out = tmp_path / f"axpy.{emit}"
    subprocess.run([sys.executable, "-m", "hal", "compile", f"{__file__}:axpy", "--target", "cuda:sm_90",
                    "--emit", emit, "-o", str(out)], check=True)
    data = out.read_bytes()
    expected = {"source": b'extern "C" __global__ void hal_entry(', "ptx": b".target sm_90", "cubin": b"\x7fELF"}
    assert expected[emit] in data


def test_hal_compile_refuses_a_cubin_on_the_terminal() -> None:
    run = subprocess.run([sys.executable, "-m", "hal", "compile", f"{__file__}:axpy", "--target", "cuda",
                          "--emit", "cubin"], capture_output=True, text=True)
    assert run.returncode == 1 and "write it to a file with -o OUT" in run.stderr


# ---------------------------------------------------------------- on a GPU
@needs_gpu
def test_cached_binary_is_used_by_a_fresh_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAL_CACHE_DIR", str(tmp_path))
    code = (f"import hal, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import test_cuda as t; "
            "print(hal.device('cuda:0').compile(t.axpy).report()['cached'])")
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
            for _ in range(2)]
    assert runs == ["False", "True"]
    assert list((tmp_path / "cuda").glob("*.cubin.tag"))


@needs_gpu
def test_out_of_bounds_is_a_device_fault_in_checked_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAL_CHECK", "1")
    dev = hal.device("cuda:0")
    x, y = dev.array(np.ones(8, np.float32)), dev.zeros((8,), np.float32)
    axpy[1, 16](2.0, x, y, 16)
    with pytest.raises(hal.DeviceFault, match=r"kernel 'axpy' at .*test_cuda.py:\d+: out-of-bounds load global "
                                              r"buffer 'x': index 8 is outside \[0, 8\) for thread global \(8, 0, 0\)"):
        dev.synchronize()
    y = dev.zeros((8,), np.float32)
    axpy[1, 8](2.0, x, y, 8)  # the device keeps working
    np.testing.assert_array_equal(y.numpy(), 2.0)


@needs_gpu
def test_queues_of_several_threads_ordered_by_events() -> None:
    dev = hal.device("cuda:0")
    n = 1 << 16
    x = dev.array(np.arange(n, dtype=np.float32))
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            q1, q2 = dev.queue(), dev.queue()
            y, z = dev.zeros((n,), np.float32), dev.zeros((n,), np.float32)
            for _ in range(50):
                axpy[n // 256, 256, q1](1.0, x, y, n)
                q2.wait(q1.record())
                q2.copy(z, y)  # ordered after q1's launch, and before its next one
                q1.wait(q2.record())
            q1.synchronize()
            np.testing.assert_array_equal(z.numpy(), 50 * np.arange(n, dtype=np.float32))
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


@needs_gpu
def test_fills_of_every_pattern_width() -> None:
    dev = hal.device("cuda:0")
    for dtype, value in ((np.uint8, 7), (np.int16, -3), (np.float16, 0.5), (np.int32, -3), (np.float32, 1.5),
                         (np.float64, -2.25), (np.int64, 2**40 + 5)):
        x = dev.full((1001,), value, dtype)
        np.testing.assert_array_equal(x[1:].numpy(), np.full(1000, value, dtype))


@needs_gpu
def test_cupy_and_torch_take_arrays_without_a_copy() -> None:
    cupy = pytest.importorskip("cupy")
    dev = hal.device("cuda:0")
    x = dev.array(np.arange(12, dtype=np.float32)).reshape(3, 4)
    address = x.__cuda_array_interface__["data"][0]
    c = cupy.asarray(x)
    assert c.data.ptr == address and c.shape == (3, 4)
    c *= 2  # CuPy writes hal's memory on its own stream: the consumer orders its writes
    cupy.cuda.get_current_stream().synchronize()
    np.testing.assert_array_equal(x.numpy(), 2 * np.arange(12, dtype=np.float32).reshape(3, 4))
    row = x[1]
    assert cupy.asarray(row).data.ptr == address + 16
    torch = pytest.importorskip("torch")
    t = torch.as_tensor(x, device="cuda")
    assert t.data_ptr() == address and t.sum().item() == 2 * 66
    x.free()  # the consumers keep x, so the memory stays theirs until x goes
    assert float(c.sum()) == 2 * 66


def test_arrays_without_device_addresses_have_no_cuda_interface() -> None:
    x = hal.device("cpu").array(np.ones(3, np.float32))
    assert not hasattr(x, "__cuda_array_interface__")


@hal.kernel
def mixed(x: hal.Ptr[hal.f32], h: hal.f16, flag: hal.bool_, w: hal.f64, c: hal.i8):
    pass


def test_the_argument_block_puts_each_value_at_its_slot() -> None:
    import ctypes

    from hal_cuda._params import ParamBlock

    from hal._memory import BufferArg
    from hal.kernel import simt

    layout = simt.ArgLayout.of(mixed.ir)
    assert layout.codes == ("Q", "q", "q", "H", "B", "d", "b") and layout.buffers == (0,)

    class Held:
        handle = 2**40

    values = layout.values([BufferArg(Held(), -8, 3), 1.5, True, -0.25, -3])  # type: ignore[arg-type]
    block = ParamBlock(layout)
    block.pack(values, 7, 5)
    assert len(block.data) == 72
    slots = [bytes(block.data[i:i + 8]) for i in range(0, 72, 8)]
    assert slots[0] == (2**40).to_bytes(8, "little") and slots[1] == (-8).to_bytes(8, "little", signed=True)
    assert slots[3][:2] == np.float16(1.5).tobytes() and slots[4][0] == 1 and slots[5] == np.float64(-0.25).tobytes()
    assert slots[6][0] == 0xFD and slots[7] == (7).to_bytes(8, "little") and slots[8][:4] == (5).to_bytes(4, "little")
    table = (ctypes.c_void_p * 9).from_address(block.address)  # what cuLaunchKernel reads: slot i at table[i]
    assert [ctypes.string_at(table[i], 8) for i in range(9)] == slots


@needs_gpu
def test_dlpack_export_to_torch_and_cupy() -> None:
    torch = pytest.importorskip("torch")
    cupy = pytest.importorskip("cupy")
    dev = hal.device("cuda:0")
    x = dev.array(np.arange(12, dtype=np.float32)).reshape(3, 4)
    assert x.__dlpack_device__() == (2, dev.info.index)
    t = torch.from_dlpack(x)
    assert t.device.type == "cuda" and t.shape == (3, 4) and t.data_ptr() == x.__cuda_array_interface__["data"][0]
    c = cupy.from_dlpack(x[1:])
    assert c.shape == (2, 4) and float(c.sum()) == float(np.arange(4, 12).sum())
    x.free()  # the consumers hold the memory
    assert float(t.sum().item()) == 66.0


@needs_gpu
def test_cupy_and_torch_arrays_come_in_without_a_copy() -> None:
    cupy = pytest.importorskip("cupy")
    dev = hal.device("cuda:0")
    c = cupy.arange(12, dtype=cupy.float32).reshape(3, 4)
    x = dev.asarray(c, copy=False)
    assert x.shape == (3, 4) and x.__cuda_array_interface__["data"][0] == c.data.ptr
    y = dev.zeros((12,), np.float32)
    axpy[1, 12](2.0, x.reshape(12), y, 12)
    np.testing.assert_array_equal(y.numpy(), 2 * np.arange(12, dtype=np.float32))
    axpy[1, 12](1.0, y, x.reshape(12), 12)  # hal writes CuPy's memory
    dev.synchronize()
    np.testing.assert_array_equal(cupy.asnumpy(c).ravel(), 3 * np.arange(12, dtype=np.float32))
    torch = pytest.importorskip("torch")
    t = torch.arange(6, device="cuda", dtype=torch.float64)
    h = hal.from_dlpack(t)  # picks cuda:0 from the tensor's DLPack device
    assert h.device is dev and h.__cuda_array_interface__["data"][0] == t.data_ptr()
    np.testing.assert_array_equal(h.numpy(), np.arange(6.0))
    with pytest.raises(hal.InvalidArgumentError, match="not C-contiguous"):
        dev.asarray(t[::2])
    with pytest.raises(hal.InvalidArgumentError, match="does not address CUDA memory"):
        hal.device("cpu").asarray(t)
