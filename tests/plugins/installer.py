"""Install a pure-Python project the way a wheel installer does, and run Python with it on the path.

Tests install real distributions (package + ``<name>-<version>.dist-info`` with METADATA,
entry_points.txt and RECORD) without building a wheel, so hal finds them exactly as it
finds a vendor's plugin.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10: pytest brings tomli
    import tomli as tomllib  # type: ignore[no-redef]


def install(project: Path, site: Path) -> None:
    """Install ``project`` (a pyproject.toml and its packages: ``[tool.setuptools] packages``, else the one
    of the distribution's name) into ``site``."""
    config = tomllib.loads((project / "pyproject.toml").read_text())
    meta = config["project"]
    name, version = meta["name"], meta["version"]
    package = name.replace("-", "_")
    packages = config.get("tool", {}).get("setuptools", {}).get("packages", [package])
    for pkg in packages:
        shutil.copytree(project / pkg, site / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    info = site / f"{package}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("\n".join(
        ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}", f"Summary: {meta.get('description', '')}",
         *(f"Requires-Dist: {d}" for d in meta.get("dependencies", ())), ""]))
    (info / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in entries.items()) + "\n"
        for group, entries in meta.get("entry-points", {}).items()))
    (info / "INSTALLER").write_text("hal-tests\n")
    rows = []
    mine = (*packages, info.name)
    for path in sorted(p for p in site.rglob("*") if p.is_file() and p.relative_to(site).parts[0] in mine):
        digest = base64.urlsafe_b64encode(hashlib.sha256(path.read_bytes()).digest()).rstrip(b"=").decode()
        rows.append(f"{path.relative_to(site).as_posix()},sha256={digest},{path.stat().st_size}")
    (info / "RECORD").write_text("\n".join([*rows, f"{info.name}/RECORD,,"]) + "\n")


def run_python(site: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python *args`` with ``site`` first on the path, in a clean hal environment."""
    environ = {k: v for k, v in os.environ.items()
               if k not in ("HAL_PLUGINS_DISABLED", "HAL_DEVICE", "HAL_CONFORMANCE_RUN_KNOWN_FAILURES")}
    environ["PYTHONPATH"] = os.pathsep.join([str(site), *filter(None, [environ.get("PYTHONPATH")])])
    environ.update(env)
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=environ, timeout=300,
                          cwd=site)
