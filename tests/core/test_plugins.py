"""Plugin discovery: every way a plugin can misbehave is an error row, and the others keep working."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import hal
from hal import _lookup
from hal._plugins import BUNDLED, EntryPoint, Registry, check_api_version, entry_points, open_device
from hal.backend import hookimpl

from .fakes import FakeBackend


def _raise(exc: BaseException) -> Callable[[], Any]:
    def hook() -> Any:
        raise exc
    return hook


def _plugin(returns: Callable[[], Any] = lambda: [FakeBackend()], api: Any = hal.API_VERSION,
            ops: Callable[[], Any] | None = None) -> types.ModuleType:
    """A plugin module whose hal_backends() returns ``returns()`` (and whose hal_ops(), ``ops()``)."""
    module = types.ModuleType("p")
    module.api_version = api  # type: ignore[attr-defined]
    module.hal_backends = hookimpl(lambda: returns())  # type: ignore[attr-defined]
    if ops is not None:
        module.hal_ops = hookimpl(lambda: ops())  # type: ignore[attr-defined]
    return module


def _load(*plugins: tuple[str, types.ModuleType], discovered: tuple[EntryPoint, ...] = ()) -> Registry:
    """A private registry: the ``discovered`` entry points, then the in-process ``plugins``."""
    reg = Registry(lambda: discovered)
    for name, module in plugins:
        reg.register(module, name)
    reg.ensure_loaded()
    return reg


def _error(reg: Registry, name: str) -> str:
    """The error of the one error row named ``name``."""
    (row,) = [r for r in reg.rows if r.name == name and r.status == "error"]
    assert row.error
    return row.error


class _Counted(FakeBackend):
    name = "counted"

    def __init__(self, count: Any) -> None:
        super().__init__()
        self.count = count


class _Failing(FakeBackend):
    """device_count() and open_device() raise ``exc``."""

    name = "failing"

    def __init__(self, exc: BaseException) -> None:
        super().__init__()
        self.exc = exc

    def device_count(self) -> int:
        raise self.exc

    def open_device(self, index: int, options: Any) -> Any:
        raise self.exc


class _Counting(_Failing):
    """Counts one device, then fails to open it."""

    def device_count(self) -> int:
        return 1


PLUGIN_SOURCE = '''
from hal.backend import Backend
from hal.backend import hookimpl

api_version = (1, 0)


class B(Backend):
    name = "dup"

    def device_count(self):
        return 1

    def open_device(self, index, options):
        raise NotImplementedError


@hookimpl
def hal_backends():
    return [B()]
'''


def _dist(site: Path, stem: str, entry_points_txt: str) -> None:
    info = site / f"{stem}.dist-info"
    info.mkdir(parents=True)
    (info / "entry_points.txt").write_text(entry_points_txt)


def test_good_plugin_loads() -> None:
    reg = _load(("good", _plugin()))
    (row,) = reg.rows
    assert row.ok and reg.status("fake") is row and reg.device_count("fake") == 2
    assert isinstance(reg.backends["fake"], FakeBackend)


def test_failures_are_listed_and_do_not_stop_the_others() -> None:
    newer = (hal.API_VERSION[0], hal.API_VERSION[1] + 1)
    reg = _load(("oldmajor", _plugin(api=(hal.API_VERSION[0] + 1, 0))),
                ("newer", _plugin(api=newer)),
                ("raises", _plugin(_raise(RuntimeError("no licence")))),
                ("discovery", _plugin(lambda: [_Failing(RuntimeError("driver not found"))])),
                ("good", _plugin()),
                discovered=(EntryPoint("broken", "hal_tests_no_such_vendor_sdk", "acme"),))
    assert "failed to import" in _error(reg, "broken") and "hal_tests_no_such_vendor_sdk" in _error(reg, "broken")
    assert "major versions must match" in _error(reg, "oldmajor")
    assert "upgrade hal-sdk" in _error(reg, "newer") and f"{newer[0]}.{newer[1]}" in _error(reg, "newer")
    assert "failed to initialise" in _error(reg, "raises") and "no licence" in _error(reg, "raises")
    assert "device discovery failed" in _error(reg, "failing") and "driver not found" in _error(reg, "failing")
    assert list(reg.backends) == ["fake"] and reg.device_count("fake") == 2


def test_missing_or_malformed_api_version() -> None:
    with pytest.raises(hal.PluginError, match="api_version"):
        check_api_version("x", None)
    with pytest.raises(hal.PluginError):
        check_api_version("x", "1.0")
    assert check_api_version("x", (hal.API_VERSION[0], 0)) == (hal.API_VERSION[0], 0)


def test_disabled_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAL_PLUGINS_DISABLED", "off, fake")
    reg = _load(("off", _plugin()), ("on", _plugin()))
    assert [(r.name, r.plugin, r.status) for r in reg.rows] == [("off", "off", "disabled"), ("fake", "on", "disabled")]
    assert not reg.backends


def test_discovery_order_is_bundled_first_then_by_distribution(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    _dist(first, "zeta_plugins-1.0", "[hal]\nzb = zeta.b\nza = zeta.a:plugin\n")
    _dist(first, "acme-2.0", "[hal]\nacme = acme_hal\n\n[console_scripts]\nacme = acme_hal:main\n")
    _dist(second, "hal_sdk-0.1.0", "[hal]\nsimgpu = hal_simgpu\ncpu = hal_cpu\n")
    _dist(second, "acme-1.0", "[hal]\nold = old_acme\n")  # shadowed by acme-2.0, earlier on the path

    found = entry_points("hal", [str(first), str(second)])
    assert [(e.distribution, e.name, e.target) for e in found] == [
        ("hal-sdk", "simgpu", "hal_simgpu"), ("hal-sdk", "cpu", "hal_cpu"),  # as hal-sdk declares them
        ("acme", "acme", "acme_hal"), ("zeta-plugins", "za", "zeta.a:plugin"), ("zeta-plugins", "zb", "zeta.b")]
    assert found[0].origin == f"bundled with {BUNDLED}" and found[2].origin == "from distribution acme"
    # the path decides only which copy of a distribution is used, never the order
    assert [e.name for e in entry_points("hal", [str(second), str(first)])] == ["simgpu", "cpu", "old", "za", "zb"]


def test_a_plugin_cannot_take_the_name_of_a_bundled_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The regression: a distribution found first on sys.path (or sorting first) used to hide the bundled
    backend of the same name; now the bundled one is used and the other is an error row naming both."""
    site = tmp_path / "site"
    _dist(site, "aaa_clone-1.0", "[hal]\nclone = hal_tests_clone_plugin\n")
    _dist(site, "hal_sdk-0.1.0", "[hal]\nbundled = hal_tests_bundled_plugin\n")
    for module in ("hal_tests_clone_plugin", "hal_tests_bundled_plugin"):
        (site / f"{module}.py").write_text(PLUGIN_SOURCE)
    monkeypatch.syspath_prepend(str(site))
    reg = Registry(lambda: entry_points("hal", [str(site)]))
    reg.ensure_loaded()

    assert type(reg.backends["dup"]).__module__ == "hal_tests_bundled_plugin"
    assert reg.status("dup") == hal.BackendStatus("dup", "bundled", "0", (1, 0), "loaded", None, 1)
    error = _error(reg, "dup")
    assert "plugin 'clone' (from distribution aaa-clone)" in error
    assert "already registered by plugin 'bundled' (bundled with hal-sdk)" in error
    assert "rename the backend of plugin 'clone'" in error


