# ruff: noqa: F841 - kernels under test keep unused locals on purpose
"""Narrow types (f16 bf16 i8 u8 i16 u16), u64 and the later math functions in the frontend and the interpreter."""

from __future__ import annotations

import inspect
import math
from typing import Any

import numpy as np
import pytest

import hal
import hal.kernel as hk
from hal._errors import CompileError
from hal._features import Feature
from hal.conformance._halfref import nearest_bits
from hal.kernel import interpreter, ir
from hal.kernel._narrow import half_bits_of
from hal.kernel.analysis import required_features
from hal.kernel.types import ScalarType, half_bits

from .test_frontend import lower

F16, BF16, F32, I32, I8 = ScalarType.F16, ScalarType.BF16, ScalarType.F32, ScalarType.I32, ScalarType.I8


def expect_error(fn: Any, pattern: str) -> None:
    """The kernel fails to compile, at its line marked ``# <-``, with a message matching ``pattern``."""
    with pytest.raises(CompileError, match=pattern) as info:
        hk.parse_kernel(fn.fn)
    lines, first = inspect.getsourcelines(fn.fn)
    assert info.value.line == first + next(i for i, text in enumerate(lines) if "# <-" in text)


def only_store(kernel: ir.Kernel) -> ir.Store:
    (store,) = [s for s in ir.walk_statements(kernel.body) if isinstance(s, ir.Store)]
    return store


def test_narrow_operands_promote_and_narrow_where_stored() -> None:
    @hk
    def k(a: hk.Ptr[hk.f16], b: hk.Ptr[hk.bf16], y: hk.Ptr[hk.f16]):
        y[0] = a[0] * b[0] + 1.5

    store = only_store(lower(k))
    assert isinstance(store.value, ir.Cast) and store.value.type is F16
    total = store.value.value
    assert isinstance(total, ir.Binary) and total.type is F32
    product = total.lhs
    assert isinstance(product, ir.Binary)
    assert [c.type for c in ir.children(product)] == [F32, F32]
    assert isinstance(product.lhs, ir.Cast) and product.lhs.value.type is F16
    assert isinstance(total.rhs, ir.Const) and total.rhs.type is F32


def test_small_ints_promote_to_i32_and_mix_with_it() -> None:
    @hk
    def k(a: hk.Ptr[hk.i8], b: hk.Ptr[hk.u16], n: hk.i32):
        x = a[0]
        x = x + b[0] * n  # i32 arithmetic, wrapped back into the i8 variable
        a[1] = ~x

    kernel = lower(k)
    assert dict(kernel.variables)["x"] is I8
    assigns = [s for s in ir.walk_statements(kernel.body) if isinstance(s, ir.Assign)]
    assert isinstance(assigns[1].value, ir.Cast) and assigns[1].value.value.type is I32
    assert only_store(kernel).value.value.type is I32  # ~ computes in i32


def test_half_literals_are_rounded_and_range_checked() -> None:
    @hk
    def k(y: hk.Ptr[hk.f16]):
        y[0] = hk.f16(0.1)

    const = only_store(lower(k)).value
    assert isinstance(const, ir.Const) and const.value == float(np.float16(0.1))

    @hk
    def too_big(y: hk.Ptr[hk.f16]):
        y[0] = 70000.0  # <-

    expect_error(too_big, r"out of range for f16")

    @hk
    def wide(y: hk.Ptr[hk.i8]):
        y[0] = hk.i8(200)  # <-

    expect_error(wide, r"out of range for i8 \[-128, 127\]")


def test_conversions_outside_one_family_stay_explicit() -> None:
    @hk
    def f64_to_f16(x: hk.Ptr[hk.f64], y: hk.Ptr[hk.f16]):
        y[0] = x[0]  # <-

    expect_error(f64_to_f16, r"storing f64 into f16 buffer 'y'; cast explicitly with hal.f16")

    @hk
    def i64_and_i8(x: hk.Ptr[hk.i64], y: hk.Ptr[hk.i8]):
        z = x[0] + y[0]  # <-

    expect_error(i64_and_i8, r"cannot mix i64 and i32")


def test_atomics_refuse_narrow_buffers() -> None:
    @hk
    def k(y: hk.Ptr[hk.f16]):
        hk.atomic_add(y, 0, 1.0)  # <-

    expect_error(k, r"atomics on f16 buffers are not supported")


