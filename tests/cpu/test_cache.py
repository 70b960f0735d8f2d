"""The CPU backend's use of the kernel cache: a shared object another user planted is never loaded
(its constructor never runs), an unusable cache costs a warning and no kernel, and threads
compiling the same and different kernels into one cache at once all get the right code."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import threading
import uuid
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import hal
from hal.backend import _cache

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")

PLANTED = r"""
#include <stdio.h>
__attribute__((constructor)) static void planted(void) {
    FILE *f = fopen(MARKER, "w");
    if (f) { fputs("the planted constructor ran", f); fclose(f); }
}
const char hal_kernel_key[65] = KEY;
const int hal_kernel_abi = 1;
void hal_entry(void) {}
"""


def fresh_kernel() -> Any:
    """A kernel no other test compiled (a constant of its own): its key is new to this process."""
    c = int(uuid.uuid4().int % 1000)
    return hal.kernel.from_source(f"""
def k(x: hal.Ptr[hal.i32]):
    i = hal.global_id(0)
    x[i] = i * 3 + {c}
"""), lambda n: np.arange(n, dtype=np.int32) * 3 + c


def run(kernel: Any) -> tuple[np.ndarray, bool]:
    """The kernel's output on a queue of its own, and whether its object came from the cache."""
    dev = hal.device("cpu")
    q = dev.queue()
    x = dev.zeros((16,), np.int32)
    kernel[1, 16, q](x)
    return x.numpy(), dev.compile(kernel).report()["cached"]


def plant(folder: Path, key: str, marker: Path) -> None:
    """What another user can put there: an object exporting the key, with the old and an unkeyed
    sidecar (anything they can compute without this user's secret)."""
    folder.mkdir(parents=True, exist_ok=True)
    src = folder.parent / "planted.c"
    src.write_text(PLANTED)
    so = folder / f"{key}.so"
    subprocess.run(["gcc", "-shared", "-fPIC", f'-DMARKER="{marker}"', f'-DKEY="{key}"', str(src), "-o", str(so)],
                   check=True)
    digest = hashlib.sha256(so.read_bytes()).hexdigest() + "\n"
    (folder / f"{key}.sha256").write_text(digest)
    (folder / f"{key}.so.tag").write_text(digest)


@pytest.mark.parametrize("how", ["world-writable", "other-owner", "trusted-but-unkeyed"])
def test_a_planted_shared_object_is_never_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    from hal_cpu import _compiler

    if how == "other-owner" and not (hasattr(os, "geteuid") and os.geteuid() == 0):
        pytest.skip("giving a directory to another user needs root")
    monkeypatch.setattr(_cache, "_warned", set())
    root, marker = tmp_path / "cache", tmp_path / "marker"
    root.mkdir(mode=0o700)
    monkeypatch.setenv("HAL_CACHE_DIR", str(root))
    kernel, expected = fresh_kernel()
    key = _compiler.cache_key(kernel.ir, False)
    plant(root / "cpu", key, marker)
    if how == "world-writable":
        os.chmod(root, 0o777)
    elif how == "other-owner":
        os.chown(root, 65534, 65534)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out, cached = run(kernel)
    assert not marker.exists()  # never dlopen'd: its constructor never ran
    np.testing.assert_array_equal(out, expected(16))
    assert cached is False
    refused = [w for w in caught if issubclass(w.category, hal.CacheWarning)]
    if how == "trusted-but-unkeyed":
        assert not refused  # the directory is fine; the entry was a miss and is rebuilt
        assert _cache.cache_read(root / "cpu" / f"{key}.so") is not None
    else:
        assert len(refused) == 1 and str(root) in str(refused[0].message)
        assert hashlib.sha256((root / "cpu" / f"{key}.so").read_bytes()).hexdigest() + "\n" == \
            (root / "cpu" / f"{key}.so.tag").read_text()  # left as it was: nothing written there


