"""The ``hal`` command in-process, on a private registry: the fake backend and one that cannot open its device."""

from __future__ import annotations

import json
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
