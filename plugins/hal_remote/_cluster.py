"""The Ray side of the driver: which devices the workers host, the cluster and the workers.

Ray is imported here only, and only when a remote device is opened: listing devices reads
``HAL_REMOTE`` and nothing more. With ``RAY_ADDRESS`` set, hal joins that cluster; if the
program already called ``ray.init``, hal uses its cluster; otherwise hal starts a local one on
first use, which Ray stops at exit (its own ``atexit`` handler, plus a reaper process should
the driver die), and which listens on loopback only (see README.md, "Trust model").
"""

from __future__ import annotations

import os
import re
import threading
from functools import cache
from importlib.util import find_spec
from typing import TYPE_CHECKING, Any

from hal.backend import DeviceNotFoundError, UnsupportedError, trusted_cache_dir

if TYPE_CHECKING:
    from types import ModuleType

DEFAULT = "cpu,cpu"
"""Two workers, each hosting its own CPU device."""
LOOPBACK = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
"""Set to 0 before Ray is imported, Ray takes 127.0.0.1 as the node's address, and the cluster
hal starts listens on loopback only (by default its processes listen on every interface)."""
SLICE = 0.1
"""Seconds per wait slice: Ctrl-C and a dead worker end any wait within about this."""
_lock = threading.Lock()


def hosted() -> list[str]:
    """What each worker hosts, from ``HAL_REMOTE`` (comma-separated device specs, one per
    worker): ``remote:<i>`` is the i-th. Cheap: called whenever devices are listed. No entry at
    all where Ray is not installed."""
    if find_spec("ray") is None:
        return []
    text = os.environ.get("HAL_REMOTE", DEFAULT)
    return [entry.strip() for entry in text.split(",") if entry.strip()]


def ray() -> ModuleType:
    """Ray, connected to a cluster (see the module's docstring)."""
    import logging
    import sys

    if not os.environ.get("RAY_ADDRESS") and "ray" not in sys.modules:
        os.environ.setdefault(LOOPBACK, "0")  # read when Ray is imported: a cluster of hal's own is this machine's
    try:
        import ray as module
    except ImportError:
        raise UnsupportedError("remote devices run on Ray, which is not installed; pip install "
                               "'hal-sdk[distributed]'", feature="remote") from None
    if not module.is_initialized():
        with _lock:
            if not module.is_initialized():
                os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
                address = os.environ.get("RAY_ADDRESS")
                local: dict[str, Any] = {} if address else {"include_dashboard": False}
                # "local": never a cluster that someone's `ray start` left in /tmp/ray on this machine
                module.init(address=address or "local", log_to_driver=False, logging_level=logging.ERROR, **local)
    _quiet_worker_deaths()
    return module


WORKER_DIED = re.compile(r"A worker died or was killed .* Worker PID: (\d+)", re.S)
_workers: set[int] = set()
"""The process ids of hal's workers: Ray's line about their death is hal's DeviceFault's to tell."""


def watch(pid: int) -> None:
    """Count process ``pid`` as one of hal's workers (see :func:`_quiet_worker_deaths`)."""
    _workers.add(pid)


def _quiet_worker_deaths() -> None:
    """Drop the driver's "(raylet) A worker died or was killed ..." line (about 900 characters, printed
    at a random point of the program's output) for hal's own workers: hal reports their death as a
    DeviceFault naming the device at its next use. Ray's other messages, and those about workers of
    the program's own, print as before. Ray prints them from a thread through
    ``ray._private.worker.print_to_stdstream`` (Ray 2.x); elsewhere this does nothing."""
    try:
        from ray._private import worker as ray_worker
    except ImportError:
        return
    original = getattr(ray_worker, "print_to_stdstream", None)
    if original is None or getattr(original, "hal_quiet", False):
        return

    def print_to_stdstream(data: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        if data.get("pid") == "raylet":
            lines = [line for line in data.get("lines", []) if not _about_our_worker(line)]
            if not lines:
                return None
            data = {**data, "lines": lines}
        return original(data, *args, **kwargs)

    print_to_stdstream.hal_quiet = True  # type: ignore[attr-defined]
    ray_worker.print_to_stdstream = print_to_stdstream


def _about_our_worker(line: str) -> bool:
    died = WORKER_DIED.search(line)
    return died is not None and int(died.group(1)) in _workers


@cache
def _actor_class() -> Any:
    """The Worker as a Ray actor: no CPU reserved (it is a service whose device does the work,
    so several fit anywhere), spread over the cluster's nodes."""
    from ._worker import Worker

    return ray().remote(num_cpus=0, scheduling_strategy="SPREAD")(Worker)


def start_worker(spec: str) -> Any:
    """A new worker hosting ``spec``, with hal's settings (``HAL_*``) as the driver has them."""
    if spec.partition(":")[0] == "remote":
        raise DeviceNotFoundError(f"HAL_REMOTE entry {spec!r} would host a remote device in a remote device; "
                                  "name local backends there, e.g. HAL_REMOTE=cpu,simgpu:1")
    env = {k: v for k, v in os.environ.items() if k.startswith("HAL_") and k != "HAL_REMOTE"}
    if "HAL_CACHE_DIR" in env:  # the worker checks it as every process does; a refusal is told here, where it is seen
        trusted_cache_dir(spec.partition(":")[0])
    return _actor_class().remote(spec, env)


def lost(where: str, exc: BaseException) -> str:
    """What went wrong with a device whose worker (or the whole cluster) went away."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return (f"{where}: its Ray worker is gone ({type(exc).__name__}: {first}); the arrays it held are lost. "
            "The other devices keep working; restart the program to use this one again, and see `ray status` "
            "or the worker's log for why it died")
