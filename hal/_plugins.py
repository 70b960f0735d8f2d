"""Plugin discovery: pluggy at start-up, then plain objects.

Every entry point in the group ``hal`` is imported on first use of the
registry, its ``api_version`` checked, and its ``hal_backends`` hook called.
A plugin that fails at any step is recorded with its error (``hal backends``
shows it) and the others keep working: it may raise anything but
KeyboardInterrupt (``sys.exit()`` included), return something that is not a
list of :class:`~hal.backend.Backend`, or report a device count that is not an
int >= 0. After discovery, devices are reached through dictionaries: no hook
runs on the hot path.

Discovery order is deterministic and the first registration of a backend name
wins, so a plugin can never replace a backend silently: first the plugins
bundled with hal-sdk (in the order of its entry_points.txt), then those of
every other distribution by (distribution, entry-point name) whatever the
order of ``sys.path``, then those added with ``hal.register_plugin`` in call
order. A later backend (or plugin) of a name already taken is an error row
that names both plugins.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pluggy

from ._errors import DeviceNotFoundError, HalError, PluginError
from .backend import API_VERSION, Backend, _hooks

if TYPE_CHECKING:
    from pydantic import BaseModel

    from .backend import DeviceImpl

ENTRY_POINT_GROUP = "hal"
BUNDLED = "hal-sdk"
"""The distribution whose plugins are discovered first."""
IN_PROCESS = "registered in-process"
"""The origin of plugins added with ``hal.register_plugin`` (discovered last)."""


@dataclass(frozen=True)
class BackendStatus:
    """One row of ``hal.backends()``: a backend, or a plugin that failed before naming any."""

    name: str
    plugin: str
    version: str
    api_version: tuple[int, int] | None
    status: str
    """"loaded", "disabled" or "error"."""
    error: str | None = None
    device_count: int = 0

    @property
    def ok(self) -> bool:
        return self.status == "loaded"


@dataclass(frozen=True)
class EntryPoint:
    """One ``name = module[:attr]`` line of the ``hal`` group, with the distribution that declares it."""

    name: str
    target: str
    distribution: str

    @property
    def origin(self) -> str:
        """Where the plugin comes from, for messages that must tell two plugins of one name apart."""
        return f"bundled with {BUNDLED}" if self.distribution == BUNDLED else f"from distribution {self.distribution}"

    def load(self) -> Any:
        module, _, attr = self.target.partition(":")
        obj: Any = importlib.import_module(module.strip())
        for part in attr.strip().split(".") if attr.strip() else ():
            obj = getattr(obj, part)
        return obj


def entry_points(group: str, path: Sequence[str] | None = None) -> list[EntryPoint]:
    """Every entry point in ``group`` of the distributions on ``path`` (default ``sys.path``), in
    discovery order: hal-sdk's first, then the others by (distribution, name).

    The same distributions as ``importlib.metadata`` finds (the first of a name on the path wins)
    at a fraction of its start-up cost: importing importlib.metadata alone costs about 30 ms, a
    fifth of hal's start-up budget.
    """
    found: dict[str, list[EntryPoint]] = {}
    for directory in sys.path if path is None else path:
        try:
            entries = sorted(os.scandir(directory or "."), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            if not entry.name.endswith((".dist-info", ".egg-info")):
                continue
            stem = entry.name.rsplit(".", 1)[0]  # "hal_sdk-0.1.0"
            dist = stem.split("-", 1)[0].lower().replace("_", "-")
            if dist in found:
                continue
            found[dist] = []
            try:
                with open(os.path.join(entry.path, "entry_points.txt"), encoding="utf-8") as f:
                    text = f.read()
            except OSError:
                continue
            found[dist] = [EntryPoint(name, target, dist) for name, target in _parse_group(text, group)]
    bundled = found.pop(BUNDLED, [])
    return bundled + sorted((ep for eps in found.values() for ep in eps), key=lambda ep: (ep.distribution, ep.name))


def _parse_group(text: str, group: str) -> list[tuple[str, str]]:
    out = []
    current = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = line.strip("[]").strip()
        elif current == group and "=" in line:
            name, _, value = (part.strip() for part in line.partition("="))
            out.append((name, value.split("[")[0].strip()))
    return out


def _given(plugin: object) -> Callable[[], object]:
    """The loader of an in-process plugin: the object itself."""
    return lambda: plugin


def _disabled() -> set[str]:
    return {name.strip() for name in os.environ.get("HAL_PLUGINS_DISABLED", "").split(",") if name.strip()}


def check_api_version(plugin: str, declared: Any) -> tuple[int, int]:
    """Accept the same major and a minor <= the core's; otherwise say who must upgrade."""
    core = f"{API_VERSION[0]}.{API_VERSION[1]}"
    if (not isinstance(declared, tuple) or len(declared) != 2
            or not all(isinstance(v, int) for v in declared)):
        raise PluginError(f"plugin {plugin!r} must declare api_version = (major, minor) as two ints, "
                          f"got {declared!r}; this hal's vendor API is {core}")
    major, minor = declared
    if major != API_VERSION[0]:
        raise PluginError(f"plugin {plugin!r} targets hal vendor API {major}.{minor}, but this hal provides "
                          f"{core}: major versions must match; port the plugin to API {API_VERSION[0]}.x "
                          f"or install a hal whose API major is {major}")
    if minor > API_VERSION[1]:
        raise PluginError(f"plugin {plugin!r} needs hal vendor API {major}.{minor}, newer than this hal's "
                          f"{core}; upgrade hal-sdk, or build the plugin against API {core}")
    return (major, minor)


