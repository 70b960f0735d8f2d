"""Fixtures of the CPU backend's tests: test kernels built with gcc once per session."""

from __future__ import annotations

import shutil
from typing import Any

import pytest

from .testkernels import build_kernels


@pytest.fixture(scope="session")
def kernels(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The test kernels (see testkernels.KERNELS_C) as an ABI-mode cffi library."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to build the test kernels")
    return build_kernels(tmp_path_factory.mktemp("kernels"))
