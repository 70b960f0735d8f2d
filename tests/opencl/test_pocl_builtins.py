"""Math on arguments the OpenCL compiler knows: NaN, infinities and huge values, as literals.

PoCL 3.1's builtins (SLEEF's scalar code) convert a NaN, or for ``rint`` anything of at least
2**31 (2**63 in f64), to an integer: undefined behaviour that is harmless at run time, but with a
constant argument LLVM deletes the code that reaches the call, stores included. A generated
(differential) atomics program failed that way on PoCL: ``hal.round(hal.f32(-math.inf))`` in a loop
left the loop's stores out. ``hal.kernel.opencl`` calls one-argument math through guards that keep
those arguments from the builtins; these kernels check every such call against the interpreter.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import hal
from hal.conformance._generate import _agree
from hal.kernel import interpreter

from .test_opencl import needs_device

NAN_ONLY = ("floor", "ceil", "trunc", "exp", "exp2", "expm1", "tanh", "sinh")
"""Functions PoCL 3.1 deletes code around for a constant NaN."""
ROUND_CONSTANTS = ("math.inf", "-math.inf", "math.nan", "1e30", "-3e9", "2.0 ** 31", "1e19", "2.5", "-0.5")


def _cases(t: str) -> list[str]:
    """Expressions of type ``t`` with constant arguments, one per branch of the kernel."""
    cases = [f"hal.round(hal.{t}({c}))" for c in ROUND_CONSTANTS]
    cases += [f"hal.{f}(hal.{t}(math.nan))" for f in NAN_ONLY]
    cases += [f"hal.{t}(math.inf) // hal.{t}(1.0)", f"hal.{t}(math.nan) % hal.{t}(2.0)",
              f"hal.floor(hal.{t}(math.inf))", f"hal.ceil(hal.{t}(-3e30))"]
    return cases


def _kernel(t: str) -> hal.kernel.KernelFunction:
    """``out[0] = cases[which]``: each case in a branch of its own, so a deleted one shows alone."""
    branches = [f"    {'if' if k == 0 else 'elif'} which == {k}:\n        out[0] = {e}"
                for k, e in enumerate(_cases(t))]
    source = f"def constant_arguments(out: hal.Ptr[hal.{t}], which: hal.i32):\n" + "\n".join(branches) + "\n"
    return hal.kernel.from_source(source, globals={"hal": hal, "math": math})


@needs_device
@pytest.mark.parametrize("t", ["f32", "f64"])
def test_constant_arguments_match_the_interpreter(t: str) -> None:
    dev = hal.device("opencl")
    if t == "f64" and not dev.supports("f64"):
        pytest.skip(f"{dev.info.name} has no f64")
    kernel, dtype = _kernel(t), np.dtype(np.float32 if t == "f32" else np.float64)
    wrong = []
    for which, expr in enumerate(_cases(t)):
        want = [np.full(1, -7.0, dtype), which]
        interpreter.run(kernel.ir, (1, 1, 1), (1, 1, 1), want)
        out = dev.array(np.full(1, -7.0, dtype))
        kernel[1, 1](out, which)
        got = out.numpy()
        if not _agree(got, want[0], 0).all():
            wrong.append(f"{expr}: device {got[0]!r}, interpreter {want[0][0]!r}")
    assert not wrong, "\n".join(wrong)


@hal.kernel
def generated(out: hal.Ptr[hal.i32], approx: hal.Ptr[hal.f32]):
    i = hal.global_id(0)
    for k in range(5, i % 7, -2):
        out[i] = i + k
        approx[i] = hal.log1p(hal.abs(hal.round(hal.f32(-math.inf))))


@needs_device
def test_the_generated_atomics_program_that_failed_on_pocl() -> None:
    """Reduced from a differential program (seed 108 of hypothesis' atomic family): PoCL stored
    nothing in the loop, as if ``range(5, i % 7, -2)`` were empty."""
    dev = hal.device("opencl")
    want = [np.zeros(3, np.int32), np.zeros(3, np.float32)]
    interpreter.run(generated.ir, (3, 1, 1), (1, 1, 1), want)
    got = [dev.array(a) for a in (np.zeros(3, np.int32), np.zeros(3, np.float32))]
    generated[3, 1](*got)
    assert got[0].numpy().tolist() == want[0].tolist() == [1, 4, 5]
    assert got[1].numpy().tolist() == want[1].tolist() == [math.inf] * 3


@hal.kernel
def rounding(x: hal.Ptr[hal.f32], out: hal.Ptr[hal.f32]):
    i = hal.global_id(0)
    out[4 * i] = hal.round(x[i])
    out[4 * i + 1] = hal.floor(x[i])
    out[4 * i + 2] = hal.ceil(x[i])
    out[4 * i + 3] = hal.trunc(x[i])


@needs_device
def test_guards_keep_the_results_of_values_known_at_run_time() -> None:
    """The guards pass every other argument on: exact rounding around 2**23 and of halves."""
    x = np.array([math.nan, math.inf, -math.inf, 1e30, -3e9, 2.0**31, 8388607.5, -8388607.5, 8388609.0,
                  2.5, -2.5, 3.5, -0.5, -0.0, 0.49999997, 1e-45, -4194304.5], np.float32)
    want = [x.copy(), np.zeros(4 * x.size, np.float32)]
    interpreter.run(rounding.ir, (x.size, 1, 1), (1, 1, 1), want)
    out = hal.device("opencl").array(np.zeros(4 * x.size, np.float32))
    rounding[x.size, 1](hal.device("opencl").array(x), out)
    got = out.numpy()
    assert _agree(got, want[1], 0).all(), [(float(x[k // 4]), k % 4, float(got[k]), float(want[1][k]))
                                           for k in np.flatnonzero(~_agree(got, want[1], 0))]
