"""Backends whose device_count() is not an int >= 0."""

from hal.backend import Backend, hookimpl

from . import Counted

api_version = (1, 0)


class StrCount(Counted):
    name = "strcount"
    count = "2"


class NegativeCount(Counted):
    name = "negativecount"
    count = -1


@hookimpl
def hal_backends() -> list[Backend]:
    return [StrCount(), NegativeCount()]
