"""Shared fixtures: a fake in-process backend registered once for the whole run."""

from __future__ import annotations

import pytest

import hal

from . import background
from .core.fakes import FakeBackend, register_backend

register_backend(FakeBackend, "fake")


@pytest.fixture
def fake() -> hal.Device:
    """Device fake:0: host-visible, 1 MiB."""
    return hal.device("fake:0")


@pytest.fixture
def fake_remote() -> hal.Device:
    """Device fake:1: not host-visible, 1 MiB."""
    return hal.device("fake:1")


def _waits_for_background(item: pytest.Item) -> bool:
    return getattr(getattr(item, "module", None), "start_in_background", None) is not None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The tests that wait for a background run go last, so their runs overlap everything else."""
    items.sort(key=_waits_for_background)  # stable: the order within each part is kept


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the selected tests' long subprocess runs now, to run beside the rest (tests/background.py)."""
    if session.config.option.collectonly:
        return
    for item in session.items:
        start = getattr(getattr(item, "module", None), "start_in_background", None)
        if start is not None:
            start(item.originalname if isinstance(item, pytest.Function) else item.name)


def pytest_sessionfinish(session: pytest.Session) -> None:
    background.stop_all()