def test_required_features_name_the_types() -> None:
    @hk
    def k(a: hk.Ptr[hk.f16], b: hk.Ptr[hk.bf16], c: hk.Ptr[hk.u8], d: hk.Ptr[hk.u64]):
        a[0] = b[0]

    assert {Feature.F16, Feature.BF16, Feature.SMALL_INTS, Feature.I64} <= required_features(lower(k))


def test_math_functions_type_and_predicates_return_bool() -> None:
    @hk
    def k(x: hk.Ptr[hk.f16], flag: hk.Ptr[hk.bool_], y: hk.Ptr[hk.f32]):
        flag[0] = hk.isnan(x[0])
        y[0] = hk.atan2(x[0], 1.0) + hk.erf(y[1])

    kernel = lower(k)
    calls = [e for s in ir.walk_statements(kernel.body) for e in ir.statement_expressions(s)
             if isinstance(e, ir.Call)]
    assert calls[0].type is ScalarType.BOOL and ir.call_type(calls[0]) is F32

    @hk
    def ints(x: hk.Ptr[hk.i32]):
        x[0] = hk.trunc(x[1])  # <-

    expect_error(ints, r"hal.trunc takes floats, not i32")


@pytest.mark.parametrize("call,hint", [("math.erf(x[0])", "use hal.erf"), ("np.arctan2(x[0], x[1])", "use hal.atan2"),
                                       ("round(x[0])", "use hal.round"), ("math.lgamma(x[0])", "no kernel counterpart"),
                                       ("np.float16(x[0])", r"cast with hal.f16\(x\)")])
def test_python_math_names_the_hal_function(tmp_path: Any, call: str, hint: str) -> None:
    path = tmp_path / "k.py"
    path.write_text(f"import math\nimport numpy as np\nimport hal\n\n@hal.kernel\ndef k(x: hal.Ptr[hal.f32]):\n"
                    f"    x[0] = {call}\n")
    namespace: dict[str, Any] = {"__file__": str(path)}
    exec(compile(path.read_text(), str(path), "exec"), namespace)  # noqa: S102 - the kernel needs a real file
    with pytest.raises(CompileError, match=hint):
        _ = namespace["k"].ir


# Values where rounding once (hal's rule) and rounding through f32 first differ, with the patterns
# worked out by hand: each is a tie of the 16-bit type moved by less than an f32 ulp.
ONCE = [
    (1 + 2.0**-11 + 2.0**-40, "f16", 0x3C01, 0x3C00),  # past the tie 1 + 2**-11: up (through f32: the tie, even)
    (2.0**-25 * (1 + 2.0**-30), "f16", 0x0001, 0x0000),  # past half the smallest subnormal
    (1 + 2.0**-8 + 2.0**-30, "bf16", 0x3F81, 0x3F80),
    (-(1 + 3 * 2.0**-8 - 2.0**-40), "bf16", 0xBF81, 0xBF82),  # below a tie that f32 would round up to even
    (2.0**-134 + 2.0**-160, "bf16", 0x0001, 0x0000),  # bf16 subnormals: past half of 2**-133
    ((2 - 2.0**-8) * 2.0**127 - 2.0**80, "bf16", 0x7F7F, 0x7F80),  # under the overflow threshold: finite
]
"""(f64 value, type, its pattern rounded once, its pattern rounded through f32)"""


def test_the_cases_tell_one_rounding_from_two() -> None:
    for value, fmt, once, twice in ONCE:
        assert int(nearest_bits(np.array([value]), fmt)[0]) == once
        assert int(nearest_bits(np.array([value], np.float32), fmt)[0]) == twice