@pytest.mark.parametrize("damage", ["truncate-rehash", "directory"])
def test_a_damaged_entry_is_a_miss_never_a_crash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str) -> None:
    """A truncated object with a recomputed (unkeyed) hash beside it, which dlopen turns into
    SIGBUS, and an entry replaced by a directory (IsADirectoryError) are rebuilt and stored again."""
    import gc

    from hal_cpu import _compiler

    monkeypatch.setenv("HAL_CACHE_DIR", str(tmp_path))
    kernel, expected = fresh_kernel()
    assert run(kernel)[1] is False
    so = tmp_path / "cpu" / f"{_compiler.cache_key(kernel.ir, False)}.so"
    if damage == "directory":
        so.unlink()
        so.mkdir()
    else:
        half = so.read_bytes()[: so.stat().st_size // 2]
        so.write_bytes(half)
        for sidecar in (so.with_suffix(".sha256"), so.with_name(so.name + ".tag")):
            sidecar.write_text(hashlib.sha256(half).hexdigest() + "\n")
    for hit in (False, True):  # rebuilt, then found again
        kernel._compiled.clear()
        gc.collect()
        out, cached = run(kernel)
        np.testing.assert_array_equal(out, expected(16))
        assert cached is hit
    assert so.is_file()


@pytest.mark.parametrize("where", ["file", "devnull"])
def test_an_unusable_cache_dir_compiles_without_it_with_one_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   where: str) -> None:
    monkeypatch.setattr(_cache, "_warned", set())
    root = Path(os.devnull) if where == "devnull" else tmp_path / "file"
    if where == "file":
        root.write_text("")
    monkeypatch.setenv("HAL_CACHE_DIR", str(root))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            kernel, expected = fresh_kernel()
            out, cached = run(kernel)
            np.testing.assert_array_equal(out, expected(16))
            assert cached is False
    assert [w.category for w in caught] == [hal.CacheWarning]
    assert "not a directory" in str(caught[0].message) and "HAL_CACHE_DIR" in str(caught[0].message)


def test_threads_compiling_the_same_and_different_kernels_into_one_cache(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Four threads, each compiling and running one shared kernel and one of its own, three rounds
    (the first builds, the later ones load from the cache): every result is its own kernel's."""
    import gc

    monkeypatch.setenv("HAL_CACHE_DIR", str(tmp_path / "cache"))
    shared = fresh_kernel()
    own = [fresh_kernel() for _ in range(4)]
    errors: list[str] = []
    cached: list[bool] = []

    def work(t: int) -> None:
        try:
            for kernel, expected in (shared, own[t]):
                out, hit = run(kernel)
                cached.append(hit)
                if not np.array_equal(out, expected(16)):
                    errors.append(f"thread {t}: wrong result")
        except Exception as exc:  # reported below, with the thread
            errors.append(f"thread {t}: {type(exc).__name__}: {exc}")

    for _ in range(3):
        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        for kernel, _ in (shared, *own):
            kernel._compiled.clear()  # the next round compiles again: from the cache
        gc.collect()
    assert not errors
    assert cached.count(False) <= 5 and cached.count(True) >= 16
    assert not [p for p in (tmp_path / "cache" / "cpu").iterdir() if p.name.startswith(".")]


def test_a_cached_object_loads_from_a_private_copy_removed_at_once(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A hit loads the verified bytes from a copy of its own (0600, in the cache's folder, under a
    name never used before), never the entry's file, and removes the copy."""
    import gc
    import stat

    from hal_cpu import _compiler

    monkeypatch.setenv("HAL_CACHE_DIR", str(tmp_path))
    kernel, expected = fresh_kernel()
    assert run(kernel)[1] is False
    loaded: list[tuple[str, int]] = []
    real_load = _compiler._load

    def load(path: Path, key: str) -> Any:
        loaded.append((path.name, stat.S_IMODE(path.stat().st_mode)))
        return real_load(path, key)

    monkeypatch.setattr(_compiler, "_load", load)
    for _ in range(3):
        kernel._compiled.clear()
        gc.collect()
        out, cached = run(kernel)
        np.testing.assert_array_equal(out, expected(16))
        assert cached is True
    key = _compiler.cache_key(kernel.ir, False)
    assert len({name for name, _ in loaded}) == 3 and all(name.startswith(f".{key}-") for name, _ in loaded)
    assert {mode for _, mode in loaded} == {0o600}
    assert not [p for p in (tmp_path / "cpu").iterdir() if p.name.startswith(".")]