def _is_count(value: Any) -> bool:
    """A device count is an int >= 0; bool is refused even though it is an int subclass."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _wrong_result(value: Any, kind: type | None = None) -> str | None:
    """What is wrong with a hook's result, which must be a list (or tuple) of ``kind`` instances."""
    if not isinstance(value, (list, tuple)):
        return f"{_show(value)}, not a list"
    for item in value:
        if kind is not None and not isinstance(item, kind):
            return f"a list holding {_show(item)}, not a {kind.__module__}.{kind.__qualname__} instance"
    return None


def _show(value: Any) -> str:
    text = repr(value)
    return f"{text[:60]}... ({type(value).__name__})" if len(text) > 60 else f"{text} ({type(value).__name__})"


class Registry:
    """The loaded plugins and their backends; built once, on first use."""

    def __init__(self, discover: Callable[[], Sequence[EntryPoint]] = lambda: entry_points(ENTRY_POINT_GROUP)
                 ) -> None:
        self._discover = discover
        self._lock = threading.Lock()
        self._extra: list[tuple[str, object]] = []
        self._loading: int | None = None
        """The thread that runs discovery, while it runs."""
        self._clear()

    def _clear(self) -> None:
        """Forget every plugin: the state before discovery (and after an interrupted one)."""
        self._loaded = False
        self.manager = pluggy.PluginManager("hal")
        self.manager.add_hookspecs(_hooks)
        self.backends: dict[str, Backend] = {}
        """The usable backends by name."""
        self.rows: list[BackendStatus] = []
        """Every row of ``hal.backends()``, in discovery order."""
        self._owners: dict[str, BackendStatus] = {}
        """Backend name -> the row that registered it first (loaded, or failed to count its devices)."""
        self._origins: dict[str, str] = {}
        """Plugin name -> where it comes from, for the message when a second plugin takes the name."""
        self._ops: list[Any] | None = None

    def register(self, plugin: object, name: str) -> None:
        """Add an in-process plugin (tests, notebooks); it is loaded like an entry point, after them."""
        with self._lock:
            self._extra.append((name, plugin))
            if self._loaded:
                self._load_one(name, IN_PROCESS, _given(plugin))

    def ensure_loaded(self) -> None:
        if self._loaded:
            return
        if self._loading == threading.get_ident():  # would deadlock on the lock below
            raise PluginError("a plugin looked up backends or devices while it was being discovered (at "
                              "import or in hal_backends()); do that in open_device or later")
        with self._lock:
            if self._loaded:
                return
            self._loading = threading.get_ident()
            try:
                for ep in self._discover():
                    self._load_one(ep.name, ep.origin, ep.load)
                for name, plugin in self._extra:
                    self._load_one(name, IN_PROCESS, _given(plugin))
            except BaseException:  # KeyboardInterrupt: the next call starts afresh, not half-loaded
                self._clear()
                raise
            finally:
                self._loading = None
            self._loaded = True

    def status(self, name: str) -> BackendStatus | None:
        """The row of backend ``name``: the one that registered it, else a failed plugin of that name."""
        return self._owners.get(name) or next((r for r in self.rows if r.name == name), None)

    def device_count(self, name: str) -> int:
        """Devices of the loaded backend ``name``."""
        return self._owners[name].device_count

    def _load_one(self, name: str, origin: str, load: Callable[[], Any]) -> None:
        if name in _disabled():
            self.rows.append(BackendStatus(name, name, "", None, "disabled", "disabled by HAL_PLUGINS_DISABLED"))
            return
        if name in self._origins:
            self._fail(name, None, f"plugin {name!r} ({origin}) has the name of plugin {name!r} "
                                   f"({self._origins[name]}), which was discovered first and is used; rename "
                                   f"one of the two entry points in the {ENTRY_POINT_GROUP!r} group")
            return
        self._origins[name] = origin
        try:
            module = load()
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # SystemExit too: a broken plugin must not end the process
            self._fail(name, None, f"failed to import: {_describe(exc)}; install the plugin's dependencies, "
                                   "or import optional vendor SDKs inside functions so that the plugin loads "
                                   "and reports 0 devices where the SDK is missing")
            return
        declared = getattr(module, "api_version", None)
        try:
            api = check_api_version(name, declared)
        except PluginError as exc:
            self._fail(name, declared, str(exc))
            return
        try:
            self.manager.register(module, name=name)
        except Exception as exc:
            self._fail(name, api, f"pluggy refused the plugin: {_describe(exc)}; its hooks must match "
                                  "the hooks of hal.backend")
            return
        problem = None
        try:
            results = [impl.function() for impl in self._impls("hal_backends", name)]
            wrong = next(filter(None, (_wrong_result(r, Backend) for r in results)), None)
            if wrong is not None:
                problem = f"hal_backends() returned {wrong}; it must return a list of hal.backend.Backend instances"
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            problem = (f"{_describe(exc)}; the hal_backends() hook must return its backends without raising "
                       "(defer work to open_device)")
        if problem is not None:
            self.manager.unregister(module)  # none of its hooks runs later (hal_ops included)
            self._fail(name, api, f"failed to initialise: {problem}")
            return
        self._ops = None  # a new plugin may bring operators
        for backend in (b for r in results for b in r):
            self._add_backend(name, api, backend)

    def _add_backend(self, plugin: str, api: tuple[int, int], backend: Backend) -> None:
        """Register one backend under its name, unless the name is disabled, taken or its count is bad."""
        try:
            bname, version = backend.name, backend.version
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            self._fail(plugin, api, f"backend {type(backend).__name__} has no usable name: {_describe(exc)}; "
                                    "set the class attributes name and version")
            return
        if not isinstance(bname, str) or not bname or any(c in bname for c in ":, \t"):
            self._fail(plugin, api, f"backend {type(backend).__name__} has the name {bname!r}; a backend name "
                                    "is a non-empty string without ':', ',' or spaces (it starts device specs)")
            return
        if bname in _disabled():
            self.rows.append(BackendStatus(bname, plugin, version, api, "disabled",
                                           "disabled by HAL_PLUGINS_DISABLED"))
            return
        owner = self._owners.get(bname)
        if owner is not None:
            self.rows.append(BackendStatus(
                bname, plugin, version, api, "error",
                f"backend name {bname!r} of plugin {plugin!r} ({self._origins[plugin]}) is already registered by "
                f"plugin {owner.plugin!r} ({self._origins[owner.plugin]}), which was discovered first and is "
                f"used; rename the backend of plugin {plugin!r}, or uninstall one of the two"))
            return
        problem = None
        try:
            count = backend.device_count()
            if not _is_count(count):
                problem = f"device_count() returned {_show(count)}"
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            problem = _describe(exc)
        if problem is not None:
            self._claim(BackendStatus(bname, plugin, version, api, "error", f"device discovery failed: {problem}; "
                                      "device_count() must return an int >= 0 without raising: 0 when no driver "
                                      "or device is present"))
            return
        self.backends[bname] = backend
        self._claim(BackendStatus(bname, plugin, version, api, "loaded", None, count))

    def _claim(self, row: BackendStatus) -> None:
        self._owners[row.name] = row
        self.rows.append(row)

    def _fail(self, plugin: str, api: Any, error: str) -> None:
        """An error row for a plugin that failed before naming a backend (it claims no backend name)."""
        self.rows.append(BackendStatus(plugin, plugin, "", api if isinstance(api, tuple) else None, "error", error))

    def _impls(self, hook: str, plugin: str | None = None) -> list[Any]:
        impls = getattr(self.manager.hook, hook).get_hookimpls()
        return [i for i in impls if plugin is None or i.plugin_name == plugin]

    def ops_impls(self) -> list[Any]:
        """Every native operator implementation registered through the ``hal_ops`` hook (called once
        per plugin, on first use: operator modules load only when an operator is dispatched)."""
        self.ensure_loaded()
        with self._lock:
            if self._ops is None:
                self._ops = []
                for impl in self._impls("hal_ops"):
                    try:
                        result = impl.function()
                    except KeyboardInterrupt:
                        raise
                    except BaseException as exc:
                        self._fail(impl.plugin_name, None, f"hal_ops hook failed: {_describe(exc)}; its backends "
                                                           "still work, with the portable operators")
                        continue
                    wrong = _wrong_result(result)
                    if wrong is not None:
                        self._fail(impl.plugin_name, None, f"hal_ops() returned {wrong}; it must return a list "
                                                           "of hal.ops.OpImpl (its backends still work, with "
                                                           "the portable operators)")
                        continue
                    self._ops.extend(result)
            return self._ops


