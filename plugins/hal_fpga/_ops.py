"""The operator library: latency and fabric cost of each IR operation at the part's kernel clock.

Figures approximate what Vitis HLS instantiates on UltraScale+ at 300 MHz:
floating point from the Floating-Point Operator core (PG060; "full DSP" adders,
"max DSP" multipliers, the latencies HLS picks at 3.3 ns), integer multipliers
on DSP48E2 slices (UG579: a 27x18 multiplier per slice, so three for 32x32),
the rest in LUTs. Every operator is fully pipelined (accepts one input per
cycle) and never shared between operations. README.md has the table and sources.
"""

from __future__ import annotations

from dataclasses import dataclass

from hal.backend import UnsupportedError
from hal.kernel.types import ScalarType


@dataclass(frozen=True)
class Cost:
    """One operator instance: pipeline stages and fabric."""

    latency: int
    dsp: int = 0
    lut: int = 0
    ff: int = 0

    def __add__(self, other: Cost) -> Cost:
        """Two operators in series (composite operations such as float ``mod``)."""
        return Cost(self.latency + other.latency, self.dsp + other.dsp, self.lut + other.lut, self.ff + other.ff)


def type_class(t: ScalarType) -> str:
    """The hardware class of a type: signedness does not change the datapath."""
    return {ScalarType.U32: "i32", ScalarType.U64: "i64"}.get(t, t.value)


_CMP = ("eq", "ne", "lt", "le", "gt", "ge")


