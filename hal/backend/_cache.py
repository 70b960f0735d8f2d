"""The kernel cache every backend shares: where it lives, what it trusts, how large it grows.

Where: ``$HAL_CACHE_DIR``, else ``$XDG_CACHE_HOME/hal``, else ``~/.cache/hal`` (the *root*), one
folder per backend; read at each use. An entry is named ``<key>.<kind>``, the key a SHA-256 hex
digest of everything that shapes the binary.

Trust: the cache hands back only what this user wrote. The root must be a directory of this user
that nobody else can write, below directories that only this user or root can change (or that
have the sticky bit, as ``/tmp``), since whoever can write there can plant or swap entries
(write access of the owner's private group, the usual umask 002 set-up, counts as the owner's). hal
creates directories 0700 and files 0600 (a private temporary, then ``os.replace``). Each entry has
a tag ``<key>.<kind>.tag``: HMAC-SHA256 of its name and bytes under a per-user secret (``.secret``
in the root, 32 random bytes, 0600). An entry is read through a descriptor that must be a regular
file of this user, its tag is checked on the bytes read, and only those bytes are handed on (the
CPU backend loads a shared object from a private copy of them): an entry planted, copied from
another key, torn or truncated is a miss and gets rebuilt, found before anything is loaded.

An unusable root (a file, ``/dev/null``, read-only, full) or an untrusted one means compiling
without the cache, with one :class:`~hal.CacheWarning` per root and process saying why.

Size: ``HAL_CACHE_MAX_BYTES`` (default 512 MiB; ``K``/``M``/``G`` suffixes). A hit refreshes its
entry's modification time; once a write takes the cache past the limit, the least recently used
entries go until it fits. A process counts the cache at its first write and adds what it writes
after, so processes writing at once may overshoot by what each wrote since its count. Windows has
no owners and modes to check here (its ACLs decide); the tags apply everywhere.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import re
import shutil
import stat
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from .._errors import CacheWarning, HalError, InvalidArgumentError

DEFAULT_MAX_BYTES = 512 << 20
SECRET = ".secret"
TAG = ".tag"
STALE_S = 3600.0
"""A writer's temporary (``.<key>...``) older than this was left by a process that died: eviction removes it."""
_POSIX = hasattr(os, "geteuid")
_OPEN = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
"""Reading an entry: never through a symbolic link, never blocking on a FIFO planted in its place."""
_SIZE = re.compile(r"(\d+)\s*([kmgt]?)(i?b)?", re.IGNORECASE)
_KEY = re.compile(r"[0-9a-f]{64}")
FIX = ("point HAL_CACHE_DIR at a directory of your own that only you can write (mkdir -m 700 DIR), or unset it "
       "to use ~/.cache/hal")

_lock = threading.Lock()
_warned: set[str] = set()
_secrets: dict[tuple[int, int], bytes] = {}
"""(st_dev, st_ino) of a root -> its secret, read once per process."""
_counted: dict[str, int] = {}
"""Real path of a root -> its bytes as this process last counted them, plus what it wrote since."""


class _Refused(Exception):
    """Why a cache directory is not used (the message completes "the kernel cache DIR is not used: ")."""


@dataclass(frozen=True)
class CacheInfo:
    """What ``hal cache info`` shows: the root, its entries and bytes, the limit, and ``problem``:
    why the cache is not used (None when it is)."""

    dir: Path
    entries: int
    bytes: int
    limit: int
    problem: str | None = None


@dataclass
class _Entry:
    """The files of one key in one backend's folder (the entry, its tag, its source)."""

    files: list[str] = field(default_factory=list)
    size: int = 0
    used: float = 0.0


def cache_root() -> Path:
    """``$HAL_CACHE_DIR``, else ``$XDG_CACHE_HOME/hal``, else ``~/.cache/hal``."""
    root = os.environ.get("HAL_CACHE_DIR")
    if not root:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(base, "hal")
    return Path(root)


def kernel_cache_dir(backend: str) -> Path:
    """Where ``backend`` keeps compiled kernels: a folder of :func:`cache_root` named after it (the
    path, checked or not: reports name it; :func:`trusted_cache_dir` checks it)."""
    return cache_root() / backend


