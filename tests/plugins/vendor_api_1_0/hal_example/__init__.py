"""The plugin module hal loads through the ``hal`` entry point.

It declares the vendor API version it was written against and returns its
backends from the ``hal_backends`` hook. Keep this import cheap: hal imports
every plugin when devices are first listed.
"""

from hal.hookspecs import hookimpl

from .backend import ExampleBackend

api_version = (1, 0)
"""hal's vendor API (hal.API_VERSION) this plugin targets: same major, minor <= hal's."""


@hookimpl
def hal_backends() -> list[ExampleBackend]:
    return [ExampleBackend()]
