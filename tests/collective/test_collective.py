"""hal.collective on local devices of different backends (the host path), its checks, the
backend hook and the profile records."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

import hal
from hal.collective import CollectiveCall

from ..core.fakes import FakeBackend, register_backend

DEVICES = ("cpu:0", "fake:0", "fake:1")  # host-visible and not, two backends


def _arrays(data: Sequence[np.ndarray]) -> list[hal.Array]:
    return [hal.device(spec).array(d) for spec, d in zip(DEVICES, data)]


@pytest.mark.parametrize(("op", "fn"), [("sum", np.add.reduce), ("max", np.maximum.reduce),
                                        ("min", np.minimum.reduce)])
def test_all_reduce_in_place_on_every_device(op: str, fn: np.ufunc) -> None:
    rng = np.random.default_rng(0)
    data = [rng.integers(-50, 50, (5, 7)).astype(np.int32) for _ in DEVICES]
    arrays = _arrays(data)
    hal.collective.all_reduce(arrays, op=op)
    for a in arrays:
        np.testing.assert_array_equal(a.numpy(), fn(data))


def test_all_reduce_sees_queued_writes_and_its_result_is_ready_on_every_queue() -> None:
    arrays = _arrays([np.zeros(1000, np.float32)] * 3)
    for a in arrays:
        a.device.queue().fill(a, 1.5)  # not synchronised: the collective waits for it
    hal.collective.all_reduce(arrays)
    out = hal.device("fake:1").empty((1000,), np.float32)
    q = hal.device("fake:1").queue()
    q.copy(out, arrays[2])  # a new queue sees the result without a wait
    q.synchronize()
    assert (out.numpy() == 4.5).all()


def test_broadcast_all_gather_reduce_scatter() -> None:
    data = [np.arange(6, dtype=np.float64).reshape(3, 2) * (i + 1) for i in range(3)]
    arrays = _arrays(data)
    gathered = hal.collective.all_gather(arrays)
    assert [g.shape for g in gathered] == [(9, 2)] * 3 and gathered[1].device.spec == "fake:0"
    for g in gathered:
        np.testing.assert_array_equal(g.numpy(), np.concatenate(data))
    scattered = hal.collective.reduce_scatter(arrays)
    assert [s.shape for s in scattered] == [(1, 2)] * 3
    for i, s in enumerate(scattered):
        np.testing.assert_array_equal(s.numpy(), sum(data)[i:i + 1])
    hal.collective.broadcast(arrays, root=2)
    for a in arrays:
        np.testing.assert_array_equal(a.numpy(), data[2])


def test_given_outputs_and_0d_and_one_device() -> None:
    arrays = _arrays([np.array(i, np.int64) for i in range(3)])
    out = [a.device.empty((3,), np.int64) for a in arrays]
    assert hal.collective.all_gather(arrays, out=out) == out
    np.testing.assert_array_equal(out[0].numpy(), [0, 1, 2])
    single = [hal.device("cpu").array(np.arange(4, dtype=np.int32))]
    hal.collective.all_reduce(single)
    np.testing.assert_array_equal(single[0].numpy(), np.arange(4))


def test_arguments_are_checked_once_with_what_to_do() -> None:
    cpu, fake = hal.device("cpu"), hal.device("fake:0")
    x, y = cpu.zeros((4,), np.float32), fake.zeros((4,), np.float32)
    with pytest.raises(hal.InvalidArgumentError, match="one array per device"):
        hal.collective.all_reduce([x, cpu.zeros((4,), np.float32)])
    with pytest.raises(hal.InvalidArgumentError, match="one shape and dtype"):
        hal.collective.all_reduce([x, fake.zeros((5,), np.float32)])
    with pytest.raises(hal.InvalidArgumentError, match="op must be one of sum, max, min"):
        hal.collective.all_reduce([x, y], op="mean")
    with pytest.raises(hal.InvalidArgumentError, match="root must be"):
        hal.collective.broadcast([x, y], root=2)
    with pytest.raises(hal.InvalidArgumentError, match="do not split into 2 equal parts"):
        hal.collective.reduce_scatter([cpu.zeros((3,), np.float32), fake.zeros((3,), np.float32)])
    with pytest.raises(hal.InvalidArgumentError, match="8 elements"):
        hal.collective.all_gather([x, y], out=[cpu.zeros((8,), np.float32), fake.zeros((4,), np.float32)])
    with pytest.raises(hal.InvalidArgumentError, match="list of hal.Arrays"):
        hal.collective.all_reduce(x)  # type: ignore[arg-type]
    y.free()
    with pytest.raises(hal.InvalidHandleError):
        hal.collective.all_reduce([x, y])


def test_profile_records_bytes_per_device() -> None:
    arrays = _arrays([np.ones(256, np.float32)] * 3)
    with hal.profile() as prof:
        hal.collective.all_reduce(arrays)
    records = [r for r in prof.records if r.kind == "collective"]
    assert [(r.name, r.device, r.nbytes) for r in records] == [("all_reduce", spec, 2048) for spec in DEVICES]


class _Hooked(FakeBackend):
    """A backend that moves collectives itself (records what it was asked), or declines."""

    name = "hooked"
    calls: list[CollectiveCall] = []
    decline = False

    def collective(self, call: CollectiveCall) -> list[int] | None:
        self.calls.append(call)
        if self.decline:
            return None
        for arg in call.outputs:  # "moves" the data: every output becomes 7
            arg.buffer.data[arg.offset:arg.offset + arg.size * call.dtype.itemsize].view(call.dtype)[:] = 7  # type: ignore[attr-defined]
        return [123] * len(call.devices)


register_backend(_Hooked, "hooked")


def test_a_backend_hook_runs_collectives_among_its_own_devices() -> None:
    a, b = hal.device("hooked:0").zeros((4,), np.int32), hal.device("hooked:1").full((4,), 1, np.int32)
    _Hooked.calls.clear()
    with hal.profile() as prof:
        hal.collective.all_reduce([a, b], op="max")
    (call,) = _Hooked.calls
    assert call.kind == "all_reduce" and call.op == "max" and call.dtype == np.int32 and len(call.devices) == 2
    assert (b.numpy() == 7).all() and [r.nbytes for r in prof.records if r.kind == "collective"] == [123, 123]
    _Hooked.decline = True
    try:
        hal.collective.all_reduce([a, b])  # declined: the host path runs
    finally:
        _Hooked.decline = False
    assert (a.numpy() == 14).all()
    mixed = [a, hal.device("cpu").full((4,), 1, np.int32)]
    _Hooked.calls.clear()
    hal.collective.all_reduce(mixed)  # two backends: no hook is asked
    assert not _Hooked.calls and (mixed[1].numpy() == 15).all()