def max_bytes() -> int:
    """``HAL_CACHE_MAX_BYTES`` in bytes (``512M``, ``2GiB`` and plain numbers), default 512 MiB."""
    text = os.environ.get("HAL_CACHE_MAX_BYTES", "").strip()
    if not text:
        return DEFAULT_MAX_BYTES
    match = _SIZE.fullmatch(text)
    if match is None:
        raise InvalidArgumentError(f"HAL_CACHE_MAX_BYTES={text!r} is not a size; give bytes, e.g. 536870912 or 512M")
    return int(match[1]) << (10 * " kmgt".index(match[2].lower() or " "))


def trusted_cache_dir(backend: str) -> Path | None:
    """``backend``'s folder of the cache, created 0700 and checked (see the module's docstring); None,
    after one CacheWarning, where the cache cannot be used or trusted."""
    found = _usable(kernel_cache_dir(backend))
    return None if found is None else found[0]


def cache_read(path: Path) -> bytes | None:
    """The bytes of the entry ``path`` (``kernel_cache_dir(backend) / "<key>.<kind>"``), or None when
    it is missing, not this user's regular file, or its tag does not match: then rebuild it."""
    found = _usable(path.parent)
    if found is None:
        return None
    folder, secret = found
    entry = folder / path.name
    try:
        data = _read_own(entry)
        tag = _read_own(entry.with_name(entry.name + TAG))
    except OSError:
        return None
    if not hmac.compare_digest(tag, _tag(secret, path.name, data)):
        return None
    with contextlib.suppress(OSError):
        os.utime(entry)  # most recently used
    return data


def cache_write(path: Path, data: bytes, source: tuple[str, str] | None = None) -> Path | None:
    """Store ``data`` as the entry ``path`` with its tag (and ``source``: (suffix, text) beside it, for
    reading), each atomically, so processes building one kernel at once all succeed and none reads
    half a file; then evict down to the size limit. None where the cache is not used: that only
    costs the next process a rebuild."""
    found = _usable(path.parent)
    if found is None:
        return None
    folder, secret = found
    limit = max_bytes()
    entry = folder / path.name
    tag = _tag(secret, path.name, data)
    written = len(data) + len(tag)
    try:
        if source is not None:
            text = source[1].encode()
            _write_own(entry.with_suffix(source[0]), text)
            written += len(text)
        _write_own(entry, data)
        _write_own(entry.with_name(entry.name + TAG), tag)
    except OSError as exc:
        _warn(path.parent.parent, f"writing {path.name} failed ({exc.strerror or exc})")
        return None
    _account(folder.parent, written, limit)
    return path


def cache_info() -> CacheInfo:
    """The cache's root, entries, bytes and limit, or why it is not used; creates nothing."""
    root, limit = cache_root(), max_bytes()
    try:
        real = _checked(root, create=False)
    except (_Refused, OSError) as why:
        return CacheInfo(root, 0, 0, limit, _reason(why))
    entries = _scan(real[0])[0] if real is not None else []
    return CacheInfo(root, len(entries), sum(e.size for e in entries), limit)


def cache_clear() -> CacheInfo:
    """Remove every entry (and a dead writer's temporaries) of the cache; what it held before. Refuses, with
    a HalError, a root that is not used (hal leaves another user's files alone)."""
    root, limit = cache_root(), max_bytes()
    try:
        real = _checked(root, create=False)
    except (_Refused, OSError) as why:
        raise HalError(f"hal cache clear: {root} is not hal's kernel cache ({_reason(why)}); nothing was removed. "
                       f"If the files are yours, remove them yourself; then {FIX}") from None
    if real is None:
        return CacheInfo(root, 0, 0, limit)
    with _lock:
        entries, temporaries = _scan(real[0])
        for e in entries:
            for name in e.files:
                _remove(name)
        _remove_stale(temporaries)  # a younger one is a build or a load in progress
        _counted.pop(str(real[0]), None)
    return CacheInfo(root, len(entries), sum(e.size for e in entries), limit)


