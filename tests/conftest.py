"""Shared fixtures: a fake in-process backend registered once for the whole run."""

from __future__ import annotations

import pytest

import hal

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
