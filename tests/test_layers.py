"""Imports only point down (docs/writing-a-backend.md, DESIGN.md "Layers"): checked on the source's AST.

A plugin (bundled, the vendor templates) imports hal only through ``hal.backend`` and hal's other
public names, never a private ``hal._*`` module; the kernel language and the portable operators never
import the ``hal`` front door; the core never imports the demo, and ``hal backends`` loads none of it.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = sorted([*ROOT.glob("plugins/*/"), *(p for p in ROOT.glob("examples/*/") if (p / "pyproject.toml").exists())])


def imports(path: Path) -> Iterator[tuple[int, str, list[str]]]:
    """(line, absolute module, names) of every import in ``path``; relative imports resolved."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            module = f"{base}.{node.module}" if node.level and node.module else base if node.level else node.module
            yield node.lineno, module or "", [a.name for a in node.names]


def private(module: str, names: list[str]) -> str | None:
    """The private hal module an import reaches, if any."""
    parts = module.split(".")
    if parts[0] == "hal" and any(p.startswith("_") for p in parts[1:]):
        return module
    if module == "hal" or parts[0] == "hal":
        hidden = [n for n in names if n.startswith("_")]
        return f"{module}.{hidden[0]}" if hidden else None
    return None


@pytest.mark.parametrize("plugin", PLUGINS, ids=lambda p: p.name)
def test_plugins_import_no_private_hal_module(plugin: Path) -> None:
    found = [f"{path.relative_to(ROOT)}:{line}: {hit}" for path in sorted(plugin.rglob("*.py"))
             for line, module, names in imports(path) if (hit := private(module, names))]
    assert not found, "plugins import hal only through hal.backend and hal's public names:\n" + "\n".join(found)


@pytest.mark.parametrize("package", ["hal/kernel", "hal/ops/_portable"])
def test_the_kernel_language_does_not_import_the_front_door(package: str) -> None:
    found = [f"{path.relative_to(ROOT)}:{line}: {module}" for path in sorted((ROOT / package).rglob("*.py"))
             for line, module, names in imports(path) if module == "hal"]
    assert not found, "import hal.kernel (or the module you need), not the hal front door:\n" + "\n".join(found)


def test_the_core_does_not_import_the_demo() -> None:
    found = [f"{path.relative_to(ROOT)}:{line}: {module}" for path in sorted((ROOT / "hal").glob("*.py"))
             for line, module, _ in imports(path) if module.startswith("hal.demo")]
    assert not found, "the demo adds its commands through the hal.commands entry points:\n" + "\n".join(found)


def test_hal_backends_loads_no_demo_module() -> None:
    code = ("import sys; from hal._cli import main; main(['backends']); "
            "print(sorted(m for m in sys.modules if m.startswith('hal.demo')))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[-1] == "[]"
