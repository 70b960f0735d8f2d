"""The ``hal`` command in-process, on a private registry: the fake backend and one that cannot open its device."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

import hal
from hal import _lookup
from hal._cli import main
from hal._plugins import Registry

from .fakes import FakeBackend, register_backend


class _Unopenable(FakeBackend):
    name = "unopenable"

    def device_count(self) -> int:
        return 1

    def open_device(self, index: int, options: Any) -> Any:
        raise RuntimeError("firmware not loaded")


@pytest.fixture(autouse=True)
def registry(monkeypatch: pytest.MonkeyPatch) -> Registry:
    reg = Registry(lambda: ())
    monkeypatch.setattr(_lookup, "registry", reg)
    monkeypatch.setattr(_lookup, "_devices", {})
    monkeypatch.setattr(hal, "register_plugin", reg.register)  # where register_backend adds plugins
    register_backend(_Unopenable, "unopenable")
    register_backend(FakeBackend, "fake")
    return reg


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"hal {hal.__version__} (vendor API {hal.API_VERSION[0]}.{hal.API_VERSION[1]})\n"


def test_the_installed_distribution_has_hals_version() -> None:
    """What pip installed (a wheel's metadata, or the editable install's) says the version hal reports."""
    from importlib.metadata import version

    assert version("hal-sdk") == hal.__version__


def test_backends_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backends", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["fake", "unopenable"]
    assert rows[0] == {"name": "fake", "plugin": "fake", "status": "loaded", "version": "1.0",
                       "api_version": list(hal.API_VERSION), "device_count": 2, "error": None}


def test_devices_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["devices", "--json"]) == 0
    records = {r["spec"]: r for r in json.loads(capsys.readouterr().out)}
    assert list(records) == ["unopenable:0", "fake:0", "fake:1"]
    assert records["fake:0"] == {"spec": "fake:0", "backend": "fake", "name": "Fake device 0", "kind": "gpu",
                                 "vendor": "hal tests", "simulated": True, "memory": 1 << 20, "compute_units": 1,
                                 "features": ["atomics", "barriers", "kernels", "multi_dim", "shared_memory",
                                              "simulated_timing"], "error": None}
    broken = records["unopenable:0"]
    assert broken["name"] is None and broken["backend"] == "unopenable"
    assert broken["error"].startswith("backend 'unopenable' could not open device unopenable:0: RuntimeError: "
                                      "firmware not loaded")


def test_devices_reports_a_device_that_cannot_be_opened_and_lists_the_others(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["devices"]) == 0
    out, err = capsys.readouterr()
    assert [line.split()[0] for line in out.splitlines()[2:]] == ["fake:0", "fake:1"]
    (line,) = err.splitlines()
    assert line.startswith("hal: unopenable:0: backend 'unopenable' could not open device unopenable:0: "
                           "RuntimeError: firmware not loaded")


@pytest.mark.parametrize(("argv", "why"), [
    (["bench", "--json", "/nonexistent/x.json"], "--json '/nonexistent/x.json': directory '/nonexistent' does not exist"),
    (["bench", "--quick", "--plot", "."], "--plot '.': it is a directory"),
    (["demo", "--json", "/nonexistent/x.json"], "--json '/nonexistent/x.json'"),
    (["conformance", "fake", "--json", "/nonexistent/x.json"], "--json '/nonexistent/x.json'"),
])
def test_output_files_are_checked_before_anything_runs(argv: list[str], why: str, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    def must_not_run(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("ran before checking its output file")

    import hal.demo.bench
    import hal.demo.train

    monkeypatch.setattr(hal.demo.bench, "run_bench", must_not_run)
    monkeypatch.setattr(hal.demo.train, "run_demo", must_not_run)
    monkeypatch.setattr(pytest, "main", must_not_run)
    assert main(argv) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"hal: error: cannot write {why}")


KERNEL = '''import hal
from sibling import SCALE


@hal.kernel
def scale(x: hal.Ptr[hal.f32], n: hal.i32):
    i = hal.global_id(0)
    if i < n:
        x[i] = x[i] * SCALE
'''


@pytest.mark.parametrize(("text", "why"), [
    ("import hal\ndef k(:\n    pass\n", "failed at line 2: SyntaxError: invalid syntax (bad.py, line 2)"),
    ("import hal\nimport hal_no_such_module\n", "failed at line 2: ModuleNotFoundError: No module named "
                                                "'hal_no_such_module'"),
    ("import hal\n\n\ndef f():\n    raise RuntimeError('boom')\n\n\nf()\n", "failed at line 5: RuntimeError: boom"),
])
def test_compile_of_a_file_that_fails_to_import_is_one_line(text: str, why: str, tmp_path: Any,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(text)
    assert main(["compile", f"{bad}:k"]) == 1
    captured = capsys.readouterr()
    assert not captured.out
    assert captured.err.splitlines() == [f"hal: error: hal compile: importing {bad} {why}; fix the file (try "
                                         f"`python {bad}`)"]


def test_compile_imports_the_files_siblings_and_writes_or_refuses_the_output(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "kernels.py").write_text(KERNEL)
    (tmp_path / "src" / "sibling.py").write_text("SCALE = 3.0\n")
    monkeypatch.chdir(tmp_path)  # not the file's folder
    path = str(tmp_path / "src")
    assert main(["compile", "src/kernels.py:scale", "-o", "scale.c"]) == 0
    assert f"* (({float.hex(3.0)}f))" in (tmp_path / "scale.c").read_text() and path not in sys.path
    assert main(["compile", "src/kernels.py:scale", "-o", "/dev/full"]) == 1
    assert capsys.readouterr().err.splitlines() == ["hal: error: cannot write -o '/dev/full': No space left on "
                                                    "device; name a writable file on a disk with space"]


def test_compile_refuses_an_architecture_nvrtc_does_not_support(tmp_path: Any,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    nvrtc = pytest.importorskip("cuda.bindings.nvrtc")
    err, archs = nvrtc.nvrtcGetSupportedArchs()
    (tmp_path / "sibling.py").write_text("SCALE = 3.0\n")
    (tmp_path / "kernels.py").write_text(KERNEL)
    for arch in ("sm_35", f"sm_{max(archs) + 1}"):
        assert main(["compile", f"{tmp_path / 'kernels.py'}:scale", "--target", f"cuda:{arch}"]) == 1
        (line,) = capsys.readouterr().err.splitlines()
        assert line.startswith("hal: error: NVRTC ") and f"cannot compile for {arch}; it supports " \
            f"{', '.join(f'sm_{a}' for a in archs)}: name one of those" in line
    assert main(["compile", f"{tmp_path / 'kernels.py'}:scale", "--target", f"cuda:sm_{min(archs)}"]) == 0


def test_conformance_all_takes_no_backend(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["conformance", "--all", "-k", "test_saxpy"]) == 2  # argparse gives test_saxpy to `backend`
    assert capsys.readouterr().err.splitlines() == [
        "hal conformance: --all takes no backend name (got 'test_saxpy'); pytest options go after `--`: "
        "hal conformance --all -- -k EXPR"]
