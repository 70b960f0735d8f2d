"""The pluggy hooks a plugin implements; plugins register under the entry-point group ``hal``.

Hooks run at start-up only (discovery) and on the first ``hal.ops`` call. A launch calls the
backend's objects directly, never through a hook.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from ._backend import Backend
    from ._ops import NativeOp

hookspec = pluggy.HookspecMarker("hal")
hookimpl = pluggy.HookimplMarker("hal")
"""Decorate a plugin module's ``hal_backends`` / ``hal_ops`` with it."""


@hookspec
def hal_backends() -> list[Backend]:  # type: ignore[empty-body]
    """The backends this plugin provides (cheap: defer device work to ``open_device``)."""


@hookspec
def hal_ops() -> list[NativeOp]:  # type: ignore[empty-body]
    """Native operator implementations (:class:`hal.backend.NativeOp`; API 1.0 plugins may still
    return ``hal.ops.OpImpl``). Called on the first ``hal.ops`` call, not at start-up."""
