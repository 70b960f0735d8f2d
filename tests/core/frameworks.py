"""PyTorch and JAX memory shared with hal: ``python -m tests.core.frameworks torch|jax`` runs the
checks in a process of its own (their threads must not exist where the test suite forks) and
prints "<framework>: ok"; tests/core/test_interop.py runs it."""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable

import numpy as np

import hal
from hal.kernel.samples import saxpy


@hal.kernel
def double(x: hal.Ptr[hal.f32], n: hal.i32):
    i = hal.global_id(0)
    if i < n:
        x[i] = x[i] * 2.0


def _raises(error: type[Exception], text: str, call: Callable[[], object]) -> None:
    try:
        call()
    except error as exc:
        assert text in str(exc), f"{text!r} not in {exc}"
        return
    raise AssertionError(f"no {error.__name__} ({text})")


def check_torch() -> None:
    import torch

    cpu = hal.device("cpu")
    t = torch.arange(16, dtype=torch.float32)
    x = hal.from_dlpack(t)
    assert x.device is cpu and x.buffer.address == t.data_ptr() and not x.readonly  # type: ignore[attr-defined]
    double[1, 16](x, 16)
    cpu.synchronize()
    assert t.tolist() == [2.0 * i for i in range(16)], "the device's writes are in the tensor"
    t2 = torch.arange(12, dtype=torch.int64).reshape(3, 4)
    y = cpu.asarray(t2, copy=False)
    assert y.shape == (3, 4) and y.dtype == np.int64
    del t2
    gc.collect()
    assert (y.numpy() == np.arange(12).reshape(3, 4)).all(), "the memory lives as long as the hal array"
    for dtype in (torch.int8, torch.uint8, torch.int32, torch.float64, torch.bool):
        z = cpu.asarray(torch.zeros(5, dtype=dtype), copy=False)
        assert z.shape == (5,) and z.numpy().sum() == 0
    strided = torch.arange(8, dtype=torch.float32)[::2]
    assert cpu.asarray(strided).numpy().tolist() == [0, 2, 4, 6]
    _raises(hal.ZeroCopyError, "contiguous", lambda: cpu.asarray(strided, copy=False))
    _raises(hal.InvalidArgumentError, "detach", lambda: cpu.asarray(torch.zeros(2, requires_grad=True)))
    _raises(hal.InvalidArgumentError, "bfloat16", lambda: cpu.asarray(torch.zeros(2, dtype=torch.bfloat16)))
    back = torch.from_dlpack(cpu.array(np.arange(3, dtype=np.float32)))  # and the other way
    assert back.tolist() == [0.0, 1.0, 2.0]


def check_jax() -> None:
    import jax.numpy as jnp

    cpu = hal.device("cpu")
    j = jnp.arange(8, dtype=jnp.float32)
    x = hal.from_dlpack(j, copy=False)
    assert x.readonly and x.buffer.address == j.unsafe_buffer_pointer()  # type: ignore[attr-defined]
    y = cpu.zeros((8,), np.float32)
    saxpy[1, 8](1.0, x, y, 8)
    assert (y.numpy() == np.arange(8)).all(), "kernels read a shared JAX array"
    _raises(hal.InvalidArgumentError, "read-only", lambda: double[1, 8](x, 8))
    w = cpu.asarray(j, copy=True)
    double[1, 8](w, 8)
    assert (w.numpy() == 2 * np.arange(8)).all()
    assert (np.asarray(j) == np.arange(8)).all(), "the JAX array is unchanged"


if __name__ == "__main__":
    {"torch": check_torch, "jax": check_jax}[sys.argv[1]]()
    print(f"{sys.argv[1]}: ok")
