"""The pluggy hook specifications of hal; plugins register under the entry-point group ``hal``.

Hooks run at start-up only (discovery). A launch calls the backend's objects
directly, never through a hook.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from .backend import Backend

hookspec = pluggy.HookspecMarker("hal")
hookimpl = pluggy.HookimplMarker("hal")


@hookspec
def hal_backends() -> list[Backend]:  # type: ignore[empty-body]
    """The backends this plugin provides."""


@hookspec
def hal_ops() -> list[Any]:  # type: ignore[empty-body]
    """Native operator implementations (``hal.ops.OpImpl``): each names its operator, the
    backends it serves and a priority; the highest priority that accepts a device wins."""
