"""Pin every direct dependency to the lowest version ``pyproject.toml`` allows: a pip constraints file.

    python tools/lowest_constraints.py OUT [EXTRA ...]     # e.g. OUT=lowest.txt conformance

``tox -e lowest`` installs hal with it and runs a fast subset of the tests, so a lower bound that is
not true (code using a newer API, a result that changed between releases) fails CI instead of a user.
Every dependency of ``[project].dependencies`` and of the named extras must have a ``>=`` bound;
references to hal-sdk's own extras are followed. Markers (``; python_version < ...``) are kept.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    raise SystemExit("tools/lowest_constraints.py needs Python 3.11 or newer (tomllib)") from None

_REQ = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*([^;]*?)\s*(;.*)?$")


def lowest(pyproject: Path, extras: list[str]) -> list[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    name, optional = project["name"], project.get("optional-dependencies", {})
    todo, seen, pins = list(project["dependencies"]), set(), {}
    for extra in extras:
        if extra not in optional:
            raise SystemExit(f"pyproject.toml has no extra {extra!r} (it has {', '.join(optional)})")
        todo += optional[extra]
    while todo:
        req = todo.pop(0)
        m = _REQ.match(req)
        if m is None:
            raise SystemExit(f"cannot read the requirement {req!r}")
        dist, inner, spec, marker = m.group(1), m.group(2), m.group(3), m.group(4) or ""
        if dist.lower().replace("_", "-") == name:
            for extra in (inner or "[]")[1:-1].split(","):
                if extra.strip() and extra.strip() not in seen:
                    seen.add(extra.strip())
                    todo += optional[extra.strip()]
            continue
        low = re.search(r">=\s*([^,\s]+)", spec)
        if low is None:
            raise SystemExit(f"{req!r} has no lower bound: give it one (>=) so that its lowest version is tested")
        pins[dist] = f"{dist}=={low.group(1)}{' ' + marker if marker else ''}"
    return list(pins.values())


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    root = Path(__file__).resolve().parent.parent
    lines = lowest(root / "pyproject.toml", sys.argv[2:])
    Path(sys.argv[1]).write_text("".join(line + "\n" for line in lines))
    print("lowest versions:", ", ".join(line.split(" ;")[0] for line in lines))
