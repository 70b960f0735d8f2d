"""The script a differential failure prints runs on its own and compares bits, as the suite does:
a -0.0 where the reference has 0.0 is reported (``np.array_equal`` would have hidden it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings

from hal.conformance._generate import F32, I32, U32, Program, programs

LAUNCH = "    gen[GRID, BLOCK, dev.default_queue](*got)"


def _program_with_a_float_output() -> Program:
    drawn: list[Program] = []

    @settings(max_examples=20, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
    @given(programs("scalar", (I32, U32, F32)))
    def collect(program: Program) -> None:
        drawn.append(program)

    collect()
    return next(p for p in drawn if any(a.name.startswith("out_") and a.type == F32 for a in p.args))


def _run(script: str, tmp_path: Path) -> str:
    path = tmp_path / "repro.py"
    path.write_text(script)
    return subprocess.run([sys.executable, str(path), "cpu"], capture_output=True, text=True, check=True).stdout


def test_the_reproducer_is_silent_when_the_device_agrees(tmp_path: Path) -> None:
    assert _run(_program_with_a_float_output().source, tmp_path) == ""


def test_the_reproducer_reports_a_zero_of_the_other_sign(tmp_path: Path) -> None:
    program = _program_with_a_float_output()
    out = next(i for i, a in enumerate(program.args) if a.name.startswith("out_") and a.type == F32)
    assert LAUNCH in program.source
    planted = (f"{LAUNCH}\n    got[{out}] = dev.array(np.zeros_like(want[{out}]))\n"
               f"    want[{out}][:] = 0.0\n    want[{out}][0] = -0.0")
    assert _run(program.source.replace(LAUNCH, planted), tmp_path) == f"{program.args[out].name}[0]: device 0.0, reference -0.0\n"
