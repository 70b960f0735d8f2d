"""Dispatch: natives by priority, the portable fallback chosen once, UnsupportedError, caching."""

from __future__ import annotations

import types
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import hal
from hal.backend import NativeOp, Operand, QueueImpl, hookimpl
from hal.ops import OpImpl
from hal.ops._dispatch import dispatcher


@pytest.fixture
def registered() -> Iterator[list[OpImpl]]:
    """Impls appended here are registered by ``add`` and removed after the test."""
    impls: list[OpImpl] = []
    yield impls
    for impl in impls:
        hal.ops.unregister(impl)


def add(registered: list[OpImpl], impl: OpImpl) -> OpImpl:
    registered.append(hal.ops.register(impl))
    return impl


def recorder(calls: list[Any], value: float) -> Any:
    """A native gemm that records its call and fills out with ``value`` on the host."""
    def fn(a: hal.Array, b: hal.Array, out: hal.Array, **kwargs: Any) -> None:
        calls.append(kwargs)
        out.device.default_queue.fill(out, value)
    return fn


def test_no_kernels_no_native_is_unsupported(nokernels: hal.Device) -> None:
    x = nokernels.zeros((2, 2))
    for call in (lambda: hal.ops.gemm(x, x), lambda: hal.ops.relu(x), lambda: hal.ops.portable.sum(x, 0)):
        with pytest.raises(hal.UnsupportedError) as info:
            call()
        assert "cannot run on Ops test device 1 (opsfake:1)" in str(info.value)
        assert "runs no kernels and no plugin provides a native" in str(info.value)
        assert info.value.feature == "kernels"


def test_native_serves_a_device_without_kernels(nokernels: hal.Device, registered: list[OpImpl]) -> None:
    calls: list[Any] = []
    add(registered, OpImpl("gemm", recorder(calls, 3.0), backends=frozenset({"opsfake"})))
    a = nokernels.zeros((2, 3))
    b = nokernels.zeros((3, 4))
    out = hal.ops.gemm(a, b, alpha=2)
    assert out.shape == (2, 4)
    np.testing.assert_array_equal(out.numpy(), np.full((2, 4), 3.0, np.float32))
    assert calls == [{"alpha": 2, "beta": 0, "trans_a": False, "trans_b": False,
                      "queue": nokernels.default_queue}]


def test_highest_priority_wins_and_portable_stays_reachable(interp: hal.Device, registered: list[OpImpl]) -> None:
    low: list[Any] = []
    high: list[Any] = []
    add(registered, OpImpl("gemm", recorder(high, 2.0), priority=5))
    add(registered, OpImpl("gemm", recorder(low, 1.0), priority=1))
    a = interp.array(np.eye(2, dtype=np.float32))
    assert hal.ops.gemm(a, a).numpy()[0, 0] == 2.0 and len(high) == 1 and not low
    np.testing.assert_array_equal(hal.ops.portable.gemm(a, a).numpy(), np.eye(2))  # natives bypassed
    hal.ops.unregister(registered.pop(0))
    assert hal.ops.gemm(a, a).numpy()[0, 0] == 1.0


def test_backends_and_accepts_filter(interp: hal.Device, registered: list[OpImpl]) -> None:
    calls: list[Any] = []
    add(registered, OpImpl("gemm", recorder(calls, 1.0), priority=9, backends=frozenset({"someother"})))
    add(registered, OpImpl("gemm", recorder(calls, 1.0), priority=9, accepts=lambda d: d.info.kind == "fpga"))
    a = interp.array(np.eye(2, dtype=np.float32))
    np.testing.assert_array_equal(hal.ops.gemm(a, a).numpy(), np.eye(2))
    assert not calls
    assert dispatcher.choice("gemm", interp) is None


def test_family_impl_serves_every_op_and_exact_op_beats_it(interp: hal.Device, registered: list[OpImpl]) -> None:
    seen: list[str] = []

    def family(op: str, a: Any, b: Any, out: hal.Array, *, queue: hal.Queue) -> None:
        seen.append(f"binary:{op}")

    def exact(op: str, a: Any, b: Any, out: hal.Array, *, queue: hal.Queue) -> None:
        seen.append(f"add:{op}")

    add(registered, OpImpl("binary", family, priority=3))
    add(registered, OpImpl("add", exact, priority=3))
    x = interp.zeros((4,))
    hal.ops.add(x, 1.0)
    hal.ops.sub(x, x)
    hal.ops.relu(x)  # another family: still portable
    assert seen == ["add:add", "binary:sub"]


