"""Kernel compiler of the CPU backend: IR -> C (hal.kernel.cemit) -> a C compiler -> a cached shared object.

The compiler is GCC or Clang, found as :mod:`hal_cpu._cc` says (``$HAL_CC``, ``$CC``, cc/gcc/clang
on PATH, the ``ziglang`` wheel's ``zig cc``); both get the same flags, and the emitted C picks
each one's pragmas itself.

Compiled kernels live in hal's kernel cache (``hal.backend.cache_read``/``cache_write``: a
trusted directory, tagged entries, a size limit) keyed by a SHA-256 of everything that can change
the machine code: the IR, checked mode, the compiler flags, the ABI header, the emitter's and this
module's source, the compiler's command and binary and the host CPU's feature flags (the code is built with
``-march=native``). An object is loaded only from a private place: the compiler's output in a private
directory, or a private copy of the bytes the cache verified, so what is loaded is what was
checked; it must export its key and ABI version, and an entry that fails is rebuilt. Without a
usable cache, kernels build in a private temporary directory and are not kept.

A loaded object is shared by the CpuKernels of its key and closed (dlclose) when the last
of them goes; queues keep a CpuKernel while a launch of it is pending.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import shutil
import struct
import subprocess
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _cffi_backend

from hal.backend import (
    CompileError,
    Executable,
    HalError,
    cache_read,
    cache_write,
    checked_mode,
    kernel_cache_dir,
    trusted_cache_dir,
)
from hal.kernel import cemit, ir
from hal.kernel.types import ScalarType, half_bits

from . import _cc
from ._runtime import ffi
from ._runtime import lib as _rt

CFLAGS = ("-O3", "-march=native", "-fPIC", "-shared", "-fno-strict-aliasing", "-ffp-contract=off",
          "-fno-math-errno", "-fno-plt")
"""No -ffast-math: results must equal the reference interpreter's. No -fwrapv either: the
emitter wraps explicitly, and the compiler may then treat thread-index arithmetic as affine.
GCC and Clang take the same flags."""
ENTRY = "hal_entry"
_HERE = Path(__file__).resolve().parent
_HEADER_DIRS = (_HERE / "include", _HERE.parents[1] / "csrc")
"""Where hal_kernel_abi.h is: shipped as package data, or the source checkout's csrc/."""
_KEY_TYPE = ffi.typeof("char[65]")
_ABI_TYPE = ffi.typeof("int")
_ENTRY_TYPE = ffi.typeof("hal_kernel_fn")


def cache_dir() -> Path:
    """This backend's folder of the kernel cache (``hal.backend.kernel_cache_dir``)."""
    return kernel_cache_dir("cpu")


@dataclass(frozen=True)
class Toolchain:
    """The compiler and what else feeds the cache key, found once per process."""

    cc: _cc.Found
    identity: _cc.Identity
    include: Path
    digest: str


@dataclass(eq=False)
class Library:
    """One loaded kernel object: cffi closes it (dlclose) when this goes, so only CpuKernels
    hold it, and ``_loaded`` finds it while any of them lives."""

    lib: Any
    entry: Any
    """cdata ``hal_kernel_fn`` (the runtime's ffi) of the generated entry point."""


_toolchain: Toolchain | None = None
_lock = threading.Lock()
"""Serialises loading and building (replaced in a fork child: another thread may hold it at fork)."""
_loaded: weakref.WeakValueDictionary[str, Library] = weakref.WeakValueDictionary()
"""key -> the loaded object of that key, while a CpuKernel uses it."""
_copies = itertools.count()
"""Numbers the private copies that cached objects are loaded from."""


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


def toolchain() -> Toolchain:
    global _toolchain
    if _toolchain is None:
        cc = _cc.find()
        identity = _cc.identify(cc)
        include = next((d for d in _HEADER_DIRS if (d / "hal_kernel_abi.h").is_file()), None)
        if include is None:
            raise HalError(f"cpu: hal_kernel_abi.h is missing (looked in {', '.join(map(str, _HEADER_DIRS))}); "
                           "reinstall hal")
        real = os.path.realpath(cc.command[0])
        st = os.stat(real)
        h = hashlib.sha256()
        for part in (real, *cc.command[1:], identity.version, str(st.st_size), str(st.st_mtime_ns),
                     " ".join(CFLAGS), _cpu_flags()):
            h.update(part.encode() + b"\0")
        for path in (include / "hal_kernel_abi.h", *cemit.SOURCES, Path(__file__)):
            h.update(path.read_bytes())
        _toolchain = Toolchain(cc, identity, include, h.hexdigest())
    return _toolchain


