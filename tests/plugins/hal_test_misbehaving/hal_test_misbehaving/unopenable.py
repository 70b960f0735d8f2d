"""Its device is listed, but opening it fails."""

from hal.backend import Backend, hookimpl

from . import Counted

api_version = (1, 0)


class Unopenable(Counted):
    name = "unopenable"


@hookimpl
def hal_backends() -> list[Backend]:
    return [Unopenable()]