def test_unsupported_from_the_chosen_native_propagates(interp: hal.Device, registered: list[OpImpl]) -> None:
    def only_add(op: str, *args: Any, **kwargs: Any) -> None:
        raise hal.UnsupportedError(f"this native has no {op}", feature="tensor_ops")

    add(registered, OpImpl("binary", only_add, priority=1))
    x = interp.zeros((4,))
    with pytest.raises(hal.UnsupportedError, match="this native has no mul"):
        hal.ops.mul(x, x)  # never silently falls back to the portable kernel
    np.testing.assert_array_equal(hal.ops.portable.mul(x, 2.0).numpy(), np.zeros(4))


def test_choice_is_made_once_per_op_and_device(interp: hal.Device, registered: list[OpImpl],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    dispatcher.clear_cache()
    made: list[str] = []
    real = dispatcher.choice
    monkeypatch.setattr(dispatcher, "choice", lambda op, dev: made.append(op) or real(op, dev))
    x = interp.zeros((4,))
    for _ in range(3):
        hal.ops.add(x, x, x)
        hal.ops.relu(x, x)
    assert made == ["add", "relu"]
    add(registered, OpImpl("sqrt", lambda *a, **k: None))  # registering invalidates the choices
    hal.ops.add(x, x, x)
    assert made == ["add", "relu", "add"]


def vendor_recorder(calls: list[Any], value: float) -> Any:
    """A vendor NativeOp gemm: it gets the backend's own queue and Operands, and fills out on that queue."""
    def fn(queue: QueueImpl[Any], a: Operand[Any], b: Operand[Any], out: Operand[Any], *, trace: Any,
           **kwargs: Any) -> None:
        assert isinstance(queue, QueueImpl) and all(isinstance(x, Operand) for x in (a, b, out))
        calls.append(kwargs)
        queue.fill(out.buffer, out.offset, out.nbytes, np.float32(value).tobytes(), trace)
    return fn


@pytest.mark.parametrize("vendor", [True, False], ids=["NativeOp", "OpImpl-1.0"])
def test_natives_come_from_the_hal_ops_hook(interp: hal.Device, vendor: bool) -> None:
    enabled: list[bool] = []
    calls: list[Any] = []
    plugin = types.ModuleType("hal_ops_hook_tests")
    plugin.api_version = hal.API_VERSION  # type: ignore[attr-defined]

    @hookimpl
    def hal_ops() -> list[Any]:
        if vendor:
            return [NativeOp("gemm", vendor_recorder(calls, 4.0), priority=50, accepts=lambda info: bool(enabled))]
        return [OpImpl("gemm", recorder(calls, 4.0), priority=50, accepts=lambda d: bool(enabled))]

    plugin.hal_ops = hal_ops  # type: ignore[attr-defined]
    hal.register_plugin(plugin, f"ops_hook_tests_{vendor}")
    hal.backends()  # make sure plugins are loaded
    enabled.append(True)
    dispatcher.clear_cache()
    try:
        a = interp.array(np.eye(2, dtype=np.float32))
        with warnings.catch_warnings(record=True) as caught, hal.profile() as prof:
            warnings.simplefilter("always")
            assert hal.ops.gemm(a, a).numpy()[0, 0] == 4.0 and len(calls) == 1
        deprecated = [w for w in caught if issubclass(w.category, DeprecationWarning) and "OpImpl" in str(w.message)]
        assert bool(deprecated) is not vendor  # a plugin's 1.0 OpImpl still works, with a deprecation warning
        if vendor:  # the core announced the command: its profile record, filled by the backend's queue
            (record,) = [r for r in prof.records if r.name == "gemm"]
            assert record.kind == "op" and record.device_s > 0
    finally:
        enabled.clear()
        dispatcher.clear_cache()


def test_register_checks_its_argument() -> None:
    with pytest.raises(hal.InvalidArgumentError, match="unknown operator 'matmul'"):
        OpImpl("matmul", lambda: None)
    with pytest.raises(hal.InvalidArgumentError, match="takes a hal.ops.OpImpl"):
        hal.ops.register(lambda: None)  # type: ignore[arg-type]
    with pytest.raises(hal.InvalidArgumentError, match="was not registered"):
        hal.ops.unregister(OpImpl("gemm", lambda: None))
