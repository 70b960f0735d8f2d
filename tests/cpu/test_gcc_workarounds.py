"""The C emitter keeps a known GCC bug out of kernels.

The C below is the emitter's output for a generated kernel (differential suite, shared-memory
family, 100 examples), reduced to its one wrong line: GCC 12's loop vectoriser (``-O3``, with
AVX2 or AVX-512) loads ``in_u[(u32)(NaN != x) % 128]`` through a gather whose indices are the
bytes of the comparison's mask, so it read ``in_u[0]`` or garbage instead of ``in_u[1]``. Where a
comparison becomes an integer the emitter turns loop vectorisation off for the kernel, with GCC.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hal_cpu import _cc
from hal_cpu._compiler import CFLAGS

import hal
from hal.kernel import cemit

REPRODUCER = r"""
#include <stdint.h>
#include <stdio.h>
#include <math.h>
static inline uint32_t hal_mod_u32(uint32_t a, uint32_t b) { if (b == 0) return 0; return a % b; }
__attribute__((noinline)) void k(uint32_t *out, uint32_t *in_u, float *in_f, int32_t bx, int32_t gbx) {
    #pragma GCC ivdep
    for (int32_t lx = 0; lx < bx; lx++) {
        int32_t i = gbx + lx;
        out[(int32_t)((uint32_t)((int32_t)((uint32_t)i * 4u)) + 2u)] = (uint32_t)(0 - (uint32_t)(in_u[hal_mod_u32(
            (uint32_t)(((float)i) != in_f[(int32_t)((uint32_t)((int32_t)((uint32_t)i * 4u)) + 0u)]), 128u)]));
    }
}
int main(void) {
    uint32_t out[128] = {0}, in_u[128]; float in_f[128];
    for (int j = 0; j < 128; j++) { in_u[j] = j == 1 ? 0 : 1000 + j; in_f[j] = NAN; }
    k(out, in_u, in_f, 32, 0);
    int wrong = 0;
    for (int i = 0; i < 32; i++) wrong += out[i * 4 + 2] != 0;
    printf("%d\n", wrong);
    return 0;
}
"""


def wrong_lanes(cc: list[str], tmp_path: Path) -> str:
    """The reproducer, with what the emitter adds, built by ``cc`` and run: how many lanes are wrong."""
    src, exe = tmp_path / "repro.c", tmp_path / "repro"
    src.write_text(cemit._NO_LOOP_VECTORS + REPRODUCER)
    flags = [f for f in CFLAGS if f != "-shared"]
    subprocess.run([*cc, *flags, str(src), "-o", str(exe), "-lm"], check=True, capture_output=True,
                   env=dict(os.environ, ZIG_LOCAL_CACHE_DIR=str(tmp_path / "zig")))
    return subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.strip()


def test_the_reproducer_runs_right_with_what_the_emitter_adds(tmp_path: Path) -> None:
    assert wrong_lanes(["gcc"], tmp_path) == "0"


def test_clang_builds_the_reproducer_right_without_the_workaround(tmp_path: Path) -> None:
    """The workaround is GCC's only (``#if !defined(__clang__)``): Clang's vectoriser keeps the loop, right."""
    clang = shutil.which("clang")
    cc = [clang] if clang else list(_cc._zig(importlib.util.find_spec) or ())
    if not cc:
        pytest.skip("needs clang on PATH or the ziglang package (pip install 'hal-sdk[compiler]')")
    assert wrong_lanes(cc, tmp_path) == "0"


@hal.kernel
def gather_by_comparison(in_u: hal.Ptr[hal.u32], in_f: hal.Ptr[hal.f32], out: hal.Ptr[hal.u32]):
    i = hal.global_id(0)
    out[i * 4 + 2] = -in_u[hal.u32(hal.f32(i) != in_f[i * 4]) % 128]


def test_the_generated_kernel_reads_the_element_its_comparison_selects() -> None:
    dev = hal.device("cpu")
    in_u = np.where(np.arange(128) == 1, 0, 1000 + np.arange(128)).astype(np.uint32)
    in_f = np.full(128, np.nan, np.float32)
    out = dev.zeros((128,), np.uint32)
    gather_by_comparison[1, 32](dev.array(in_u), dev.array(in_f), out)
    assert not out.numpy().any()


@hal.kernel
def saxpy(a: hal.f32, x: hal.Ptr[hal.f32], y: hal.Ptr[hal.f32]):
    i = hal.global_id(0)
    y[i] = a * x[i] + y[i] if x[i] > 0.0 else y[i]


def test_only_kernels_that_turn_comparisons_into_integers_lose_loop_vectors() -> None:
    assert "no-tree-loop-vectorize" in cemit.emit(gather_by_comparison.ir)
    assert "no-tree-loop-vectorize" not in cemit.emit(saxpy.ir)
