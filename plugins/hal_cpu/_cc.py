"""Which C compiler the CPU backend builds kernels with, and why that one.

The order (README, "From a wheel"): ``$HAL_CC`` (hal's own setting: used as given, or an
error), ``$CC`` (skipped when it names no program: images often set it for another toolchain),
``cc``, ``gcc`` and ``clang`` on ``PATH``, then the compiler that pip installs with
``hal-sdk[compiler]``: the ``ziglang`` package's ``zig cc`` (a Clang shipped as a wheel). A
setting may hold arguments (``HAL_CC="zig cc"``, ``HAL_CC="python -m ziglang cc"``).

Finding is cheap (PATH look-ups, no process), so ``hal backends`` shows it; what the compiler is
(GCC or Clang, its version) is asked once, when the first kernel is built.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from hal.backend import UnsupportedError

ON_PATH = ("cc", "gcc", "clang")
INSTALL = "pip install 'hal-sdk[compiler]' (zig cc, a C compiler as a wheel), install gcc or clang, or set HAL_CC"
"""What to do when there is no compiler, in every message that says so."""


@dataclass(frozen=True)
class Found:
    """A compiler found: the words that start it, and why it is the one."""

    command: tuple[str, ...]
    """Program (an absolute path) and leading arguments, e.g. ``("/usr/bin/gcc",)`` or ``(".../zig", "cc")``."""
    why: str

    def describe(self) -> str:
        """The command and why; and the file a link such as ``/usr/bin/cc`` leads to."""
        real = os.path.realpath(self.command[0])
        return f"{shlex.join(self.command)} ({self.why}{'' if real == self.command[0] else f'; {real}'})"


@dataclass(frozen=True)
class Identity:
    """What ``--version`` says the compiler is, for messages and the cache key: GCC and Clang take
    the same flags, and the generated C picks each one's pragmas by the compiler's own macros."""

    family: str
    """``"gcc"`` or ``"clang"`` (zig cc is a Clang)."""
    version: str
    """The first line of ``--version``."""


def _zig(find_spec: Callable[[str], object | None]) -> tuple[str, ...] | None:
    """``zig cc`` of the installed ``ziglang`` package (found without importing it)."""
    spec = find_spec("ziglang")
    origin = getattr(spec, "origin", None)
    if not origin:
        return None
    zig = Path(origin).parent / ("zig.exe" if os.name == "nt" else "zig")
    return (str(zig), "cc") if os.access(zig, os.X_OK) else None


def _words(setting: str, path: str | None) -> tuple[str, ...] | None:
    """A setting's words with its program resolved on ``path``, or None if it names no program."""
    words = shlex.split(setting)
    program = shutil.which(words[0], path=path) if words else None
    return (os.path.abspath(program), *words[1:]) if program else None


def find(environ: Mapping[str, str] | None = None,
         find_spec: Callable[[str], object | None] = importlib.util.find_spec) -> Found:
    """The compiler to use, in the documented order. Raises UnsupportedError naming what was tried."""
    env = os.environ if environ is None else environ
    path = env.get("PATH", os.defpath)
    tried = []
    for var in ("HAL_CC", "CC"):
        setting = env.get(var, "").strip()
        if not setting:
            tried.append(f"${var} (unset)")
            continue
        command = _words(setting, path)
        if command is not None:
            return Found(command, f"${var}")
        if var == "HAL_CC":
            raise UnsupportedError(f"cpu: HAL_CC={setting!r} names no program on PATH; set HAL_CC to a C compiler "
                                   "(e.g. gcc, clang or 'zig cc'), or unset it to let hal look for one", "kernels")
        tried.append(f"$CC={setting!r} (no such program)")
    for name in ON_PATH:
        program = shutil.which(name, path=path)
        if program is not None:
            return Found((os.path.abspath(program),), f"{name} on PATH")
    tried.append(f"{', '.join(ON_PATH)} on PATH ({path or 'empty'})")
    zig = _zig(find_spec)
    if zig is not None:
        return Found(zig, f"the ziglang package: no {'/'.join(ON_PATH)} on PATH")
    tried.append("the ziglang package (not installed)")
    raise UnsupportedError(f"cpu: compiling kernels needs a C compiler; tried {'; '.join(tried)}. {INSTALL}",
                           "kernels")


def identify(found: Found) -> Identity:
    """Run ``--version`` once. Raises UnsupportedError when the compiler does not run."""
    try:
        proc = subprocess.run([*found.command, "--version"], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise broken(found, f"`--version` failed: {exc}") from exc
    if proc.returncode != 0:
        raise broken(found, f"`--version` exited {proc.returncode}", proc.stderr or proc.stdout)
    first = (proc.stdout.strip().splitlines() or [""])[0]
    return Identity("clang" if re.search(r"\bclang\b", proc.stdout) else "gcc", first)


def broken(found: Found, what: str, output: str = "") -> UnsupportedError:
    """The one error for a compiler that is there but does not work; ``output``: what it said."""
    said = f". It said:\n{output.strip()[-2000:]}" if output.strip() else ""
    return UnsupportedError(f"cpu: the C compiler {found.describe()} does not work ({what}); "
                            f"repair it or choose another: {INSTALL}{said}", "kernels")
