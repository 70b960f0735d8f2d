"""The plugin module of the reference backend, registered in-process as an entry point would be."""

from __future__ import annotations

import sys

import hal
from hal.backend import API_VERSION, Backend, NativeOp, hookimpl

api_version = API_VERSION


@hookimpl
def hal_backends() -> list[Backend]:
    from .backend import MutantBackend

    return [MutantBackend()]


@hookimpl
def hal_ops() -> list[NativeOp]:
    from .ops import native_ops

    return native_ops()


def register() -> None:
    hal.register_plugin(sys.modules[__name__], "mutant")
