"""Shared fixtures: a fake in-process backend registered once for the whole run."""

from __future__ import annotations

import types

import pytest

import hal
from hal.hookspecs import hookimpl

from .core.fakes import FakeBackend

_fake_plugin = types.ModuleType("hal_fake_tests")
_fake_plugin.api_version = hal.API_VERSION  # type: ignore[attr-defined]


@hookimpl
def _hal_backends() -> list[FakeBackend]:
    return [FakeBackend()]


_fake_plugin.hal_backends = _hal_backends  # type: ignore[attr-defined]
hal.register_plugin(_fake_plugin, "fake")


@pytest.fixture
def fake() -> hal.Device:
    """Device fake:0: host-visible, 1 MiB."""
    return hal.device("fake:0")


@pytest.fixture
def fake_remote() -> hal.Device:
    """Device fake:1: not host-visible, 1 MiB."""
    return hal.device("fake:1")
