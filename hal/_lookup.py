"""``hal.backends()``, ``hal.devices()``, ``hal.device(spec, **options)``."""

from __future__ import annotations

import os
import threading
from typing import Any

from ._device import Device
from ._errors import DeviceNotFoundError, InvalidArgumentError
from ._plugins import BackendStatus, registry

_devices: dict[tuple[str, int, str], Device] = {}
_lock = threading.Lock()


def backends() -> list[BackendStatus]:
    """Every discovered backend or plugin, loaded or not, with its status and error."""
    registry.ensure_loaded()
    return sorted(registry.rows, key=lambda s: (not s.ok, s.name))


def no_device_reason(name: str) -> str | None:
    """Why loaded backend ``name`` has no device, where it says (a driver backend's ``reason``)."""
    registry.ensure_loaded()
    reason = getattr(registry.backends.get(name), "reason", None)
    return reason if isinstance(reason, str) else None


def devices() -> list[Device]:
    """Every usable device of every loaded backend (with default options)."""
    registry.ensure_loaded()
    out = []
    for name in registry.backends:
        for index in range(registry.device_count(name)):
            out.append(_open(name, index, None, {}))
    return out


def device(spec: str | Device | None = None, **options: Any) -> Device:
    """The device ``"<backend>[:<index>]"``; default ``$HAL_DEVICE``, else ``"cpu"``. Options
    go to the backend's pydantic model; an unknown option is an InvalidArgumentError."""
    if isinstance(spec, Device):
        return spec
    if spec is None:
        spec = os.environ.get("HAL_DEVICE") or "cpu"
    if not isinstance(spec, str):
        raise InvalidArgumentError(f"a device spec is a string like 'cpu' or 'simgpu:1', got {spec!r}")
    name, _, index_text = spec.strip().partition(":")
    try:
        index = int(index_text) if index_text else 0
    except ValueError:
        raise DeviceNotFoundError(f"bad device spec {spec!r}: the part after ':' must be a device index; "
                                  f"{_available()}") from None
    registry.ensure_loaded()
    backend = registry.backends.get(name)
    if backend is None:
        status = registry.status(name)
        why = f" (backend {name!r} is {status.status}: {status.error})" if status else ""
        raise DeviceNotFoundError(f"no device {spec!r}{why}; {_available()}")
    count = registry.device_count(name)
    if not 0 <= index < count:
        raise DeviceNotFoundError(f"no device {spec!r}: backend {name!r} has {count} device(s); {_available()}")
    validated = None
    if options:
        model = backend.options_model()
        if model is None:
            raise InvalidArgumentError(f"backend {name!r} takes no options, got {sorted(options)}")
        from pydantic import ValidationError

        try:
            validated = model(**options)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'options'}: {e['msg']}"
                                 for e in exc.errors())
            known = ", ".join(model.model_fields)
            raise InvalidArgumentError(f"bad options for {name!r}: {problems}. Known options: {known}") from None
    return _open(name, index, validated, options)


def _open(name: str, index: int, validated: Any, options: dict[str, Any]) -> Device:
    key = (name, index, validated.model_dump_json() if validated is not None else "")
    dev = _devices.get(key)
    if dev is None:
        with _lock:
            dev = _devices.get(key)
            if dev is None:
                backend = registry.backends[name]
                spec = f"{name}:{index}"
                if options:
                    spec += "(" + ",".join(f"{k}={v}" for k, v in sorted(options.items())) + ")"
                dev = Device(backend, index, validated, spec)
                _devices[key] = dev
    return dev


def _available() -> str:
    specs = [f"{n}:{i}" for n in registry.backends for i in range(registry.device_count(n))]
    return "available devices: " + (", ".join(specs) if specs else "none (see `hal backends`)")


def _after_fork_in_child() -> None:
    """A child process after fork() opens fresh devices (the parent's are orphaned by the core);
    locks another thread held at the fork are made anew, and a discovery it was running restarts."""
    global _lock
    _devices.clear()
    _lock = threading.Lock()
    registry._lock = threading.Lock()
    if registry._loading is not None:
        registry._clear()
        registry._loading = None
