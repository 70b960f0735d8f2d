"""tools/lowest_constraints.py: the constraints ``tox -e lowest`` installs pin every declared lower bound."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _tool() -> Any:
    spec = importlib.util.spec_from_file_location("lowest_constraints", ROOT / "tools" / "lowest_constraints.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(sys.version_info < (3, 11), reason="the tool reads pyproject.toml with tomllib")
def test_every_dependency_is_pinned_to_its_lower_bound(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "hal-sdk"\ndependencies = ["numpy>=2.2.5", "ml_dtypes >= 0.4, <1", '
        '"pydantic[email]>=2.5; python_version >= \'3.10\'"]\n'
        '[project.optional-dependencies]\nconformance = ["pytest>=8"]\ntest = ["hal-sdk[conformance]", "tox>=4"]\n')
    pins = _tool().lowest(tmp_path / "pyproject.toml", ["test"])
    assert pins == ["numpy==2.2.5", "ml_dtypes==0.4", "pydantic==2.5 ; python_version >= '3.10'", "tox==4",
                    "pytest==8"]
    # the real file: every core dependency has a lower bound
    real = _tool().lowest(ROOT / "pyproject.toml", ["conformance"])
    assert {p.split("==")[0] for p in real} >= {"numpy", "ml_dtypes", "pydantic", "pluggy", "cffi", "pytest"}


@pytest.mark.skipif(sys.version_info < (3, 11), reason="the tool reads pyproject.toml with tomllib")
def test_a_dependency_without_a_lower_bound_is_refused(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "hal-sdk"\ndependencies = ["numpy"]\n')
    with pytest.raises(SystemExit, match="'numpy' has no lower bound"):
        _tool().lowest(tmp_path / "pyproject.toml", [])
