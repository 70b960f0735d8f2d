"""Float min/max of signed zeros on PoCL, whose LLVM 15 miscompiles a select on a float compare.

LLVM up to 15 rewrites ``x > 0 ? -0.0 : x`` into ``x >= 0 ? -0.0 : x`` (llvm-project#57357), which
gives -0.0 for x = +0.0. ``min(-0.0, x)`` written as ``-0.0 < x ? -0.0 : x`` becomes that select
once LLVM has canonicalized the compare to ``x > 0``, which it does where the compare is visited
first: a differential atomics program (seed 104) stored ``hal.min(hal.f32(-0.0), hal.f32(i))`` as
-0.0 for i = 0, where the interpreter (numpy.minimum) gives +0.0. The helpers of
:mod:`hal.kernel._cprelude` order floats on their bits, with no float compare to rewrite.
"""

from __future__ import annotations

import numpy as np
import pytest

import hal
from hal.conformance._generate import _agree
from hal.kernel import interpreter

from .test_opencl import needs_device


@hal.kernel
def min_across_a_barrier(out: hal.Ptr[hal.f32], count: hal.Ptr[hal.i32]):
    """Reduced from the generated program: the min is live across a barrier and a loop after it."""
    i = hal.global_id(0)
    count[5 + i] = hal.i32(hal.f32(i) * 3.0)
    v = hal.min(hal.f32(-0.0), hal.f32(i))
    hal.barrier()
    for z in range(hal.local_id(0), 5, 8):
        count[z] += 1
    out[i] = v


@needs_device
def test_the_generated_atomics_program_that_failed_on_pocl() -> None:
    dev = hal.device("opencl")
    want = [np.full(8, 7.0, np.float32), np.zeros(13, np.int32)]
    interpreter.run(min_across_a_barrier.ir, (1, 1, 1), (8, 1, 1), want)
    got = [dev.array(a) for a in (np.full(8, 7.0, np.float32), np.zeros(13, np.int32))]
    min_across_a_barrier[1, 8](*got)
    assert np.signbit(want[0]).tolist() == [False] + [True] * 7
    assert np.signbit(got[0].numpy()).tolist() == np.signbit(want[0]).tolist()


@hal.kernel
def signed_zeros(x: hal.Ptr[hal.f32], wide: hal.Ptr[hal.f64], out: hal.Ptr[hal.f32], out64: hal.Ptr[hal.f64]):
    """min/max of a signed zero and a value, both ways round, and of two values: what the helpers'
    order on the bits gives for signed zeros, NaNs, infinities, subnormals and f64."""
    i = hal.global_id(0)
    v = x[i]
    w = wide[i]
    out[8 * i] = hal.min(hal.f32(-0.0), v)
    out[8 * i + 1] = hal.max(hal.f32(-0.0), v)
    out[8 * i + 2] = hal.min(hal.f32(0.0), v)
    out[8 * i + 3] = hal.max(hal.f32(0.0), v)
    out[8 * i + 4] = hal.min(v, hal.f32(-0.0))
    out[8 * i + 5] = hal.max(v, hal.f32(-0.0))
    out[8 * i + 6] = hal.min(v, x[(i + 1) % 12])
    out[8 * i + 7] = hal.max(v, x[(i + 1) % 12])
    out64[2 * i] = hal.min(-0.0, w)
    out64[2 * i + 1] = hal.max(-0.0, w)


@needs_device
def test_min_max_of_signed_zeros_match_the_interpreter() -> None:
    dev = hal.device("opencl")
    if not dev.supports("f64"):
        pytest.skip(f"{dev.info.name} has no f64")
    x = np.array([0.0, -0.0, 1.0, -1.0, np.nan, 0.0, np.inf, -np.inf, 1e-45, -1e-45, -np.nan, 3e38], np.float32)
    wide = x.astype(np.float64)
    arrays = [x, wide, np.full(8 * x.size, 7.0, np.float32), np.full(2 * x.size, 7.0)]
    want = [a.copy() for a in arrays]
    interpreter.run(signed_zeros.ir, (x.size, 1, 1), (1, 1, 1), want)
    got = [dev.array(a) for a in arrays]
    signed_zeros[x.size, 1](*got)
    for k in (2, 3):
        have = got[k].numpy()
        wrong = np.flatnonzero(~_agree(have, want[k], 0))
        assert not wrong.size, [(int(j), float(have[j]), float(want[k][j])) for j in wrong]