def _cpu_flags() -> str:
    """The host CPU's feature flags: code built with -march=native must not run elsewhere."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return line
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def cache_key(kernel: ir.Kernel, checked: bool) -> str:
    data = f"{kernel.hash()}|checked={int(checked)}|{toolchain().digest}"
    return hashlib.sha256(data.encode()).hexdigest()


# ----------------------------------------------------------------- executable
@dataclass(eq=False)
class CpuKernel(Executable):
    """A kernel built for the CPU: what ``CpuQueue.launch`` runs."""

    kernel: ir.Kernel
    entry: Any
    """cdata ``hal_kernel_fn`` (the runtime's ffi) of the generated entry point."""
    cpu_target: tuple[Any, Any]
    """(entry, where) as ``hal_queue_launch_bytes`` takes them; ``where`` (a ``char[]``) names the
    kernel and its source location in fault messages."""
    pack: Callable[[Sequence[Any]], bytes]
    """Launch arguments -> 8-byte slots (hal_kernel_abi.h); made once per kernel."""
    nslots: int
    key: str
    path: Path
    checked: bool
    cached: bool
    """Whether the object came from the on-disk cache."""
    compile_s: float
    library: Library = field(repr=False)

    def report(self) -> dict[str, Any]:
        return {"key": self.key, "object": str(self.path), "source": str(self.path.with_suffix(".c")),
                "checked": self.checked, "cached": self.cached, "compile_s": self.compile_s}


def make_packer(params: Sequence[ir.Param]) -> tuple[Callable[[Sequence[Any]], bytes], int]:
    """A function packing launch arguments into slots, with one precompiled ``struct.Struct``.

    Pointer: element address (buffer address + byte offset) and element count; signed integers
    sign-extended, unsigned ones and bool zero-extended, f32 in the low 4 bytes, f64 as is, f16 and
    bf16 as their bit patterns (rounded to nearest even, as the reference interpreter's scalars).
    """
    fmt, values = "<", []
    for i, p in enumerate(params):
        if p.pointer:
            fmt += "QQ"
            values += [f"a{i}.buffer.address + a{i}.offset", f"a{i}.size"]
        elif p.type.is_narrow and p.type.is_float:
            fmt += "Q"
            values.append(f"_bits_{p.type.value}(a{i})")
        else:
            t = p.type
            fmt += "f4x" if t.value == "f32" else "d" if t.value == "f64" else "q" if t.is_signed else "Q"
            values.append(f"a{i}")
    names = "".join(f"a{i}, " for i in range(len(params)))
    code = (f"def pack(args):\n    {names or '_'} = {'args' if params else '()'}\n"
            f"    return _pack({', '.join(values)})\n")
    env: dict[str, Any] = {"_pack": struct.Struct(fmt).pack, "_bits_f16": half_bits(ScalarType.F16),
                           "_bits_bf16": half_bits(ScalarType.BF16)}
    exec(code, env)  # noqa: S102 - generated from parameter kinds only: one Struct call per launch
    return env["pack"], struct.calcsize(fmt) // 8


# ----------------------------------------------------------------- compiling
def compile_kernel(kernel: ir.Kernel) -> CpuKernel:
    """Build ``kernel`` (or fetch it from the cache) and load it. Raises CompileError."""
    t0 = time.perf_counter()
    checked = checked_mode()
    key = cache_key(kernel, checked)
    path = cache_dir() / f"{key}.so"
    cached = True
    with _lock:
        library = _loaded.get(key)
        if library is None:
            data = cache_read(path)
            library = _load_bytes(data, key) if data is not None else None
            if library is None:
                cached = False
                library = _build(kernel, checked, key, path)
            _loaded[key] = library
    pack, nslots = make_packer(kernel.params)
    where = ffi.new("char[]", f"kernel '{kernel.name}' ({kernel.source_file or '<unknown>'}:{kernel.source_line})"
                    .encode("utf-8", "replace"))
    return CpuKernel(kernel, library.entry, (library.entry, where), pack, nslots, key, path, checked, cached,
                     time.perf_counter() - t0, library)


def _load(path: Path, key: str) -> Library:
    """dlopen ``path`` and check that it holds ``key`` for this ABI; raises OSError/ValueError otherwise."""
    lib = _cffi_backend.load_library(str(path))
    found = ffi.string(lib.read_variable(_KEY_TYPE, "hal_kernel_key")).decode()
    abi = lib.read_variable(_ABI_TYPE, "hal_kernel_abi")
    if found != key or abi != _rt.HAL_ABI_VERSION:
        raise ValueError(f"{path} holds kernel {found} (ABI {abi}), not {key} (ABI {_rt.HAL_ABI_VERSION})")
    return Library(lib, lib.load_function(_ENTRY_TYPE, ENTRY))


def _load_bytes(data: bytes, key: str) -> Library | None:
    """Load the bytes the cache verified, never the file they came from: a private copy (0600) under
    a name of its own in the cache's folder, removed once loaded (a new name each time, since the
    dynamic loader takes a name it has loaded before for the same object). None if they are not
    ``key``'s object."""
    folder = trusted_cache_dir("cpu")
    if folder is None:
        return None
    path = folder / f".{key}-{os.getpid()}-{next(_copies)}.so"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
        with open(fd, "wb") as f:
            f.write(data)
        return _load(path, key)
    except (OSError, ValueError, AttributeError):
        return None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _scratch(key: str) -> Path:
    """A private directory (0700) to build in: inside the cache's folder where it is usable (the
    system's temporary directory may forbid executable mappings), else a temporary one."""
    folder = trusted_cache_dir("cpu")
    try:
        return Path(tempfile.mkdtemp(prefix=f".{key}-", dir=folder))
    except OSError as exc:
        raise CompileError(f"cpu: cannot create a private build directory in {folder or tempfile.gettempdir()}: "
                           f"{exc.strerror or exc}; free some space or set TMPDIR") from exc


def _compile(tc: Toolchain, src: Path, obj: Path) -> subprocess.CompletedProcess[str]:
    """Run the compiler on ``src``; zig cc keeps its intermediate files in the build's private
    directory (``ZIG_LOCAL_CACHE_DIR``), so they go with it. Raises UnsupportedError if it cannot start."""
    env = dict(os.environ, ZIG_LOCAL_CACHE_DIR=str(src.parent / "zig"))
    try:
        return subprocess.run([*tc.cc.command, *CFLAGS, "-I", str(tc.include), str(src), "-o", str(obj), "-lm"],
                              capture_output=True, text=True, env=env)
    except OSError as exc:
        raise _cc.broken(tc.cc, str(exc)) from exc


def _build(kernel: ir.Kernel, checked: bool, key: str, path: Path) -> Library:
    source = cemit.emit(kernel, entry=ENTRY, checked=checked, key=key)
    tc = toolchain()
    scratch = _scratch(key)
    try:
        src, obj = scratch / "kernel.c", scratch / "kernel.so"
        src.write_text(source)
        proc = _compile(tc, src, obj)
        if proc.returncode != 0:
            probe = scratch / "probe.c"
            probe.write_text("int hal_probe(void) { return 0; }\n")
            tried = _compile(tc, probe, scratch / "probe.so")
            if tried.returncode != 0:  # the compiler, not the kernel: it builds no shared object at all
                raise _cc.broken(tc.cc, "it cannot build an empty shared object", tried.stderr)
            kept = cache_write(path.with_suffix(".failed.c"), source.encode()) or "the output of `hal compile`"
            raise CompileError(f"cpu: {tc.identity.family} could not build kernel '{kernel.name}' (a bug in hal's "
                               f"C emitter; please report it with {kept}):\n{proc.stderr[-2000:]}",
                               kernel.source_file, kernel.source_line)
        loaded = _load(obj, key)
        cache_write(path, obj.read_bytes(), (".c", source))
        return loaded
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
