"""The kernel cache shared by every backend (hal.backend._cache): which directories it trusts, the
modes it creates, entries bound to their keys, least-recently-used eviction, threads writing and
reading at once, and `hal cache info` / `hal cache clear` as a user runs them."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import pytest

import hal
from hal.backend import _cache, cache_clear, cache_info, cache_read, cache_write, trusted_cache_dir

POSIX = hasattr(os, "geteuid")
ROOT_USER = POSIX and os.geteuid() == 0


def key(n: int) -> str:
    return f"{n:064x}"


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh cache root (not created yet) as HAL_CACHE_DIR, and fresh once-per-process warnings."""
    monkeypatch.setattr(_cache, "_warned", set())
    path = tmp_path / "cache"
    monkeypatch.setenv("HAL_CACHE_DIR", str(path))
    monkeypatch.delenv("HAL_CACHE_MAX_BYTES", raising=False)
    return path


def entry(root: Path, n: int, kind: str = "bin") -> Path:
    return root / "demo" / f"{key(n)}.{kind}"


def test_round_trip_with_private_modes(root: Path) -> None:
    path = entry(root, 1)
    assert cache_read(path) is None
    assert cache_write(path, b"binary", (".src", "text")) == path
    assert cache_read(path) == b"binary"
    if POSIX:
        for p in (root, root / "demo"):
            assert stat.S_IMODE(p.stat().st_mode) == 0o700
        for p in (path, path.with_name(path.name + ".tag"), path.with_suffix(".src"), root / ".secret"):
            assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    assert (root / ".secret").stat().st_size == 32


def test_an_entry_is_bound_to_its_key(root: Path) -> None:
    """Another key's entry copied over this one (bytes and tag) is a miss: A never answers for B."""
    a, b = entry(root, 0xA), entry(root, 0xB)
    cache_write(a, b"program A")
    cache_write(b, b"program B")
    shutil.copyfile(a, b)
    shutil.copyfile(a.with_name(a.name + ".tag"), b.with_name(b.name + ".tag"))
    assert cache_read(b) is None
    assert cache_read(a) == b"program A"


@pytest.mark.parametrize("damage", ["flip", "truncate", "unkeyed-hash", "directory", "symlink", "fifo"])
def test_a_damaged_or_planted_entry_is_a_miss_and_can_be_rewritten(root: Path, damage: str) -> None:
    import hashlib

    path = entry(root, 7)
    data = bytes(range(256)) * 4
    cache_write(path, data)
    tag = path.with_name(path.name + ".tag")
    if damage == "flip":
        path.write_bytes(data[:100] + b"\xff" + data[101:])
    elif damage == "truncate":
        path.write_bytes(data[:500])
    elif damage == "unkeyed-hash":  # what an attacker without the secret can compute
        path.write_bytes(b"planted")
        tag.write_text(hashlib.sha256(b"planted").hexdigest() + "\n")
    elif damage == "directory":
        path.unlink()
        path.mkdir()
        (path / "inside").write_text("x")
    elif damage == "symlink":
        other = root / "elsewhere"
        other.write_bytes(data)
        path.unlink()
        path.symlink_to(other)
    else:
        path.unlink()
        os.mkfifo(path)
    assert cache_read(path) is None  # never an exception, never a hang
    assert cache_write(path, data) == path
    assert cache_read(path) == data


