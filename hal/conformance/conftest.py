"""Device selection, feature skips and known-failure xfails for the conformance suite."""

from __future__ import annotations

import fnmatch
import os
from typing import Any

import pytest

from .plugin import _features_of

ENV_RUN_KNOWN = "HAL_CONFORMANCE_RUN_KNOWN_FAILURES"


def _devices(config: pytest.Config) -> list[str]:
    import hal

    one = config.getoption("--hal-device")
    if one:
        return [one]
    wanted = config.getoption("--hal-backend") or os.environ.get("HAL_DEVICE", "cpu").split(":")[0]
    names = [b.name for b in hal.backends() if b.ok] if wanted == "all" else wanted.split(",")
    specs = []
    for backend in names:
        found = [d.spec for d in hal.devices() if d.backend.name == backend]
        if not found:
            status = {s.name: s for s in hal.backends()}.get(backend)
            why = f": {status.status}, {status.error}" if status else " (not installed)"
            raise pytest.UsageError(f"hal conformance: backend {backend!r} has no usable device{why}")
        specs += found
    return specs


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "device_spec" in metafunc.fixturenames:
        metafunc.parametrize("device_spec", _devices(metafunc.config), scope="session")


@pytest.fixture(scope="session")
def device(device_spec: str) -> Any:
    import hal

    return hal.device(device_spec)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import hal

    run_known = os.environ.get(ENV_RUN_KNOWN, "") not in ("", "0")
    for item in items:
        spec = getattr(item, "callspec", None)
        device_spec = spec.params.get("device_spec") if spec else None
        if device_spec is None:
            continue
        dev = hal.device(device_spec)
        for name in _features_of(item):
            if not dev.supports(name):
                item.add_marker(pytest.mark.skip(reason=f"{dev.info.name} does not declare feature {name!r}"))
                break
        else:
            if run_known:
                continue
            for known in dev.backend.known_failures:
                if _matches(item, known.test) and (known.device is None
                                                   or fnmatch.fnmatch(dev.info.name, known.device)):
                    item.add_marker(pytest.mark.xfail(reason=f"known failure: {known.reason}", strict=True))


def _matches(item: pytest.Item, pattern: str) -> bool:
    nodeid = item.nodeid.split("hal/conformance/")[-1]
    return fnmatch.fnmatch(nodeid, pattern) or fnmatch.fnmatch(item.name, pattern) or \
        fnmatch.fnmatch(nodeid.split("[")[0], pattern)


