"""How accurate each kernel math function must be: the one table that docs and tests read.

A bound is the largest error, in units in the last place (ulp) of the result type, between what
a backend returns and the correctly rounded result, over the whole domain (subnormals, signed
zeros and huge arguments included). 0 means bit-exact: every backend returns the same bits as the
reference interpreter (NaN results only have to be a NaN). The bounds are OpenCL 1.2's for its
full-profile built-ins (tables 7.1 and 7.2), the weakest contract among the runtimes hal targets
(CUDA's are at least as tight), so a backend may map each function to its runtime's built-in.
What the bundled backends actually achieve is far better: the reference interpreter computes f32
results in double precision and rounds once (numpy, and ``math.erf``/``math.erfc``), the CPU
backend calls the C library, OpenCL its built-ins.

Special values follow C99 Annex F on every backend (``erf(inf) = 1``, ``log2(0) = -inf``,
``log1p(-1) = -inf``, ``rsqrt(-0.0) = -inf``, ``asin(2)`` is NaN, ``hypot(inf, nan) = inf``, ...).
``docs/kernel-math.md`` holds :func:`markdown_table`; a test checks that it is up to date.
"""

from __future__ import annotations

from dataclasses import dataclass

from .ir import MATH_FUNCS


@dataclass(frozen=True)
class Accuracy:
    """Error bound of one math function, in ulp of the result, per precision."""

    f32: float
    f64: float
    note: str = ""

    def ulps(self, bits: int) -> float:
        """The bound for a result of ``bits`` bits (f16 and bf16 compute in f32 and round once more)."""
        return self.f64 if bits == 64 else self.f32


_EXACT = Accuracy(0, 0)

ACCURACY: dict[str, Accuracy] = {
    "abs": _EXACT, "min": Accuracy(0, 0, "NaN if either argument is NaN"),
    "max": Accuracy(0, 0, "NaN if either argument is NaN"),
    "floor": _EXACT, "ceil": _EXACT, "trunc": _EXACT,
    "round": Accuracy(0, 0, "ties to even (numpy.rint, C rint)"),
    "copysign": _EXACT, "fma": Accuracy(0, 0, "one rounding"),
    "isnan": _EXACT, "isinf": _EXACT, "isfinite": _EXACT,
    "sqrt": Accuracy(0, 0, "correctly rounded"),
    "rsqrt": Accuracy(2, 2, "the bundled C backends compute 1 / sqrt(x): two roundings"),
    "exp": Accuracy(3, 3), "exp2": Accuracy(3, 3), "expm1": Accuracy(3, 3),
    "log": Accuracy(3, 3), "log2": Accuracy(3, 3), "log10": Accuracy(3, 3), "log1p": Accuracy(2, 2),
    "pow": Accuracy(16, 16),
    "sin": Accuracy(4, 4), "cos": Accuracy(4, 4), "tan": Accuracy(5, 5),
    "asin": Accuracy(4, 4), "acos": Accuracy(4, 4), "atan": Accuracy(5, 5), "atan2": Accuracy(6, 6),
    "sinh": Accuracy(4, 4), "cosh": Accuracy(4, 4), "tanh": Accuracy(5, 5),
    "hypot": Accuracy(4, 4), "erf": Accuracy(16, 16), "erfc": Accuracy(16, 16),
}
"""Every function of :data:`hal.kernel.ir.MATH_FUNCS`, in the order of the documentation's table."""

assert set(ACCURACY) == set(MATH_FUNCS), "every math function needs an accuracy bound"


def markdown_table() -> str:
    """The table of ``docs/kernel-math.md`` (between its ``<!-- accuracy -->`` markers)."""
    rows = ["| function | f32 (ulp) | f64 (ulp) | notes |", "|---|---|---|---|"]
    for name, a in ACCURACY.items():
        rows.append(f"| `hal.{name}` | {_ulp(a.f32)} | {_ulp(a.f64)} | {a.note} |")
    return "\n".join(rows) + "\n"


def _ulp(bound: float) -> str:
    return "exact" if bound == 0 else f"{bound:g}"
