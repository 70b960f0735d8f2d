"""The C emitter on its own: structure of the generated code (phases, vectorisable loops,
per-work-item state), literals, checked mode, and the errors it raises."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

import hal
from hal.kernel import cemit, ir
from hal.kernel.samples import saxpy
from hal.kernel.types import ScalarType

CSRC = Path(__file__).resolve().parents[2] / "csrc"
I32, F32 = ScalarType.I32, ScalarType.F32


@hal.kernel
def tree(x: hal.Ptr[hal.f32], out: hal.Ptr[hal.f32]):
    sh = hal.shared(hal.f32, 64)
    lid = hal.local_id(0)
    v = x[hal.global_id(0)]
    sh[lid] = v
    hal.barrier()
    s = 32
    while s > 0:
        if lid < s:
            sh[lid] += sh[lid + s]
        hal.barrier()
        s //= 2
    if lid == 0:
        out[hal.group_id(0)] = sh[0] + v


def test_a_kernel_without_barriers_is_one_work_item_loop_nest() -> None:
    src = cemit.emit(saxpy.ir, key="k" * 64)
    assert src.count("for (int32_t lx = 0; lx < bx; lx++)") == 1
    assert "HAL_IVDEP\n" in src and "hal_st" not in src
    assert 'const char hal_kernel_key[] = "' + "k" * 64 + '";' in src
    assert "void hal_entry(const hal_launch *l, int64_t group_begin, int64_t group_end)" in src
    assert "hal_oob" not in src.split("hal_run")[1]  # unchecked: no bounds checks in the body


def test_barriers_split_the_body_into_phases_with_uniform_loops_per_group() -> None:
    src = cemit.emit(tree.ir)
    assert src.count("for (int32_t lx = 0; lx < bx; lx++)") == 5  # before, 2 in the loop, s //= 2 ... , after
    run = src.split("hal_run")[1]
    assert "while (((" in run  # the uniform loop runs once per work-group, reading work-item 0's copy
    assert "[0]) > (" in run
    assert "*const R" in run  # v and s live across phases: per-work-item arrays
    assert "float S" in run and "[64]" in run  # shared memory: one array per work-group


@hal.kernel
def chunk_sum(x: hal.Ptr[hal.f32], partial: hal.Ptr[hal.f32], n: hal.i32, per: hal.i32):
    sh = hal.shared(hal.f32, 64)
    lid = hal.local_id(0)
    base = hal.group_id(0) * 64 * per
    acc = hal.f32(0)
    for k in range(per):
        j = base + k * 64 + lid
        if j < n:
            acc += x[j]
    sh[lid] = acc
    hal.barrier()
    if lid == 0:
        partial[hal.group_id(0)] = sh[0]


def test_index_arithmetic_that_cannot_wrap_gets_an_int64_fast_path_checked_at_launch() -> None:
    src = cemit.emit(chunk_sum.ir)
    fast = src.split("hal_run_fast(")[1].split("static int hal_fits")[0]
    j = next(line for line in fast.splitlines() if "Lv4_j = " in line)
    assert "uint32_t" not in j and "int64_t Lv4_j" in fast  # exact int64: gcc sees base + k*64 + lid as affine
    assert "int64_t v3_k" in fast  # the loop variable too
    assert "(hal_fits(l) ? hal_run_fast : hal_run)" in src  # wrapping code for launches where it could wrap
    fits = src.split("static int hal_fits")[1]
    assert "A_per" in fits and "hal_iv_mul" in fits and "hal_iv_add" in fits
    assert "hal_run_fast" not in cemit.emit(saxpy.ir)  # nothing to gain: one function, as before


def test_checked_mode_bounds_checks_every_access() -> None:
    src = cemit.emit(saxpy.ir, checked=True)
    assert src.split("hal_run")[1].count("hal_oob(C,") == 3


def test_literals_are_exact() -> None:
    assert cemit._const(-(2**31), I32) == "((int32_t)(-2147483647 - 1))"
    assert cemit._const(2**32 - 1, ScalarType.U32) == "((uint32_t)4294967295u)"
    assert cemit._const(0.1, F32) == f"({float(__import__('numpy').float32(0.1)).hex()}f)"
    assert cemit._const(float("nan"), F32) == "((float)NAN)"
    assert cemit._const(float("-inf"), ScalarType.F64) == "((double)-INFINITY)"
    assert cemit._c_string('a"b\\c?\n\u00e9') == '"a\\"b\\\\c\\?\\012\\303\\251"'


def test_divergent_barrier_is_a_compile_error() -> None:
    body = (ir.If(ir.Binary("lt", ir.ThreadIndex("local_id", 0), ir.Const(3, I32), ScalarType.BOOL),
                  (ir.Barrier(7),), (), 6),)
    kernel = ir.Kernel("bad", (), (), (), body, "bad.py", 5)
    with pytest.raises(hal.CompileError, match="bad.py:7: barrier in divergent control flow"):
        cemit.emit(kernel)


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_saxpy_vectorises(tmp_path: Path) -> None:
    (tmp_path / "k.c").write_text(cemit.emit(saxpy.ir))
    proc = subprocess.run(["gcc", "-O3", "-march=native", "-fPIC", "-shared", "-fno-strict-aliasing",
                           "-ffp-contract=off", "-fno-math-errno", "-fopt-info-vec-optimized", "-I", str(CSRC),
                           "k.c", "-o", "k.so"], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert "loop vectorized" in proc.stderr


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_fast_path_loads_are_contiguous(tmp_path: Path) -> None:
    (tmp_path / "k.c").write_text(cemit.emit(chunk_sum.ir))
    subprocess.run(["gcc", "-O3", "-march=native", "-fPIC", "-S", "-fno-strict-aliasing", "-ffp-contract=off",
                    "-fno-math-errno", "-I", str(CSRC), "k.c", "-o", "k.s"], cwd=tmp_path, check=True)
    asm = (tmp_path / "k.s").read_text()
    fast = asm.split("hal_run_fast:")[1].split(".size")[0]
    assert "gather" not in fast