def _int_ops(bits: int) -> dict[str, Cost]:
    w = bits // 32
    add = Cost(1, 0, bits, bits)
    div = Cost(bits + 4, 0, 1100 * w * w, 2300 * w * w)  # radix-2, one stage per quotient bit
    mul = Cost(3, 3, 20, 80) if bits == 32 else Cost(5, 10, 80, 300)
    ops = {
        "add": add, "sub": add, "neg": add, "abs": Cost(1, 0, bits + 16, bits), "mul": mul,
        "floordiv": div + Cost(1, 0, bits, bits), "mod": div + Cost(1, 0, bits, bits),
        "pow": Cost(bits + 8, 2 * mul.dsp, 10 * bits, 20 * bits),  # square-and-multiply
        "bitand": Cost(0, 0, bits), "bitor": Cost(0, 0, bits), "bitxor": Cost(0, 0, bits),
        "invert": Cost(0, 0, bits), "shl": Cost(1, 0, 3 * bits, bits), "shr": Cost(1, 0, 3 * bits, bits),
        "min": Cost(1, 0, bits + bits // 2, bits), "max": Cost(1, 0, bits + bits // 2, bits),
        "select": Cost(0, 0, bits),
        # an adder tree of the bits; a priority encoder for the leading / trailing zeros
        "popcount": Cost(2, 0, 2 * bits, bits), "clz": Cost(2, 0, 2 * bits, bits), "ctz": Cost(2, 0, 3 * bits, bits),
    }
    ops.update({c: Cost(1, 0, bits // 2, 1) for c in _CMP})
    return ops


def _float_ops(double: bool) -> dict[str, Cost]:
    if double:
        add, mul, div = Cost(5, 3, 700, 1000), Cost(6, 11, 200, 500), Cost(30, 0, 3200, 6000)
        floor = Cost(2, 0, 300, 400)
        ops = {"sqrt": Cost(30, 0, 1700, 3000), "exp": Cost(20, 20, 2000, 3000), "log": Cost(24, 14, 3000, 4500),
               "sin": Cost(40, 25, 7000, 9000), "cos": Cost(40, 25, 7000, 9000), "pow": Cost(56, 45, 5000, 8000),
               "min": Cost(1, 0, 200, 130), "max": Cost(1, 0, 200, 130), "select": Cost(0, 0, 64)}
        cmp = Cost(1, 0, 130, 130)
    else:
        add, mul, div = Cost(4, 2, 220, 350), Cost(3, 3, 80, 150), Cost(12, 0, 800, 1300)
        floor = Cost(2, 0, 150, 200)
        ops = {"sqrt": Cost(12, 0, 500, 800), "exp": Cost(10, 7, 600, 1000), "log": Cost(12, 4, 800, 1200),
               "sin": Cost(20, 9, 2500, 3000), "cos": Cost(20, 9, 2500, 3000), "pow": Cost(30, 14, 1800, 2600),
               "min": Cost(1, 0, 100, 70), "max": Cost(1, 0, 100, 70), "select": Cost(0, 0, 32)}
        cmp = Cost(1, 0, 70, 70)
    ops.update({
        "add": add, "sub": add, "mul": mul, "div": div, "floor": floor, "ceil": floor,
        "fma": mul + add, "tanh": ops["exp"] + div + add, "floordiv": div + floor,
        "mod": div + floor + mul + add, "neg": Cost(0, 0, 1), "abs": Cost(0, 0, 1),
    })
    ops.update({c: cmp for c in _CMP})
    exp, log, sin, sqrt = ops["exp"], ops["log"], ops["sin"], ops["sqrt"]
    atan = sin + mul  # a CORDIC-style range reduction and polynomial, like sin's
    ops.update({  # the later math functions, composed of the cores above as HLS math libraries build them
        "exp2": exp, "log2": log, "log10": log + mul, "log1p": log + add, "expm1": exp + add,
        "erf": exp + div + mul + add, "erfc": exp + div + mul + add, "rsqrt": sqrt + div, "tan": sin + div,
        "atan": atan, "atan2": atan + div, "asin": atan + sqrt + div, "acos": atan + sqrt + div,
        "sinh": exp + div + add, "cosh": exp + div + add, "trunc": floor, "round": floor,
        "copysign": Cost(0, 0, 1), "hypot": sqrt + mul + mul + add,
        "isnan": Cost(1, 0, 16, 1), "isinf": Cost(1, 0, 16, 1), "isfinite": Cost(1, 0, 16, 1),
    })
    return ops


_BOOL = {name: Cost(0, 0, 1) for name in ("and", "or", "not", "bitand", "bitor", "bitxor", "invert",
                                           "select", *_CMP)}
_TABLE: dict[str, dict[str, Cost]] = {
    "i32": _int_ops(32), "i64": _int_ops(64), "f32": _float_ops(False), "f64": _float_ops(True), "bool": _BOOL,
}

MEMORY = Cost(1, 0, 20, 40)
"""A load or a store: one cycle from a BRAM port or the m_axi adapter's burst buffer."""
LOOP_CONTROL = Cost(0, 0, 40, 70)
"""Trip counter, exit test and the FSM state of one loop."""
KERNEL_CONTROL = Cost(0, 0, 300, 500)
"""The ap_ctrl handshake and AXI4-Lite register file of a kernel."""
M_AXI = Cost(0, 0, 1500, 2800)
"""One AXI4 master adapter (a pointer argument); it also takes ``M_AXI_BRAM`` BRAM36 of burst buffers."""
M_AXI_BRAM = 2
BRAM36_BITS = 36 * 1024

_CASTS: dict[tuple[str, str], Cost] = {
    ("int", "f32"): Cost(4, 0, 200, 300), ("f32", "int"): Cost(3, 0, 200, 250),
    ("int", "f64"): Cost(5, 0, 300, 400), ("f64", "int"): Cost(3, 0, 300, 350),
    ("f32", "f64"): Cost(2, 0, 100, 150), ("f64", "f32"): Cost(2, 0, 100, 150),
}


def op_cost(name: str, t: ScalarType) -> Cost:
    """The operator ``name`` (IR op or math function) computing in type ``t``."""
    try:
        return _TABLE[type_class(t)][name]
    except KeyError:
        raise UnsupportedError(f"the fpga operator library has no {name} on {t.value}", feature=name) from None


_HALF_CASTS: dict[tuple[str, str], Cost] = {
    ("f16", "f32"): Cost(1, 0, 40, 30), ("f32", "f16"): Cost(2, 0, 90, 60), ("f64", "f16"): Cost(2, 0, 140, 100),
    ("bf16", "f32"): Cost(0), ("f32", "bf16"): Cost(1, 0, 40, 20), ("f64", "bf16"): Cost(2, 0, 140, 100),
}
"""16-bit floats: bf16 widens by wiring; f16 renormalises subnormals; narrowing rounds to nearest even, once
(f64 -> bf16 is one 53-to-8-bit rounding, costed as f64 -> f16's 53-to-11-bit one)."""


def cast_cost(src: ScalarType, dst: ScalarType) -> Cost:
    """A conversion; integer and bool conversions are wiring (sign extension or truncation); a 16-bit float
    converts to anything but f32 through f32, and f32 or f64 to a 16-bit float directly (one rounding)."""
    def kind(t: ScalarType) -> str:
        return t.value if t.is_float else "int"
    a, b = kind(src), kind(dst)
    if a == b:
        return Cost(0)
    if (a, b) in _HALF_CASTS:
        return _HALF_CASTS[a, b]
    if a in ("f16", "bf16"):
        return _HALF_CASTS[a, "f32"] + cast_cost(ScalarType.F32, dst)
    if b in ("f16", "bf16"):
        return cast_cost(src, ScalarType.F32) + _HALF_CASTS["f32", b]
    return _CASTS[a, b]
