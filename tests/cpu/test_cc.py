"""Which C compiler the CPU backend finds (fake PATHs and packages), and that a missing or broken
one is one clear error for kernels while buffers and the other backends keep working."""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from hal_cpu import _cc, _compiler
from hal_cpu._backend import CpuBackend

import hal
from hal.kernel.samples import saxpy

FAKE_CC = """#!/bin/sh
# a compiler that says it is GCC and builds nothing
[ "$1" = --version ] && {{ echo "{version}"; exit 0; }}
echo "cc1: fatal error: stdio.h: No such file or directory" >&2
exit 1
"""


def program(folder: Path, name: str, text: str = "#!/bin/sh\nexit 0\n") -> str:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    path.chmod(0o755)
    return str(path)


def zig_package(tmp_path: Path) -> Any:
    """A find_spec that finds a ``ziglang`` package holding an executable ``zig``."""
    origin = tmp_path / "site" / "ziglang" / "__init__.py"
    program(origin.parent, "zig")
    return lambda name: SimpleNamespace(origin=str(origin)) if name == "ziglang" else None


def no_package(name: str) -> None:
    return None


def test_the_order_is_hal_cc_cc_then_cc_gcc_clang_on_path_then_ziglang(tmp_path: Path) -> None:
    everything = tmp_path / "all"
    for name in ("cc", "gcc", "clang", "mycc"):
        program(everything, name)
    zig = zig_package(tmp_path)
    path = str(everything)
    assert _cc.find({"PATH": path, "HAL_CC": "mycc -w", "CC": "gcc"}, zig) == \
        _cc.Found((str(everything / "mycc"), "-w"), "$HAL_CC")
    assert _cc.find({"PATH": path, "CC": "clang"}, zig).command == (str(everything / "clang"),)
    assert _cc.find({"PATH": path}, zig) == _cc.Found((str(everything / "cc"),), "cc on PATH")
    for gone, next_one in (("cc", "gcc"), ("gcc", "clang")):
        (everything / gone).unlink()
        assert _cc.find({"PATH": path}, zig).command == (str(everything / next_one),)
    (everything / "clang").unlink()
    found = _cc.find({"PATH": path, "CC": "nonexistent-cc"}, zig)
    assert found.command == (str(tmp_path / "site" / "ziglang" / "zig"), "cc")
    assert "ziglang" in found.why


def test_a_later_path_entry_and_an_absolute_setting_are_found(tmp_path: Path) -> None:
    gcc = program(tmp_path / "b", "gcc")
    assert _cc.find({"PATH": f"{tmp_path / 'a'}:{tmp_path / 'b'}"}, no_package).command == (gcc,)
    mine = program(tmp_path / "elsewhere", "my cc")
    assert _cc.find({"PATH": "", "HAL_CC": f"'{mine}' cc"}, no_package).command == (mine, "cc")


def test_hal_cc_naming_no_program_is_an_error_not_a_fallback(tmp_path: Path) -> None:
    program(tmp_path, "gcc")
    with pytest.raises(hal.UnsupportedError, match=r"HAL_CC='zig cc' names no program on PATH"):
        _cc.find({"PATH": str(tmp_path), "HAL_CC": "zig cc"}, no_package)


def test_no_compiler_anywhere_names_what_was_tried_and_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(hal.UnsupportedError) as info:
        _cc.find({"PATH": str(tmp_path), "CC": "clang-99"}, no_package)
    message = str(info.value)
    for tried in ("$HAL_CC (unset)", "$CC='clang-99' (no such program)", f"cc, gcc, clang on PATH ({tmp_path})",
                  "the ziglang package (not installed)", "pip install 'hal-sdk[compiler]'"):
        assert tried in message
    assert info.value.feature == "kernels"


def test_identify_tells_clang_from_gcc_and_a_compiler_that_does_not_run(tmp_path: Path) -> None:
    clang = program(tmp_path, "clang", "#!/bin/sh\necho 'Ubuntu clang version 18.1.3'\necho 'Target: x'\n")
    assert _cc.identify(_cc.Found((clang,), "t")) == _cc.Identity("clang", "Ubuntu clang version 18.1.3")
    gcc = program(tmp_path, "gcc", FAKE_CC.format(version="gcc (GCC) 14.1.0"))
    assert _cc.identify(_cc.Found((gcc,), "t")).family == "gcc"
    dead = program(tmp_path, "dead", "#!/bin/sh\necho 'segfault' >&2\nexit 139\n")
    with pytest.raises(hal.UnsupportedError, match=r"(?s)dead \(t\) does not work \(`--version` exited 139\).*segfault"):
        _cc.identify(_cc.Found((dead,), "t"))


def test_the_backend_says_which_compiler_and_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gcc = program(tmp_path, "gcc")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("HAL_CC", raising=False)
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.setattr(_cc, "_zig", lambda find_spec: None)
    assert CpuBackend().version == f"{hal.__version__} (kernels: {gcc} (gcc on PATH))"
    Path(gcc).unlink()
    assert CpuBackend().version.startswith(f"{hal.__version__} (no kernels: compiling kernels needs a C compiler")


@hal.kernel
def add_one(x: hal.Ptr[hal.f32]):
    x[hal.global_id(0)] += 1.0


def test_a_broken_compiler_fails_kernels_only_with_one_clear_error(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    fake = program(tmp_path, "fakecc", FAKE_CC.format(version="gcc (fake) 1.0"))
    monkeypatch.setenv("HAL_CC", fake)
    monkeypatch.setenv("HAL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(_compiler, "_toolchain", None)
    cpu = hal.device("cpu")
    errors: list[BaseException] = []

    def compile_once() -> None:
        try:
            cpu.compile(add_one)
        except hal.HalError as exc:
            errors.append(exc)
    threads = [threading.Thread(target=compile_once) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 4 and all(type(e) is hal.UnsupportedError for e in errors)
    message = str(errors[0])
    assert f"the C compiler {fake} ($HAL_CC) does not work (it cannot build an empty shared object)" in message
    assert "stdio.h: No such file" in message and "hal-sdk[compiler]" in message
    assert not list((tmp_path / "cache" / "cpu").glob("*.failed.c"))  # not reported as an emitter bug
    x = cpu.array(np.arange(4, dtype=np.float32))  # memory and copies still work on cpu
    np.testing.assert_array_equal((x.numpy() * 2), np.arange(4) * 2)
    gpu = hal.device("simgpu")  # and kernels on the other backends
    y = gpu.array(np.arange(4, dtype=np.float32))
    saxpy[1, 4](np.float32(2), y, y, 4)
    np.testing.assert_array_equal(y.numpy(), np.arange(4) * 3)


def test_no_compiler_is_an_unsupported_error_for_kernels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("HAL_CC", raising=False)
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.setattr(_cc, "_zig", lambda find_spec: None)
    monkeypatch.setattr(_compiler, "_toolchain", None)
    with pytest.raises(hal.UnsupportedError, match=r"compiling kernels needs a C compiler; tried") as info:
        hal.device("cpu").compile(add_one)
    assert info.value.feature == "kernels"
