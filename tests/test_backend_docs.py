"""docs/writing-a-backend.md is the vendor contract: its tables list every member of every class of
hal.backend (required exactly when abstract), with the counts its text states; its code parses."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

import hal.backend as vendor

DOC = (Path(__file__).resolve().parents[1] / "docs" / "writing-a-backend.md").read_text()
CLASSES = ("Backend", "DeviceImpl", "Buffer", "QueueImpl", "EventImpl", "Executable")


def table(cls: str) -> dict[str, str]:
    """member -> its "required" cell, from the table under ``### `cls...```."""
    section = re.search(rf"^### `{cls}\b.*?\n(.*?)(?=^#)", DOC, re.S | re.M)
    assert section, f"no section for {cls}"
    rows = re.findall(r"^\| `(\w+)` \| ([^|]+) \|", section.group(1), re.M)
    return {name: required.strip() for name, required in rows}


def members(cls: type) -> dict[str, bool]:
    """Public methods and attributes the class defines or declares -> abstract."""
    names = {n for klass in cls.__mro__ if klass.__module__.startswith("hal.backend")
             for n in [*vars(klass), *getattr(klass, "__annotations__", {})] if not n.startswith("_")}
    return {n: n in cls.__abstractmethods__ for n in names}


@pytest.mark.parametrize("name", CLASSES)
def test_every_member_is_documented_with_its_status(name: str) -> None:
    cls = getattr(vendor, name)
    documented = table(name)
    assert set(documented) >= set(members(cls)) - {"Options"}, f"undocumented: {set(members(cls)) - set(documented)}"
    for member, abstract in members(cls).items():
        if abstract:
            assert documented[member] == "yes", f"{name}.{member} is abstract: the table must say it is required"
        elif member in documented and inspect.isfunction(getattr(cls, member, None)):
            assert documented[member] != "yes", f"{name}.{member} has a default: the table must not require it"


def test_the_stated_counts_match_the_classes() -> None:
    classes = [getattr(vendor, n) for n in CLASSES]
    methods = [(c, m) for c in classes for m, v in vars(c).items() if inspect.isfunction(v) and not m.startswith("_")]
    required = sum(m in c.__abstractmethods__ for c, m in methods)
    assert f"{required} required methods, {len(methods) - required} optional ones" in DOC


def test_the_python_examples_parse() -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC, re.S)
    assert blocks
    for block in blocks:
        ast.parse(block)