def test_the_first_registration_of_a_backend_name_wins() -> None:
    first, second = FakeBackend(count=1), FakeBackend(count=3)
    reg = _load(("one", _plugin(lambda: [first])), ("two", _plugin(lambda: [second])))
    assert reg.backends["fake"] is first and reg.device_count("fake") == 1
    loaded, duplicate = reg.rows
    assert loaded.ok and loaded.plugin == "one" and reg.status("fake") is loaded
    assert duplicate.name == "fake" and duplicate.status == "error" and duplicate.plugin == "two"
    assert "already registered by plugin 'one' (registered in-process)" in _error(reg, "fake")


def test_a_second_plugin_of_a_name_is_an_error_row(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "hal_tests_same", _plugin(lambda: [_Counted(1)]))
    reg = _load(("same", _plugin()), discovered=(EntryPoint("same", "hal_tests_same", "acme"),))
    assert list(reg.backends) == ["counted"]
    assert "plugin 'same' (registered in-process) has the name of plugin 'same' (from distribution acme)" \
        in _error(reg, "same")


@pytest.mark.parametrize("returned", [["cpu"], FakeBackend, FakeBackend(), None, [FakeBackend(), object()]],
                         ids=["str", "class", "instance", "none", "one-bad"])
def test_the_hook_must_return_a_list_of_backends(returned: Any) -> None:
    reg = _load(("bad", _plugin(lambda: returned)), ("good", _plugin(lambda: [_Counted(1)])))
    error = _error(reg, "bad")
    assert "failed to initialise: hal_backends() returned" in error and "hal.backend.Backend" in error
    assert list(reg.backends) == ["counted"]  # none of the bad plugin's backends, even the good one
    assert reg.manager.get_plugin("bad") is None  # and none of its hooks runs later


@pytest.mark.parametrize("count", ["2", -1, True, 2.0, None])
def test_device_count_must_be_an_int_of_at_least_zero(count: Any) -> None:
    reg = _load(("p", _plugin(lambda: [_Counted(count)])))
    assert f"device_count() returned {count!r} ({type(count).__name__})" in _error(reg, "counted")
    assert "int >= 0" in _error(reg, "counted") and not reg.backends


def test_zero_devices_is_fine() -> None:
    reg = _load(("p", _plugin(lambda: [_Counted(0)])))
    assert reg.status("counted").ok and reg.device_count("counted") == 0  # type: ignore[union-attr]


