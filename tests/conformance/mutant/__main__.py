"""Run the unchanged conformance suite against the reference backend: with no bug (every test, both
devices), then once per planted bug (its selection, stopping at the first failure), all in this one
process so that hal, pytest and the interpreted kernels load once. Every installed plugin is
disabled: the runs see the reference backend only.

One JSON object per run goes to ``--json`` (a line each): ``{"bug", "exit", "failed": [{"test",
"device", "message"}], "seconds", "output"}``; ``output`` is the end of the suite's output. The exit
status is 0 when the clean run passed and every bug failed the suite.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import os
import sys
import tempfile
import time
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

import hal
from hal._cli import conformance_argv

from .bugs import BUGS, ENV
from .plugin import register

OUTPUT_CHARS = 4000


def run_suite(bug: str, extra: list[str], *, verbose: bool) -> dict[str, Any]:
    """The suite on the reference backend with ``HAL_MUTANT=bug`` ("" for none)."""
    os.environ[ENV] = bug
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        shown = io.StringIO()
        begin = time.perf_counter()
        with contextlib.nullcontext() if verbose else contextlib.redirect_stdout(shown):
            code = pytest.main(conformance_argv("mutant", extra, json_path=str(report)))
        seconds = time.perf_counter() - begin
        tests = json.loads(report.read_text())["tests"] if report.exists() else []
    _clean_up()
    failed = [{k: t[k] for k in ("test", "device", "message")} for t in tests if t["outcome"] == "failed"]
    return {"bug": bug, "exit": int(code), "failed": failed, "seconds": round(seconds, 2),
            "output": shown.getvalue()[-OUTPUT_CHARS:]}


def _clean_up() -> None:
    """Leave the devices as a fresh process would: with the bug off, what the last run kept alive (pytest
    keeps a failure's traceback, and so its arrays, in ``sys.last_traceback``) is collected, every queue
    drained and the pool emptied."""
    os.environ[ENV] = ""
    for name in ("last_type", "last_value", "last_traceback", "last_exc"):
        if hasattr(sys, name):
            delattr(sys, name)
    gc.collect()
    for device in hal.devices():
        device.synchronize()
        device.release_cache()
    gc.freeze()  # what is left lives on: the suite's gc.collect() calls need not walk it again


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.conformance.mutant", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bugs", nargs="*", metavar="BUG", help=f"only these bugs, no clean run ({', '.join(BUGS)})")
    parser.add_argument("--json", metavar="FILE", help="write one JSON line per run")
    parser.add_argument("-v", "--verbose", action="store_true", help="show the suite's output")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.bugs) - set(BUGS))
    if unknown:
        parser.error(f"unknown bug(s) {', '.join(unknown)}; known: {', '.join(BUGS)}")
    os.environ["HAL_PLUGINS_DISABLED"] = ",".join(sorted({ep.name for ep in entry_points(group="hal")}))
    register()
    _clean_up()
    # The clean run is the whole suite on both devices. Its differential tests compare hal's interpreter
    # (which runs this backend's kernels) with itself, so a few examples of each do.
    runs: list[tuple[str, list[str]]] = [] if args.bugs else [("", ["--hal-examples=5"])]
    runs += [(name, [f"--hal-device={BUGS[name].device}", "-x", "-k", BUGS[name].select])
             for name in args.bugs or BUGS]
    ok = True
    with open(args.json, "w") if args.json else contextlib.nullcontext() as out:
        for bug, extra in runs:
            result = run_suite(bug, extra, verbose=args.verbose)
            expected = 1 if bug else 0  # pytest's "tests failed" and "all passed"
            ok &= result["exit"] == expected and bool(result["failed"]) == bool(bug)
            caught = ", ".join(f["test"] for f in result["failed"]) or "-"
            print(f"{bug or '(no bug)':18} exit {result['exit']}  {result['seconds']:6.2f} s  failed: {caught}",
                  file=sys.stderr)
            if out is not None:
                out.write(json.dumps(result) + "\n")
                out.flush()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
