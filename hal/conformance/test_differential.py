"""Differential tests: generated kernels on the device under test against the reference interpreter.

Hypothesis draws whole kernels as source text (``_generate.py``: random types,
expressions, casts, selects, if/elif/else, ``for``/``while`` loops with
``break``/``continue``, shared memory with barriers, atomics), runs each on the
device and on :func:`hal.kernel.interpreter.run` with the same arguments, and
compares every output buffer:

* integers (and bools stored as integers) must be equal;
* floats computed with ``+ - * / // %``, comparisons, casts, ``sqrt``, ``abs``,
  ``min``, ``max``, ``floor``, ``ceil`` and ``fma`` must be bit-identical (NaNs
  match any NaN): the IR fixes IEEE round-to-nearest with no contraction, so a
  backend must compile with FP contraction and fast-math off;
* ``approx_*`` outputs hold one transcendental call (exp, log, sin, cos, tanh,
  pow, erf, tan, atan2, ... see ``_generate.py``) of an exactly computed argument
  on a domain where libms are accurate:
  they may differ by at most ``ULP_TOLERANCE`` (4) units in the last place,
  since the C library and numpy each round within about 2 ulp.

A failure shows the smallest program hypothesis found, as a script that runs on
its own: ``python repro.py <device>`` prints the outputs that differ.

Examples per test: 25, or ``--hal-examples N`` / ``HAL_CONFORMANCE_EXAMPLES=N``;
generation is derandomised, so every run (and CI) draws the same programs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ._generate import BF16, F16, F32, F64, I8, I16, I32, I64, U8, U16, U32, U64, Program, programs

pytestmark = pytest.mark.feature("kernels")
DEFAULT_EXAMPLES = 25
BASE_TYPES = (I32, U32, F32)


def _examples(config: pytest.Config) -> int:
    return int(config.getoption("--hal-examples") or os.environ.get("HAL_CONFORMANCE_EXAMPLES") or DEFAULT_EXAMPLES)


def _check(device: Any, request: pytest.FixtureRequest, strategy: st.SearchStrategy[Program], tmp: Path) -> None:
    @settings(max_examples=_examples(request.config), deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(strategy)
    def agrees_with_interpreter(program: Program) -> None:
        kernel = program.load(tmp)
        try:
            want = program.reference(kernel)
        except Exception as exc:  # the generator made a program outside the language: our bug
            raise AssertionError(f"generated program rejected by the reference interpreter "
                                 f"({type(exc).__name__}: {exc}):\n{program.source}") from exc
        try:
            got = program.run(kernel, device)
        except Exception as exc:
            raise AssertionError(f"{device.info.name} failed on a program the reference interpreter runs "
                                 f"({type(exc).__name__}: {exc}). Reproducer:\n\n{program.source}") from exc
        bad = program.mismatches(got, want)
        assert not bad, (f"{device.info.name} differs from the reference interpreter:\n  " + "\n  ".join(bad)
                         + f"\nReproducer (python repro.py {device.spec}):\n\n{program.source}")

    agrees_with_interpreter()


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where generated modules live: the frontend reads kernels from real files."""
    return tmp_path_factory.mktemp("hal_differential")


def test_scalar_programs(device: Any, request: pytest.FixtureRequest, sources: Path) -> None:
    _check(device, request, programs("scalar", BASE_TYPES), sources)


@pytest.mark.feature("i64")
@pytest.mark.feature("f64")
def test_scalar_programs_64bit(device: Any, request: pytest.FixtureRequest, sources: Path) -> None:
    _check(device, request, programs("scalar", (I32, U32, I64, U64, F32, F64)), sources)


@pytest.mark.feature("f16")
@pytest.mark.feature("bf16")
@pytest.mark.feature("small_ints")
def test_scalar_programs_narrow_types(device: Any, request: pytest.FixtureRequest, sources: Path) -> None:
    _check(device, request, programs("scalar", (I32, U32, F32, F16, BF16, I8, U8, I16, U16)), sources)


@pytest.mark.feature("shared_memory")
@pytest.mark.feature("barriers")
def test_shared_memory_programs(device: Any, request: pytest.FixtureRequest, sources: Path) -> None:
    _check(device, request, programs("shared", BASE_TYPES), sources)


@pytest.mark.feature("atomics")
def test_atomic_programs(device: Any, request: pytest.FixtureRequest, sources: Path) -> None:
    shared = device.supports("shared_memory") and device.supports("barriers")
    _check(device, request, programs("atomic", BASE_TYPES, shared_atomics=shared), sources)
