"""hal_remote: hal devices hosted by Ray workers, used exactly like local ones (``remote:<i>``).

See README.md for the protocol, batching, how kernels travel, collectives and failures."""

from __future__ import annotations

from hal.backend import Backend, hookimpl

from ._backend import RemoteBackend

api_version = (1, 6)


@hookimpl
def hal_backends() -> list[Backend]:
    """One backend: a device per entry of ``HAL_REMOTE`` (default: two workers, each with its CPU)."""
    return [RemoteBackend()]
