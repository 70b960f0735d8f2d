"""Executable: a kernel compiled for one device; the settings every kernel compiler shares."""

from __future__ import annotations

import hashlib
import os
import tempfile
from abc import ABC
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..kernel.ir import Kernel


class Executable(ABC):
    """What ``DeviceImpl.compile`` returns and ``QueueImpl.launch`` receives; set ``kernel``."""

    kernel: Kernel
    """The typed IR it was compiled from (the interpreter and reports read it)."""

    def report(self) -> Any:
        """Optional: a backend-specific compile report (``exe.report()``: the FPGA's synthesis
        report, say); None if none."""
        return None


def checked_mode() -> bool:
    """``HAL_CHECK`` set and not ``0``: compile bounds checks into kernels (read when a kernel is
    compiled, so one process can build both kinds)."""
    return os.environ.get("HAL_CHECK", "").strip() not in ("", "0")


def kernel_cache_dir(backend: str) -> Path:
    """Where ``backend`` keeps compiled kernels: ``$HAL_CACHE_DIR``, else ``$XDG_CACHE_HOME/hal``,
    else ``~/.cache/hal``, then a folder named after the backend."""
    root = os.environ.get("HAL_CACHE_DIR")
    if not root:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(base, "hal")
    return Path(root) / backend


def cache_read(path: Path) -> bytes | None:
    """A kernel cache entry written by :func:`cache_write`, or None when it is missing or its bytes do not
    match the ``.sha256`` sidecar (a torn or tampered file costs a rebuild, never a bad binary)."""
    try:
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != path.with_suffix(".sha256").read_text().strip():
            return None
        return data
    except OSError:
        return None


def cache_write(path: Path, data: bytes, source: tuple[str, str] | None = None) -> Path | None:
    """Store a cache entry with its ``.sha256`` sidecar (and ``source``: (suffix, text) beside it, for
    reading), each written atomically (a private temporary file, then ``os.replace``), so processes
    building one kernel at once all succeed and none reads half a file. None when the folder is not
    writable: an unusable cache only costs the next process a rebuild."""
    if source is not None:
        _atomic_write(path.with_suffix(source[0]), source[1].encode())
    if _atomic_write(path, data) is None:
        return None
    return _atomic_write(path.with_suffix(".sha256"), (hashlib.sha256(data).hexdigest() + "\n").encode()) and path


def _atomic_write(path: Path, data: bytes) -> Path | None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
        return path
    except OSError:
        return None