def test_interpreter_rounds_once() -> None:
    @hk
    def k(x: hk.Ptr[hk.f64], h: hk.Ptr[hk.f16], b: hk.Ptr[hk.bf16], w: hk.Ptr[hk.i8]):
        i = hk.global_id(0)
        h[i] = hk.f16(x[i])
        b[i] = hk.bf16(x[i])
        w[i] = hk.i8(x[i])

    specials = [65519.0, 65520.0, -300.7, math.nan, -math.nan, -0.0, math.inf, 2.0**-25, 1 + 2.0**-8, 1e300]
    x = np.array([v for v, *_ in ONCE] + specials)
    h, b, w = np.zeros(x.size, np.float16), np.zeros(x.size, BF16.np_dtype), np.zeros(x.size, np.int8)
    interpreter.run(k.ir, (1, 1, 1), (x.size, 1, 1), [x, h, b, w])
    got = {"f16": h.view(np.uint16), "bf16": b.view(np.uint16)}
    for i, (_, fmt, once, _) in enumerate(ONCE):
        assert got[fmt][i] == once, f"case {i}: 0x{int(got[fmt][i]):04x}"
    for fmt, bits in got.items():
        assert bits.tolist() == nearest_bits(x, fmt).tolist()  # NaN: the quiet NaN of its sign, both
    n = len(ONCE)
    assert h.view(np.uint16)[n:n + 4].tolist() == [0x7BFF, 0x7C00, 0xDCB3, 0x7E00]  # 65520: the tie goes to inf
    assert w[n:n + 3].tolist() == [(v + 128) % 256 - 128 for v in (65519, 65520, -300)]  # truncate to i32, then wrap


def test_interpreter_integers_round_once() -> None:
    @hk
    def k(x: hk.Ptr[hk.i64], u: hk.Ptr[hk.u32], h: hk.Ptr[hk.f16], b: hk.Ptr[hk.bf16]):
        i = hk.global_id(0)
        h[i] = hk.f16(x[i])
        b[i] = hk.bf16(x[i])
        b[i + 8] = hk.bf16(u[i])

    x = np.array([2**60 + 2**52 + 1, -(2**63), 2**53 + 1, 65520, -65519, 2**24 + 2**16 + 1, 0, -1], np.int64)
    u = np.array([2**31 + 2**23 + 1, 2**32 - 1, 2**24 + 2**16, 7, 0, 1, 2**16 + 2**8 + 1, 3], np.uint32)
    h, b = np.zeros(8, np.float16), np.zeros(16, BF16.np_dtype)
    interpreter.run(k.ir, (1, 1, 1), (8, 1, 1), [x, u, h, b])
    assert h.view(np.uint16).tolist() == nearest_bits(x, "f16").tolist()
    assert b.view(np.uint16).tolist() == nearest_bits(x, "bf16").tolist() + nearest_bits(u, "bf16").tolist()
    assert b.view(np.uint16)[0] == 0x5D81  # 2**60 + 2**52 + 1: past the tie (through f32, 0x5D80)


def test_scalar_arguments_and_host_arrays_round_as_kernels() -> None:
    rng = np.random.default_rng(4)
    x = np.concatenate([[v for v, *_ in ONCE], rng.standard_normal(3000) * 10.0 ** rng.integers(-45, 40, 3000),
                        rng.integers(0, 1 << 63, 3000, dtype=np.uint64).view(np.float64)])
    for t in (F16, BF16):
        want = nearest_bits(x, t.value)
        pack = half_bits(t)
        got = np.array([pack(float(v)) for v in x], np.uint16)
        finite = ~np.isnan(x)
        assert got[finite].tolist() == want[finite].tolist()
        assert got.tolist() == half_bits_of(x, t).tolist()
        assert [pack(v) for v in (2**60 + 2**52 + 1, -3, 0)] == nearest_bits(
            np.array([2**60 + 2**52 + 1, -3, 0]), t.value).tolist()
        host = hal.device("cpu").array(x, t.np_dtype).numpy()
        assert host.view(np.uint16).tolist() == half_bits_of(x, t).tolist()


def test_f16_arrays_need_the_feature() -> None:
    accel = hal.device("accel")
    with pytest.raises(hal.InvalidArgumentError, match="'f16' feature"):
        accel.array(np.zeros(4, np.float16))


def test_f16_scalar_arguments_are_range_checked() -> None:
    @hk
    def k(s: hk.f16, y: hk.Ptr[hk.f16]):
        y[0] = s

    y = hal.device("cpu").zeros((1,), np.float16)
    k[1, 1](65519.0, y)
    assert y.numpy()[0] == np.float16(65504)
    with pytest.raises(hal.InvalidArgumentError, match="f16 range"):
        k[1, 1](65520.0, y)
