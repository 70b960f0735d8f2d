"""Test kernels for the CPU runtime (C following hal_kernel_abi.h) and helpers to launch them."""

from __future__ import annotations

import struct
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cffi

CSRC = Path(__file__).resolve().parents[2] / "csrc"

KERNELS_C = r"""
#include <time.h>
#include "hal_kernel_abi.h"

/* counts[g] += 1 for every linear group id g: each group must run exactly once */
void k_count(const hal_launch *l, int64_t begin, int64_t end) {
    int32_t *counts = hal_arg_ptr(l, 0);
    for (int64_t g = begin; g < end; g++) __atomic_fetch_add(&counts[g], 1, __ATOMIC_RELAXED);
}

/* out[i] = a * i + b for every work-item i of a 1-D launch (a: f32, b: f64) */
void k_affine(const hal_launch *l, int64_t begin, int64_t end) {
    float *out = hal_arg_ptr(l, 0);
    float a = hal_arg_f32(l, 2);
    double b = hal_arg_f64(l, 3);
    int64_t bs = l->block[0];
    for (int64_t g = begin; g < end; g++)
        for (int64_t t = 0; t < bs; t++) out[g * bs + t] = (float)(a * (float)(g * bs + t) + b);
}

/* sleeps `ms` milliseconds, then stores `value` into out[0]: work that is still pending */
void k_sleep_store(const hal_launch *l, int64_t begin, int64_t end) {
    (void)begin; (void)end;
    struct timespec ts = {0, hal_arg_i64(l, 2) * 1000000L};
    nanosleep(&ts, NULL);
    *(int64_t *)hal_arg_ptr(l, 0) = hal_arg_i64(l, 3);
}

/* faults in group `bad` (slot 0), naming it; other groups do nothing */
void k_fault(const hal_launch *l, int64_t begin, int64_t end) {
    for (int64_t g = begin; g < end && !hal_faulted(l); g++)
        if (g == hal_arg_i64(l, 0)) {
            char msg[64];
            snprintf(msg, sizeof msg, "k_fault: bad access in group %lld", (long long)g);
            hal_raise_fault(l, msg);
        }
}

/* out[0] = the sum of n values: slot 2 holds n, slots 3 .. 3 + n the values */
void k_sum(const hal_launch *l, int64_t begin, int64_t end) {
    (void)begin; (void)end;
    int64_t n = hal_arg_i64(l, 2), s = 0;
    for (int64_t i = 0; i < n; i++) s += hal_arg_i64(l, 3 + (int)i);
    *(int64_t *)hal_arg_ptr(l, 0) = s;
}

/* uses 4 MiB of stack per call, as generated kernels do for work-group memory */
void k_big_stack(const hal_launch *l, int64_t begin, int64_t end) {
    volatile char scratch[4 << 20];
    int32_t *out = hal_arg_ptr(l, 0);
    for (int64_t g = begin; g < end; g++) {
        scratch[(g * 4099) % sizeof scratch] = (char)g;
        out[g] = scratch[(g * 4099) % sizeof scratch] == (char)g;
    }
}
"""

NAMES = ("k_count", "k_affine", "k_sleep_store", "k_fault", "k_sum", "k_big_stack")


def build_kernels(tmp: Path) -> Any:
    """Compile the test kernels in ``tmp`` and load them as an ABI-mode cffi library, whose
    functions belong to another FFI than the runtime's (as generated kernels' do)."""
    (tmp / "kernels.c").write_text(KERNELS_C)
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-I", str(CSRC), "kernels.c", "-o", "kernels.so"],
                   cwd=tmp, check=True)
    kffi = cffi.FFI()
    kffi.cdef("typedef struct hal_launch hal_launch;\n"
              + "".join(f"void {n}(const hal_launch *, int64_t, int64_t);\n" for n in NAMES))
    return kffi.dlopen(str(tmp / "kernels.so"))


def pack_slots(*slots: int | float) -> bytes:
    """Pack ints as i64 slots and floats as f64 slots (callers pack f32 by hand)."""
    return b"".join(struct.pack("<d", s) if isinstance(s, float) else struct.pack("<q", s) for s in slots)


def f32_slot(value: float) -> int:
    """An f32 argument's slot: the float's bits in the low 4 bytes."""
    return int(struct.unpack("<I", struct.pack("<f", value))[0])


@dataclass(eq=False)
class KernelExe:
    """An executable as CpuQueue.launch sees it: an entry point and a packer."""

    entry: Any
    packer: Any

    def pack(self, args: Sequence[Any]) -> bytes:
        return bytes(self.packer(args))