def open_device(backend: Backend, index: int, options: BaseModel | None, spec: str) -> DeviceImpl[Any]:
    """``backend.open_device`` whose failure is a hal error naming the backend and the device.

    A hal error the backend raised passes through; a LookupError (the device went away) becomes
    DeviceNotFoundError; anything else (SystemExit included) a PluginError. All chain the original.
    """
    try:
        return backend.open_device(index, options)
    except (HalError, KeyboardInterrupt):
        raise
    except BaseException as exc:
        what = f"backend {backend.name!r} could not open device {spec}: {_describe(exc)}"
        if isinstance(exc, LookupError):
            raise DeviceNotFoundError(f"{what}; the device is gone: see `hal devices`") from exc
        raise PluginError(f"{what}; check the device and its driver, or report it to the plugin's vendor "
                          f"(HAL_PLUGINS_DISABLED={backend.name} hides the backend)") from exc


def _describe(exc: BaseException) -> str:
    import traceback  # only for a plugin that failed

    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" (at {frame.filename}:{frame.lineno})" if frame else ""
    exits = " (the plugin called sys.exit(): a plugin must raise, never end the process)" \
        if isinstance(exc, SystemExit) else ""
    return f"{type(exc).__name__}: {exc}{where}{exits}"


registry = Registry()
