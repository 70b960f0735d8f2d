"""cffi API-mode builder of ``hal_cpu._runtime``, the CPU backend's C runtime.

Setuptools uses it through ``cffi_modules=["csrc/build_runtime.py:ffibuilder"]``;
run as a script it builds the extension in place into ``plugins/hal_cpu/`` for
development. The ``cdef`` is derived from the two headers, so the declarations
Python sees can never drift from the C ones.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import cffi

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _strip_inline_functions(text: str) -> str:
    """Drop ``static inline`` definitions, which cdef cannot parse (Python does not need them)."""
    out, pos = [], 0
    for match in re.finditer(r"static\s+inline\b", text):
        if match.start() < pos:
            continue
        out.append(text[pos:match.start()])
        depth, i = 0, text.index("{", match.end())
        while True:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
            if depth == 0:
                break
        pos = i
    out.append(text[pos:])
    return "".join(out)


def _cdef_of(header: Path) -> str:
    """The declarations of a header as cdef text: no comments, includes or guards, but
    integer ``#define`` constants are kept (cdef understands those)."""
    text = re.sub(r"/\*.*?\*/", "", header.read_text(), flags=re.S)
    text = _strip_inline_functions(text)
    lines = [line for line in text.splitlines()
             if not line.lstrip().startswith("#") or re.match(r"#define\s+\w+\s+\d+\s*$", line.strip())]
    return "\n".join(lines)


def make_ffibuilder(base: Path) -> cffi.FFI:
    """The builder, with source paths relative to ``base``: the directory the compiler runs
    in (setuptools wants relative paths; ``FFI.compile`` changes into its tmpdir)."""

    def rel(name: str) -> str:
        return os.path.relpath(HERE / name, base)

    builder = cffi.FFI()
    builder.cdef(_cdef_of(HERE / "hal_kernel_abi.h") + _cdef_of(HERE / "hal_runtime.h"))
    builder.set_source(
        "hal_cpu._runtime",
        '#include "hal_runtime.h"',
        sources=[rel("hal_runtime.c")],
        include_dirs=[rel(".")],
        depends=[rel("hal_runtime.h"), rel("hal_kernel_abi.h")],
        # The architecture's baseline, not -march=native: a wheel runs on other machines. Its copy and fill
        # loops are memory-bound (SSE2 or AVX streams alike: 64 MiB copy and fill, enqueue and launch costs
        # the same within noise, benchmarks/bench_runtime.py); kernels are built on the host with -march=native.
        extra_compile_args=["-O3", "-pthread"],
        extra_link_args=["-pthread"],
    )
    return builder


ffibuilder = make_ffibuilder(Path.cwd())


def build_in_place() -> Path:
    """Compile into build/cffi and put the extension next to plugins/hal_cpu/__init__.py.

    Under the name of the one there (``pip install -e .`` makes ``_runtime.abi3.so``), so that
    no stale copy under another suffix shadows it; through a rename, never by writing over the
    old file: processes that have the old one loaded keep mapping its pages."""
    tmpdir = ROOT / "build" / "cffi"
    built = Path(make_ffibuilder(tmpdir).compile(tmpdir=str(tmpdir), verbose=False))
    package = ROOT / "plugins" / "hal_cpu"
    target = next(iter(sorted(package.glob("_runtime.*.so"))), package / built.name)
    staged = target.with_name(f".{built.name}.{os.getpid()}")
    shutil.copy2(built, staged)
    os.replace(staged, target)
    return target


if __name__ == "__main__":
    sys.stdout.write(f"built {build_in_place()}\n")
