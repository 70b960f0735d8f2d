import types

import pytest

import hal
from hal._plugins import Registry, check_api_version
from hal.hookspecs import hookimpl

from .fakes import FakeBackend


def _plugin(api=hal.API_VERSION, backends=None, error: Exception | None = None) -> types.ModuleType:
    module = types.ModuleType("p")
    module.api_version = api  # type: ignore[attr-defined]

    @hookimpl
    def hal_backends():  # type: ignore[no-untyped-def]
        if error:
            raise error
        return backends if backends is not None else [FakeBackend()]

    module.hal_backends = hal_backends  # type: ignore[attr-defined]
    return module


def _load(*plugins: tuple[str, object]) -> Registry:
    reg = Registry()
    for name, loader in plugins:
        reg._load_one(name, loader)
    return reg


def _boom() -> object:
    raise ImportError("No module named 'vendor_sdk'")


class _BadCount(FakeBackend):
    name = "badcount"

    def device_count(self) -> int:
        raise RuntimeError("driver not found")


def test_good_plugin_loads():
    reg = _load(("good", lambda: _plugin()))
    assert reg.statuses["fake"].ok and reg.statuses["fake"].device_count == 2


def test_failures_are_listed_and_do_not_stop_the_others():
    newer = (hal.API_VERSION[0], hal.API_VERSION[1] + 1)
    reg = _load(("broken", _boom),
                ("oldmajor", lambda: _plugin(api=(hal.API_VERSION[0] + 1, 0))),
                ("newer", lambda: _plugin(api=newer)),
                ("raises", lambda: _plugin(error=RuntimeError("no licence"))),
                ("discovery", lambda: _plugin(backends=[_BadCount()])),
                ("good", lambda: _plugin()))
    s = reg.statuses
    assert s["broken"].status == "error" and "failed to import" in s["broken"].error
    assert "vendor_sdk" in s["broken"].error
    assert "major versions must match" in s["oldmajor"].error
    assert "upgrade hal-sdk" in s["newer"].error and f"{newer[0]}.{newer[1]}" in s["newer"].error
    assert "failed to initialise" in s["raises"].error and "no licence" in s["raises"].error
    assert "device discovery failed" in s["badcount"].error
    assert s["fake"].ok


def test_missing_or_malformed_api_version():
    with pytest.raises(hal.PluginError, match="api_version"):
        check_api_version("x", None)
    with pytest.raises(hal.PluginError):
        check_api_version("x", "1.0")
    assert check_api_version("x", (hal.API_VERSION[0], 0)) == (hal.API_VERSION[0], 0)


def test_disabled_by_environment(monkeypatch):
    monkeypatch.setenv("HAL_PLUGINS_DISABLED", "off, fake")
    reg = _load(("off", lambda: _plugin()), ("on", lambda: _plugin()))
    assert reg.statuses["off"].status == "disabled"
    assert reg.statuses["fake"].status == "disabled"
    assert "fake" not in reg.backends


def test_duplicate_backend_name_is_an_error():
    reg = _load(("one", lambda: _plugin()), ("two", lambda: _plugin()))
    assert reg.statuses["two"].status == "error" and "already registered" in reg.statuses["two"].error
