# ruff: noqa: F821 - kernels under test use undefined names on purpose
"""Where a kernel's source comes from (files, ``python -c``, ``hal.kernel.from_source``) and the
errors for names that are not defined."""

from __future__ import annotations

import linecache
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import hal
import hal.kernel as hk
from hal._errors import CompileError, InvalidArgumentError

SCALE = 3.0


@hk.func
def square(v: hk.f32) -> hk.f32:
    return v * v


def test_undefined_buffer_name_says_not_defined_with_a_suggestion() -> None:
    def typo(values: hk.Ptr[hk.f32], n: hk.i32):
        i = hk.global_id(0)
        value[i] = 1.0

    with pytest.raises(CompileError, match=r"name 'value' is not defined; did you mean 'values'\?"):
        hk.parse_kernel(typo)

    def loaded(out: hk.Ptr[hk.f32]):
        out[0] = nowhere_at_all[0]

    with pytest.raises(CompileError, match=r"name 'nowhere_at_all' is not defined; define it"):
        hk.parse_kernel(loaded)

    def scalar(out: hk.Ptr[hk.f32], count: hk.i32):
        out[0] = cont

    with pytest.raises(CompileError, match=r"name 'cont' is not defined; did you mean 'count'\?"):
        hk.parse_kernel(scalar)


def test_indexing_a_scalar_or_a_global_is_not_a_buffer() -> None:
    def scalar(out: hk.Ptr[hk.f32], n: hk.i32):
        out[0] = n[0]

    with pytest.raises(CompileError, match=r"'n' is a scalar \(i32\), not a buffer"):
        hk.parse_kernel(scalar)

    def global_(out: hk.Ptr[hk.f32]):
        out[0] = SCALE[0]

    with pytest.raises(CompileError, match=r"'SCALE' is not a buffer"):
        hk.parse_kernel(global_)


def test_from_source_runs_with_the_callers_globals_and_helpers() -> None:
    kernel = hk.from_source("""
        def scale(x: hal.Ptr[hal.f32], n: hal.i32):
            i = hal.global_id(0)
            if i < n:
                x[i] = square(x[i]) * SCALE
    """)
    assert isinstance(kernel, hk.KernelFunction) and kernel.name == "scale"
    dev = hal.device("cpu")
    x = dev.array(np.arange(4, dtype=np.float32))
    kernel[1, 4](x, 4)
    np.testing.assert_array_equal(x.numpy(), np.arange(4) ** 2 * SCALE)
    assert "<hal.kernel.from_source scale" in repr(kernel)


def test_from_source_picks_by_name_and_defines_helpers() -> None:
    source = textwrap.dedent("""
        @hal.func
        def twice(v: hal.i32) -> hal.i32:
            return v + v

        def first(x: hal.Ptr[hal.i32]):
            x[0] = twice(x[0])

        @hal.kernel
        def second(x: hal.Ptr[hal.i32]):
            x[1] = twice(x[1]) + OFFSET
    """)
    namespace = {"hal": hal, "OFFSET": 100}
    dev = hal.device("cpu")
    x = dev.array(np.array([1, 2], np.int32))
    hk.from_source(source, "first", namespace)[1, 1](x)
    hk.from_source(source, globals=namespace)[1, 1](x)
    np.testing.assert_array_equal(x.numpy(), [2, 104])
    assert "OFFSET" in namespace and "first" not in namespace  # the caller's dict is not changed


def test_from_source_errors_point_into_the_text_even_after_linecache_is_cleared() -> None:
    kernel = hk.from_source("def bad(x: hal.Ptr[hal.f32]):\n    x[0] = 1.0\n    x[1] = y\n")
    linecache.clearcache()
    with pytest.raises(CompileError, match="name 'y' is not defined") as info:
        kernel.ir  # noqa: B018 - parsing raises
    assert info.value.line == 3 and info.value.filename.startswith("<hal.kernel.from_source bad")


@pytest.mark.parametrize("source,name,pattern", [
    ("x = 1\n", None, "it has no def"),
    ("def a(x: hal.Ptr[hal.f32]):\n    pass\n", "b", "defines a"),
    ("def a(:\n", None, "not valid Python"),
    (b"def a(): pass", None, "as a str"),
])
def test_from_source_refuses_what_is_not_a_kernel(source: str, name: str | None, pattern: str) -> None:
    with pytest.raises(InvalidArgumentError, match=pattern):
        hk.from_source(source, name)


def test_exec_of_a_string_says_to_use_from_source() -> None:
    namespace: dict[str, object] = {"hal": hal}
    exec("def ex(x: hal.Ptr[hal.f32]):\n    x[0] = 1.0\n", namespace)
    with pytest.raises(CompileError, match=r"hal.kernel.from_source"):
        hk.parse_kernel(namespace["ex"])  # type: ignore[arg-type]


def test_kernels_defined_in_python_dash_c_compile() -> None:
    program = textwrap.dedent("""
        import numpy as np, hal
        exec("def ex(x): pass")  # another '<string>' function of no concern

        @hal.func
        def inc(v: hal.f32) -> hal.f32:
            return v + 1.0

        @hal.kernel
        def k(x: hal.Ptr[hal.f32], n: hal.i32):
            i = hal.global_id(0)
            if i < n:
                x[i] = inc(x[i])

        x = hal.device("cpu").array(np.zeros(4, np.float32))
        k[1, 4](x, 4)
        print(x.numpy().tolist())

        @hal.kernel
        def broken(x: hal.Ptr[hal.f32]):
            x[0] = undefined_name
        try:
            broken[1, 1](x)
        except hal.CompileError as e:
            print(e)
    """)
    run = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "[1.0, 1.0, 1.0, 1.0]"
    assert lines[1].startswith("<string>:21: name 'undefined_name' is not defined"), lines[1]
