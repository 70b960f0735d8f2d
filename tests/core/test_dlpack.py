"""hal's own DLPack producer (device memory), checked here through numpy as a consumer of CPU tensors."""

from __future__ import annotations

import gc
from typing import Any

import numpy as np
import pytest

from hal import _dlpack


class _Owner:
    released = 0

    def __del__(self) -> None:
        _Owner.released += 1


class _Producer:
    def __init__(self, capsule: Any) -> None:
        self.capsule = capsule

    def __dlpack__(self, **kwargs: Any) -> Any:
        return self.capsule

    def __dlpack_device__(self) -> tuple[int, int]:
        return (_dlpack.KDL_CPU, 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int8, np.uint32, np.int64, np.bool_])
def test_a_consumer_sees_the_memory_and_releases_the_owner_when_done(dtype: Any) -> None:
    base = np.arange(12).astype(dtype).reshape(3, 4)
    before = _Owner.released
    row = base.itemsize * 4
    view = np.from_dlpack(_Producer(_dlpack.capsule(base.ctypes.data + row, (2, 4), base.dtype, (1, 0), _Owner())))
    np.testing.assert_array_equal(view, base[1:])
    base[1, 0] = 1
    assert view[0, 0] == base[1, 0]  # zero copy
    gc.collect()
    assert _Owner.released == before  # the consumer holds it
    del view
    gc.collect()
    assert _Owner.released == before + 1


def test_an_unconsumed_capsule_releases_its_owner() -> None:
    base = np.zeros(4, np.float32)
    before = _Owner.released
    capsule = _dlpack.capsule(base.ctypes.data, (4,), base.dtype, (1, 0), _Owner())
    del capsule
    gc.collect()
    assert _Owner.released == before + 1


def test_a_type_dlpack_cannot_carry_is_refused() -> None:
    with pytest.raises(Exception, match="DLPack has no type"):
        _dlpack.dtype_code(np.dtype("complex64"))