@pytest.mark.parametrize("name", ["", "a:b", "a,b", "a b", 3])
def test_backend_names_must_be_usable_in_device_specs(name: Any) -> None:
    backend = _Counted(1)
    backend.name = name  # type: ignore[misc]
    reg = _load(("p", _plugin(lambda: [backend])))
    assert f"has the name {name!r}" in _error(reg, "p") and not reg.backends


class _Fatal(BaseException):
    pass


def test_base_exceptions_from_plugins_become_error_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "hal_tests_exits_at_import.py").write_text("import sys\n\nsys.exit('no licence')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = _load(("hookexits", _plugin(_raise(SystemExit(3)))),
                ("fatal", _plugin(_raise(_Fatal("vendor bug")))),
                ("countexits", _plugin(lambda: [_Failing(SystemExit(4))])),
                ("good", _plugin()),
                discovered=(EntryPoint("exits", "hal_tests_exits_at_import", "acme"),))
    assert "failed to import: SystemExit: no licence" in _error(reg, "exits")
    assert "hal_tests_exits_at_import.py:3" in _error(reg, "exits") and "sys.exit()" in _error(reg, "exits")
    assert "failed to initialise: SystemExit: 3" in _error(reg, "hookexits")
    assert "_Fatal: vendor bug" in _error(reg, "fatal")
    assert "device discovery failed: SystemExit: 4" in _error(reg, "failing")
    assert list(reg.backends) == ["fake"]


def test_keyboard_interrupt_propagates_and_discovery_starts_afresh() -> None:
    calls: list[int] = []

    def interrupted_once() -> list[Any]:
        calls.append(1)
        if len(calls) == 1:
            raise KeyboardInterrupt
        return [_Counted(1)]

    reg = Registry(lambda: ())
    reg.register(_plugin(), "good")
    reg.register(_plugin(interrupted_once), "slow")
    with pytest.raises(KeyboardInterrupt):
        reg.ensure_loaded()
    assert not reg.rows and not reg.backends  # not half-loaded
    reg.ensure_loaded()
    assert [(r.name, r.status) for r in reg.rows] == [("fake", "loaded"), ("counted", "loaded")]


def test_looking_up_devices_during_discovery_is_an_error_row_not_a_deadlock() -> None:
    reg = Registry(lambda: ())
    reg.register(_plugin(lambda: reg.ensure_loaded()), "eager")
    reg.register(_plugin(), "good")
    reg.ensure_loaded()
    assert "while it was being discovered" in _error(reg, "eager") and list(reg.backends) == ["fake"]


def test_hal_ops_hooks_run_once_and_their_failures_are_rows() -> None:
    calls: list[int] = []

    def ops() -> list[Any]:
        calls.append(1)
        return ["native gemm"]

    reg = _load(("fast", _plugin(ops=ops)), ("raises", _plugin(lambda: [], ops=_raise(SystemExit(1)))),
                ("notlist", _plugin(lambda: [], ops=lambda: "gemm")))
    assert reg.ops_impls() == ["native gemm"] and reg.ops_impls() == ["native gemm"] and len(calls) == 1
    assert "hal_ops hook failed: SystemExit: 1" in _error(reg, "raises")
    assert "hal_ops() returned 'gemm' (str), not a list" in _error(reg, "notlist")
    assert reg.status("fake").ok  # type: ignore[union-attr]


@pytest.mark.parametrize(("exc", "error"), [(RuntimeError("firmware not loaded"), hal.PluginError),
                                            (SystemExit(2), hal.PluginError),
                                            (IndexError("no device 1"), hal.DeviceNotFoundError)])
def test_open_device_failures_name_the_backend_and_the_device(exc: BaseException, error: type[Exception]) -> None:
    with pytest.raises(error, match=r"backend 'failing' could not open device failing:1: ") as info:
        open_device(_Failing(exc), 1, None, "failing:1")
    assert info.value.__cause__ is exc


def test_open_device_passes_hal_errors_and_interrupts_through() -> None:
    oom = hal.OutOfMemoryError("the device's memory is full")
    with pytest.raises(hal.OutOfMemoryError) as info:
        open_device(_Failing(oom), 0, None, "failing:0")
    assert info.value is oom
    with pytest.raises(KeyboardInterrupt):
        open_device(_Failing(KeyboardInterrupt()), 0, None, "failing:0")


def test_a_device_that_cannot_be_opened_raises_a_plugin_error(monkeypatch: pytest.MonkeyPatch) -> None:
    reg = _load(("broken", _plugin(lambda: [_Counting(RuntimeError("firmware not loaded"))])), ("good", _plugin()))
    monkeypatch.setattr(_lookup, "registry", reg)
    monkeypatch.setattr(_lookup, "_devices", {})
    assert [d.spec for d in hal.devices()] == ["failing:0", "fake:0", "fake:1"]  # listing opens nothing
    with pytest.raises(hal.PluginError, match="backend 'failing' could not open device failing:0: RuntimeError"):
        hal.device("failing").info  # noqa: B018
    assert hal.device("fake:1").info.name == "Fake device 1"

