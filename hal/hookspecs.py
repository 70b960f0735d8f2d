"""Deprecated (vendor API 1.2): the hooks moved to :mod:`hal.backend`; import ``hookimpl`` from there.

Kept so that plugins written against API 1.0/1.1 (``from hal.hookspecs import hookimpl``) load
unchanged through 1.x.
"""

from __future__ import annotations

import warnings
from typing import Any

from .backend import _hooks

_MOVED = {"hookimpl", "hookspec", "hal_backends", "hal_ops"}


def __getattr__(name: str) -> Any:
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(f"hal.hookspecs.{name} is deprecated since vendor API 1.2: import it from hal.backend "
                  f"(`from hal.backend import hookimpl`)", DeprecationWarning, stacklevel=2)
    return getattr(_hooks, name)
