"""The plugin module hal loads through the ``hal`` entry point: its API version and hooks.

Keep this import cheap: hal imports every plugin when devices are first listed.
"""

from hal.backend import NativeOp, hookimpl

from .backend import RuntimeBackend

api_version = (1, 2)
"""hal's vendor API (hal.API_VERSION) this plugin targets: same major, minor <= hal's."""


@hookimpl
def hal_backends() -> list[RuntimeBackend]:
    return [RuntimeBackend()]


@hookimpl
def hal_ops() -> list[NativeOp]:
    from .ops import native_ops  # loaded on the first hal.ops call

    return native_ops()
