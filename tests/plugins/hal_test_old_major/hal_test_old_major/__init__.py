"""A plugin written against hal vendor API 0.9: hal 1.x must refuse it and say why."""

from hal.backend import hookimpl

api_version = (0, 9)


@hookimpl
def hal_backends() -> list[object]:
    raise AssertionError("hal must not call a plugin whose API major differs")