@pytest.mark.parametrize("how", ["world-writable", "group-writable", "other-owner", "ancestor", "file", "devnull"])
def test_an_untrusted_or_unusable_root_is_not_used_with_one_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    how: str) -> None:
    monkeypatch.setattr(_cache, "_warned", set())
    root = tmp_path / "shared"
    if how == "devnull":
        root = Path(os.devnull)
    elif how == "file":
        root.write_text("")
    elif how == "ancestor":  # a directory others may rename our root out of
        tmp_path.joinpath("open").mkdir()
        os.chmod(tmp_path / "open", 0o777)
        root = tmp_path / "open" / "cache"
        root.mkdir(mode=0o700)
    else:
        root.mkdir()
        os.chmod(root, {"world-writable": 0o777, "group-writable": 0o770}.get(how, 0o755))
        if how in ("other-owner", "group-writable"):
            if not ROOT_USER:
                pytest.skip("giving a directory to another user or group needs root")
            os.chown(root, 65534 if how == "other-owner" else os.geteuid(), 65534)
    monkeypatch.setenv("HAL_CACHE_DIR", str(root))
    before = sorted(p.name for p in root.iterdir()) if root.is_dir() else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path = root / "demo" / f"{key(3)}.bin"
        assert cache_write(path, b"x") is None
        assert cache_read(path) is None
        assert trusted_cache_dir("demo") is None
    assert [type(w.message) for w in caught] == [hal.CacheWarning]
    message = str(caught[0].message)
    assert str(root) in message and "HAL_CACHE_DIR" in message
    if root.is_dir():
        assert sorted(p.name for p in root.iterdir()) == before  # nothing written into it
    assert cache_info().problem is not None


def test_a_private_directory_below_the_sticky_tmp_is_trusted(root: Path) -> None:
    assert Path("/tmp").stat().st_mode & stat.S_ISVTX or not POSIX
    assert trusted_cache_dir("demo") == Path(os.path.realpath(root)) / "demo"


@pytest.mark.skipif(not POSIX, reason="owners and modes")
def test_write_access_of_the_owners_private_group_is_the_owners(root: Path) -> None:
    """umask 002 with one group per user (many distributions) makes ~/.cache group-writable."""
    import grp
    import pwd

    user = pwd.getpwuid(os.geteuid())
    group = grp.getgrgid(user.pw_gid)
    if group.gr_name != user.pw_name or set(group.gr_mem) - {user.pw_name}:
        pytest.skip(f"{user.pw_name}'s primary group {group.gr_name} is not a private one")
    root.mkdir(mode=0o700)
    os.chown(root, os.geteuid(), user.pw_gid)
    os.chmod(root, 0o770)
    assert trusted_cache_dir("demo") is not None


def _age(path: Path, seconds: float) -> None:
    for p in path.parent.glob(path.name.partition(".")[0] + "*"):
        t = time.time() - seconds
        os.utime(p, (t, t))


