"""A plugin that needs hal vendor API 1.99, newer than this hal: refused with "upgrade hal"."""

from hal.backend import hookimpl

api_version = (1, 99)


@hookimpl
def hal_backends() -> list[object]:
    raise AssertionError("hal must not call a plugin that needs a newer vendor API")