# ----------------------------------------------------------------- trust
def _usable(folder: Path) -> tuple[Path, bytes] | None:
    """(real path of ``folder``, the root's secret) where ``folder``'s parent is a cache root this
    user may trust; None after one warning where not."""
    root = folder.parent
    try:
        checked = _checked(root, create=True)
        assert checked is not None
        real, st = checked
        secret = _secret(real, (st.st_dev, st.st_ino))
        sub = real / folder.name
        _own_dir(sub, create=True)
    except (_Refused, OSError) as why:
        _warn(root, _reason(why))
        return None
    return sub, secret


def _checked(root: Path, create: bool) -> tuple[Path, os.stat_result] | None:
    """The root's real path and status if this user may trust it (None: it does not exist and
    ``create`` is false); raises _Refused saying why not."""
    if create:
        try:
            root.mkdir(mode=0o700, parents=True, exist_ok=True)
        except FileExistsError:
            raise _Refused("it is not a directory") from None
        except OSError as exc:
            raise _Refused(f"it cannot be created ({exc.strerror or exc})") from None
    real = Path(os.path.realpath(root))
    try:
        st = os.stat(real)
    except FileNotFoundError:
        if create:
            raise
        return None
    except NotADirectoryError:
        raise _Refused("a part of its path is not a directory") from None
    if not stat.S_ISDIR(st.st_mode):
        raise _Refused("it is not a directory")
    _own_dir(real, create=False)
    if _POSIX:
        uid = os.geteuid()
        for parent in real.parents:
            pst = os.stat(parent)
            if pst.st_uid not in (0, uid):
                raise _Refused(f"{parent} belongs to {_user(pst.st_uid)}, who could replace what is in it")
            if _shared(pst) and not pst.st_mode & stat.S_ISVTX:
                raise _Refused(f"{parent} is writable by {_who(pst.st_mode)} without the sticky bit, so they "
                               "could replace what is in it")
    if create and not os.access(real, os.W_OK | os.X_OK):
        raise _Refused("it is not writable")
    return real, st


def _own_dir(path: Path, create: bool) -> None:
    """``path`` is a directory (not a link) of this user that nobody else can write, or _Refused."""
    if create:
        try:
            path.mkdir(mode=0o700, exist_ok=True)
        except FileExistsError:
            raise _Refused(f"{path} is not a directory") from None
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise _Refused(f"{path} is not a directory")
    if _POSIX and st.st_uid != os.geteuid():
        raise _Refused(f"{path} belongs to {_user(st.st_uid)}, not to you ({_user(os.geteuid())})")
    if _POSIX and _shared(st):
        raise _Refused(f"{path} is writable by {_who(st.st_mode)} (mode {stat.S_IMODE(st.st_mode):o})")


def _shared(st: os.stat_result) -> bool:
    """Writable by another user: by others, or by a group that is not the owner's private group
    (a umask of 002 with one group per user, as many distributions set up, makes ``~/.cache``
    group-writable by that user alone)."""
    return bool(st.st_mode & 0o002) or bool(st.st_mode & 0o020) and not _private_group(st.st_uid, st.st_gid)


def _private_group(uid: int, gid: int) -> bool:
    """``gid`` is ``uid``'s own group: its primary group, named after it, with no other members."""
    try:
        import grp
        import pwd

        user, group = pwd.getpwuid(uid), grp.getgrgid(gid)
    except (ImportError, KeyError):
        return False
    return user.pw_gid == gid and group.gr_name == user.pw_name and set(group.gr_mem) <= {user.pw_name}


def _secret(root: Path, ident: tuple[int, int]) -> bytes:
    """The root's secret, made on first use (a private file linked into place, so processes making it
    at once all end up with the first one)."""
    with _lock:
        known = _secrets.get(ident)
    if known is not None:
        return known
    path = root / SECRET
    try:
        data = _read_own(path, private=True)
    except FileNotFoundError:
        fd, tmp = tempfile.mkstemp(prefix=f"{SECRET}-", dir=root)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(os.urandom(32))
            with contextlib.suppress(FileExistsError):  # another process made it first: use theirs
                os.link(tmp, path)
        finally:
            os.unlink(tmp)
        data = _read_own(path, private=True)
    if len(data) != 32:
        raise _Refused(f"{path} is not a secret hal made (remove it, and hal makes a new one)")
    with _lock:
        _secrets[ident] = data
    return data


