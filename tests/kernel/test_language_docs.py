"""docs/kernel-language.md is checked against the code, so the reference cannot drift.

* its builtin tables list exactly the intrinsics of ``hal.kernel.builtins``;
* its type table gives every ``ScalarType`` with the numpy dtype, C type and computing type the code
  says, the feature a kernel using it needs (``required_features``) and the feature its arrays need
  (``FEATURE_DTYPES``, what ``dtypes_for`` adds);
* its construct -> feature table matches ``required_features``;
* every ``hal.`` name it mentions exists;
* every ```python example runs on the CPU device (an example whose first line is
  ``# compile error: TEXT`` must fail to compile with TEXT in the message).
"""

from __future__ import annotations

import contextlib
import importlib
import math
import re
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import hal
from hal._features import feature_of_dtype
from hal.kernel import builtins
from hal.kernel.analysis import required_features
from hal.kernel.function import KernelFunction
from hal.kernel.types import ScalarType

DOC = Path(__file__).resolve().parents[2] / "docs" / "kernel-language.md"
TEXT = DOC.read_text()
NONE = "—"


def _section(marker: str) -> str:
    return TEXT.split(f"<!-- {marker} -->\n", 1)[1].split(f"<!-- /{marker} -->", 1)[0]


def _rows(text: str) -> list[list[str]]:
    """The body rows of every markdown table in ``text``, as stripped cells."""
    rows = []
    for line in text.splitlines():
        if not line.startswith("|") or set(line) <= set("|-: "):
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        rows.append(cells)
    return [r for r in rows if r[0] not in ("builtin", "type", "construct")]


def _code(cell: str) -> str:
    """The text of the first `code` span of a cell."""
    found = re.search(r"`([^`]+)`", cell)
    assert found, f"no `code` in table cell {cell!r}"
    return found.group(1)


def _features(cell: str) -> set[str]:
    return set() if cell == NONE else set(re.findall(r"`([a-z0-9_]+)`", cell))


def _compile(body: str, params: str = "p: hal.Ptr[hal.i32]") -> Any:
    kernel = hal.kernel.from_source(f"def k({params}):\n    {body}\n", globals={"hal": hal})
    return kernel.ir


# --------------------------------------------------------------------------- builtins
def test_the_builtin_tables_list_exactly_the_builtins() -> None:
    names = [n for n in builtins.__all__ if isinstance(getattr(builtins, n), builtins.Builtin)]
    assert set(builtins.__all__) - set(names) == {"Builtin"}, "a new non-intrinsic name in builtins.__all__"
    documented = [_code(row[0]) for row in _rows(_section("builtins"))]
    called = [re.fullmatch(r"hal\.(\w+)\(.*\)", d) for d in documented]
    assert all(called), f"builtin cells must read `hal.name(args)`: {documented}"
    doc_names = [m.group(1) for m in called if m]
    assert sorted(doc_names) == sorted(set(doc_names)), "a builtin is documented twice"
    assert set(names) - set(doc_names) == set(), "builtins missing from docs/kernel-language.md"
    assert set(doc_names) - set(names) == set(), "docs/kernel-language.md documents builtins that do not exist"
    assert all(row[1] for row in _rows(_section("builtins"))), "every builtin needs a meaning"


# ------------------------------------------------------------------------------ types
def _hal_name(t: ScalarType) -> str:
    return next(name for name in ("bool_", t.value) if getattr(hal, name, None) is t)


def test_the_type_table_is_the_code_s() -> None:
    rows = {_code(r[0]): r for r in _rows(_section("types"))}
    assert sorted(rows) == sorted(f"hal.{_hal_name(t)}" for t in ScalarType), "the type table's rows"
    for t in ScalarType:
        _, dtype, c_name, computes, _, _ = rows[f"hal.{_hal_name(t)}"]
        assert _code(dtype) == t.np_dtype.name, t
        assert _code(c_name) == t.c_name, t
        assert _code(computes) == t.promoted.value, t


@pytest.mark.parametrize("t", list(ScalarType), ids=str)
def test_the_type_table_names_the_features_the_code_requires(t: ScalarType) -> None:
    row = next(r for r in _rows(_section("types")) if _code(r[0]) == f"hal.{_hal_name(t)}")
    kernel = _compile("pass", f"p: hal.Ptr[hal.{_hal_name(t)}]")
    needed = {f.value for f in required_features(kernel)} - {"kernels"}
    assert _features(row[4]) == needed, f"{t}: a kernel using it needs {needed or NONE}"
    array = feature_of_dtype(t.np_dtype.name)
    assert _features(row[5]) == ({array.value} if array else set()), f"{t}: its arrays need {array or NONE}"


def test_the_construct_table_names_the_features_the_code_requires() -> None:
    rows = _rows(_section("features"))
    assert rows
    for construct, feature in rows:
        code = _code(construct)
        body = code if code == "hal.barrier()" else f"x = {code}"
        needed = {f.value for f in required_features(_compile(body))} - {"kernels"}
        assert needed == _features(feature), f"{code} needs {needed}"


# ------------------------------------------------------------------------------ names
def test_every_hal_name_in_the_page_exists() -> None:
    for dotted, star in sorted(set(re.findall(r"(?<![\w/.])(hal(?:\.\w+)+)(\*?)", TEXT))):
        obj: Any = hal
        *parents, last = dotted.split(".")[1:]
        for part in parents:  # a submodule (hal.kernel.accuracy) may not be imported yet
            obj = getattr(obj, part, None) or importlib.import_module(f"{obj.__name__}.{part}")
        if star == "" and not hasattr(obj, last) and isinstance(obj, types.ModuleType):
            with contextlib.suppress(ImportError):
                importlib.import_module(f"{obj.__name__}.{last}")
        exists = any(n.startswith(last) for n in dir(obj)) if star else hasattr(obj, last)
        assert exists, f"docs/kernel-language.md mentions {dotted}{star}, which does not exist"


def test_every_feature_named_in_backticks_exists() -> None:
    for cell in _rows(_section("types")) + _rows(_section("features")):
        for name in _features(cell[-1]) | (_features(cell[-2]) if len(cell) == 6 else set()):
            hal.Feature(name)


# ---------------------------------------------------------------------------- examples
def _examples() -> list[tuple[int, str]]:
    blocks = []
    for match in re.finditer(r"^```python\n(.*?)^```", TEXT, re.S | re.M):
        blocks.append((TEXT.count("\n", 0, match.start()) + 2, match.group(1)))
    return blocks


@pytest.mark.parametrize("line,code", _examples(), ids=[f"line{n}" for n, _ in _examples()])
def test_every_example_runs(line: int, code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAL_DEVICE", "cpu")
    path = tmp_path / f"kernel_language_md_line{line}.py"
    path.write_text(code)
    namespace: dict[str, Any] = {"__name__": path.stem, "__file__": str(path), "hal": hal, "np": np, "math": math}
    expected = re.match(r"# compile error: (.+)\n", code)
    exec(compile(code, str(path), "exec"), namespace)  # noqa: S102 - the page's own examples, from a real file
    kernels = [v for v in namespace.values() if isinstance(v, KernelFunction)]
    assert kernels, f"the example at line {line} defines no kernel"
    if expected:
        for kernel in kernels:
            with pytest.raises(hal.CompileError, match=re.escape(expected.group(1))):
                _ = kernel.ir
        return
    for kernel in kernels:
        if kernel.specializer is None:
            _ = kernel.ir  # compiles, whether the example launches it or not
        else:
            assert kernel.specializer._by_binding, f"the generic kernel {kernel.name} at line {line} is never launched"
    hal.device("cpu").synchronize()
