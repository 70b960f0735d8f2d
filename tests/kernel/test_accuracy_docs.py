"""The accuracy table of docs/kernel-math.md is the one in hal.kernel.accuracy (the single source)."""

from pathlib import Path

from hal.kernel import ir
from hal.kernel.accuracy import ACCURACY, markdown_table

DOC = Path(__file__).resolve().parents[2] / "docs" / "kernel-math.md"


def test_docs_table_is_generated_from_the_code() -> None:
    text = DOC.read_text()
    table = text.split("<!-- accuracy -->\n", 1)[1].split("<!-- /accuracy -->", 1)[0]
    assert table == markdown_table(), (
        "docs/kernel-math.md is out of date; paste the output of "
        "python -c 'from hal.kernel.accuracy import markdown_table; print(markdown_table(), end=\"\")'")


def test_every_math_function_has_a_bound() -> None:
    assert set(ACCURACY) == set(ir.MATH_FUNCS)
    assert all(ACCURACY[f].f32 == 0 for f in ("trunc", "round", "copysign", "isnan", "isinf", "isfinite"))