def _read_own(path: Path, private: bool = False) -> bytes:
    """The bytes of ``path`` if it is a regular file of this user that nobody else can write (or, for
    ``private``, read); PermissionError if it is anything else."""
    fd = os.open(path, _OPEN)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or (_POSIX and (st.st_uid != os.geteuid()
                                                        or st.st_mode & (0o077 if private else 0o022))):
            raise PermissionError(f"{path} is not a private file of this user")
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read()
    finally:
        os.close(fd)


def _write_own(path: Path, data: bytes) -> None:
    """Write ``path`` atomically, 0600; an entry replaced by a directory is replaced back."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        try:
            os.replace(tmp, path)
        except IsADirectoryError:
            shutil.rmtree(path)
            os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _tag(secret: bytes, name: str, data: bytes) -> bytes:
    return hmac.new(secret, name.encode() + b"\0" + data, hashlib.sha256).hexdigest().encode() + b"\n"


def _warn(root: Path, why: str) -> None:
    with _lock:
        if str(root) in _warned:
            return
        _warned.add(str(root))
    warnings.warn(f"hal: the kernel cache {root} is not used: {why}. Kernels compile without it, again in "
                  f"every process; {FIX}", CacheWarning, stacklevel=4)


def _reason(why: BaseException) -> str:
    return str(why) if isinstance(why, _Refused) else f"{getattr(why, 'strerror', None) or why}"


def _user(uid: int) -> str:
    try:
        import pwd

        return f"user {pwd.getpwuid(uid).pw_name} (uid {uid})"
    except (ImportError, KeyError):
        return f"uid {uid}"


def _who(mode: int) -> str:
    return " and ".join(w for w, bit in (("its group", 0o020), ("others", 0o002)) if mode & bit)


# ----------------------------------------------------------------- size
def _account(root: Path, written: int, limit: int) -> None:
    """Count ``written`` bytes against ``limit``; past it, evict least recently used entries."""
    with _lock:
        total = _counted.get(str(root))
        if total is not None and total + written <= limit:
            _counted[str(root)] = total + written
            return
        _counted[str(root)] = _evict(root, limit)


def _evict(root: Path, limit: int) -> int:
    """Remove dead writers' temporaries and the least recently used entries until the cache holds at
    most ``limit`` bytes; the bytes left."""
    entries, temporaries = _scan(root)
    _remove_stale(temporaries)
    total = sum(e.size for e in entries)
    for e in sorted(entries, key=lambda e: e.used):
        if total <= limit:
            break
        for name in e.files:
            _remove(name)
        total -= e.size
    return total


def _remove_stale(temporaries: list[tuple[str, float]]) -> None:
    now = time.time()
    for name, mtime in temporaries:
        if now - mtime > STALE_S:
            _remove(name)


def _scan(root: Path) -> tuple[list[_Entry], list[tuple[str, float]]]:
    """The entries in the backends' folders of ``root`` (files named after a key; nothing else there
    is hal's, so nothing else is counted or removed), and the writers' temporaries with their mtimes."""
    entries: dict[tuple[str, str], _Entry] = {}
    temporaries: list[tuple[str, float]] = []
    for folder in _listing(str(root)):
        if not folder.is_dir(follow_symlinks=False):
            continue
        for item in _listing(folder.path):
            try:
                st = item.stat(follow_symlinks=False)
            except OSError:
                continue
            if item.name.startswith(".") and _KEY.match(item.name, 1):
                temporaries.append((item.path, st.st_mtime))
                continue
            key = item.name.partition(".")[0]
            if _KEY.fullmatch(key):
                e = entries.setdefault((folder.name, key), _Entry())
                e.files.append(item.path)
                e.size += st.st_size
                e.used = max(e.used, st.st_mtime)
    return list(entries.values()), temporaries


def _listing(path: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(path) as it:
            return list(it)
    except OSError:
        return []


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
