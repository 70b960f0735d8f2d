"""Launch geometry shared by the portable kernels.

Kernels here are built per dtype (and per compile-time size) by cached
factories: the frontend resolves a factory's closure names (``T``, ``B``,
a ``@hal.func``) as constants, so one source serves float32 and float64.
Kernel modules must not use ``from __future__ import annotations``: the
parameter annotations (``hal.Ptr[T]``) have to be evaluated where the
closure is visible.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ...kernel.types import ScalarType

if TYPE_CHECKING:
    from ..._device import Device

MAX_GROUPS = 4096
"""Grid-stride kernels launch at most this many work-groups; each thread then loops."""


def scalar_type(dtype: np.dtype[Any]) -> ScalarType:
    return ScalarType.from_dtype(dtype)


def pow2_block(device: Device, want: int) -> int:
    """The largest power of two <= ``want`` that the device allows in one work-group."""
    limit = min(want, device.info.max_block_size, device.info.max_block_dims[0])
    return 1 << (limit.bit_length() - 1)


def stride_groups(device: Device, n: int, block: int) -> int:
    """Work-groups of a grid-stride launch over ``n`` items."""
    return max(1, min(-(-n // block), MAX_GROUPS, device.info.max_grid_dims[0]))