def test_least_recently_used_entries_go_first(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    size = 1000 + 65  # bytes and tag
    monkeypatch.setenv("HAL_CACHE_MAX_BYTES", str(3 * size + 100))
    a, b, c, d = (entry(root, n) for n in (1, 2, 3, 4))
    for age, path in zip((300, 200, 100), (a, b, c)):
        cache_write(path, bytes(1000))
        _age(path, age)
    (root / "demo" / "notes.txt").write_text("not hal's: never counted, never removed")
    assert cache_read(a) == bytes(1000)  # a hit: a is now the most recently used
    cache_write(d, bytes(1000))
    assert [cache_read(p) is not None for p in (a, b, c, d)] == [True, False, True, True]
    assert (root / "demo" / "notes.txt").exists()
    info = cache_info()
    assert (info.entries, info.bytes, info.limit) == (3, 3 * size, 3 * size + 100)


def test_a_dead_writers_temporaries_are_removed_and_a_live_ones_kept(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache_write(entry(root, 1), b"x")
    stale, fresh = root / "demo" / f".{key(9)}.bin-dead", root / "demo" / f".{key(8)}.bin-writing"
    for p in (stale, fresh):
        p.write_bytes(b"half")
    os.utime(stale, (time.time() - 2 * _cache.STALE_S,) * 2)
    monkeypatch.setenv("HAL_CACHE_MAX_BYTES", "0")  # the next write counts the cache again
    cache_write(entry(root, 2), b"y")
    assert not stale.exists() and fresh.exists()
    cache_clear()  # nor does clearing touch a build or load in progress
    assert fresh.exists() and not list((root / "demo").glob(f"{key(2)}*"))


@pytest.mark.parametrize(("text", "value"), [("", 512 << 20), ("1000", 1000), ("64K", 64 << 10), ("2GiB", 2 << 30),
                                             ("512 m", 512 << 20)])
def test_the_size_limit_reads_bytes_and_binary_units(monkeypatch: pytest.MonkeyPatch, text: str, value: int) -> None:
    monkeypatch.setenv("HAL_CACHE_MAX_BYTES", text)
    assert _cache.max_bytes() == value


def test_a_size_limit_that_is_not_a_size_says_what_to_write(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAL_CACHE_MAX_BYTES", "lots")
    with pytest.raises(hal.InvalidArgumentError, match="HAL_CACHE_MAX_BYTES='lots' is not a size.*512M"):
        _cache.max_bytes()


def test_threads_writing_and_reading_the_same_and_different_entries(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Eight threads, each writing and reading one shared key and one of its own, with eviction on:
    a read returns the right bytes or a miss, never another entry's or half of one."""
    monkeypatch.setenv("HAL_CACHE_MAX_BYTES", str(40 << 10))
    errors: list[str] = []

    def work(t: int) -> None:
        for rnd in range(25):
            for n in (0, 1 + t * 100 + rnd % 5):
                want = (n.to_bytes(4, "little") * 512)
                cache_write(entry(root, n), want)
                got = cache_read(entry(root, n))
                if got is not None and got != want:
                    errors.append(f"thread {t}: key {n} read other bytes")

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert not [p for p in (root / "demo").iterdir() if p.name.startswith(".")]  # no temporaries left
    assert cache_info().bytes <= 40 << 10


def hal_cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hal", *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=120)


def test_hal_cache_info_and_clear(root: Path, tmp_path: Path) -> None:
    for n in range(3):
        cache_write(entry(root, n), bytes(100), (".src", "text"))
    (root / "demo" / "notes.txt").write_text("mine")
    env = {**os.environ, "HAL_CACHE_DIR": str(root), "HAL_CACHE_MAX_BYTES": "1M"}
    empty = tmp_path / "empty"
    empty.mkdir()
    info = hal_cli("cache", "info", "--json", env=env, cwd=empty)
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout) == {"dir": str(root), "entries": 3, "bytes": 3 * (100 + 65 + 4),
                                       "limit": 1 << 20, "problem": None}
    cleared = hal_cli("cache", "clear", env=env, cwd=empty)
    assert cleared.returncode == 0 and f"removed 3 entries (507 B) from {root}" in cleared.stdout
    assert cache_info().entries == 0 and (root / "demo" / "notes.txt").read_text() == "mine"


def test_hal_cache_clear_leaves_an_untrusted_directory_alone(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    (shared / "cpu").mkdir(parents=True)
    planted = shared / "cpu" / f"{key(1)}.so"
    planted.write_bytes(b"someone else's")
    os.chmod(shared, 0o777)
    env = {**os.environ, "HAL_CACHE_DIR": str(shared)}
    env.pop("HAL_CACHE_MAX_BYTES", None)
    result = hal_cli("cache", "clear", env=env, cwd=tmp_path)
    assert result.returncode == 1 and "writable by its group and others" in result.stderr
    assert "nothing was removed" in result.stderr and planted.exists()
    info = hal_cli("cache", "info", env=env, cwd=tmp_path)  # the table: the limit, and why it is not used
    assert info.returncode == 0 and "512.0 MiB" in info.stdout and f"not used: {shared} is writable by its group and others (mode 777)" in info.stdout


def test_cache_clear_in_process_reports_what_it_removed(root: Path) -> None:
    cache_write(entry(root, 5), b"abc")
    removed = cache_clear()
    assert (removed.entries, removed.bytes) == (1, 3 + 65)
    assert cache_read(entry(root, 5)) is None
