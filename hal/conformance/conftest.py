"""The device fixture, feature skips and known-failure xfails of the conformance suite."""

from __future__ import annotations

import fnmatch
import os
from typing import Any

import pytest

from .plugin import device_specs, features_of, suite_id

ENV_RUN_KNOWN = "HAL_CONFORMANCE_RUN_KNOWN_FAILURES"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "device_spec" in metafunc.fixturenames:
        metafunc.parametrize("device_spec", device_specs(metafunc.config), scope="session")


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
        for name in features_of(item):
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
    test = suite_id(item)
    return fnmatch.fnmatch(test, pattern) or fnmatch.fnmatch(item.name, pattern) or \
        fnmatch.fnmatch(test.split("[")[0], pattern)


