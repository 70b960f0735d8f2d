"""simgpu and forward progress: a spin that cannot progress is a DeviceFault, not a hang; a
timeout names the kernel that is running (not the last one queued) and aborts it; the worker
thread then serves later commands and the device stays usable."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import hal


@hal.kernel
def wait_for_next(flags: hal.Ptr[hal.i32]):
    """Waits for a work-group of higher id: against the forward-progress rule."""
    g = hal.group_id(0)
    if hal.local_id(0) == 0:
        if g + 1 < hal.num_groups(0):
            while hal.atomic_add(flags, g + 1, 0, order="acquire") == 0:
                pass
        hal.atomic_exchange(flags, g, 1, order="release")


@hal.kernel
def counting_spin(flags: hal.Ptr[hal.i32], tries: hal.Ptr[hal.i32]):
    """The same wait, counting its tries: each iteration changes a variable, so only a timeout ends it."""
    g = hal.group_id(0)
    t = 0
    if hal.local_id(0) == 0:
        if g + 1 < hal.num_groups(0):
            while hal.atomic_add(flags, g + 1, 0, order="acquire") == 0:
                t += 1
        hal.atomic_exchange(flags, g, 1, order="release")
    tries[g] = t


@hal.kernel
def bump(x: hal.Ptr[hal.i32]):
    x[hal.global_id(0)] += 1


def test_waiting_for_a_later_work_group_is_a_fault_and_the_queue_goes_on(a100: hal.Device) -> None:
    q = a100.queue()
    x = a100.zeros((4,), np.int32)
    wait_for_next[8, 64, q](a100.zeros((8,), np.int32))
    bump[1, 4, q](x)
    with pytest.raises(hal.DeviceFault, match=r"kernel 'wait_for_next' at .*test_progress.py:\d+: this while loop "
                                              r"cannot make progress.*lower linear id"):
        q.synchronize(timeout=60)
    q.synchronize()
    assert x.numpy().tolist() == [1] * 4


def test_a_timeout_names_the_running_kernel_and_aborts_it(a100: hal.Device) -> None:
    q = a100.queue()
    x = a100.zeros((4,), np.int32)
    counting_spin[4, 32, q](a100.zeros((4,), np.int32), a100.zeros((4,), np.int32))
    bump[1, 4, q](x)  # the last kernel queued: not the one a timeout should name
    with pytest.raises(hal.DeviceTimeout, match="it is running kernel 'counting_spin'; the running command was "
                                               "aborted"):
        q.synchronize(timeout=0.5)
    with pytest.raises(hal.DeviceFault, match="kernel 'counting_spin' at .*: aborted in this while loop"):
        q.synchronize(timeout=60)
    assert x.numpy().tolist() == [1] * 4  # the command after it ran
    busy = threading.active_count()
    start = time.process_time()
    time.sleep(0.3)
    assert time.process_time() - start < 0.25, "the simulator thread keeps burning a core"
    assert threading.active_count() == busy
    bump[1, 4, q](x)  # and the device is usable
    q.synchronize()
    assert x.numpy().tolist() == [2] * 4


def test_queues_on_several_threads_keep_their_own_faults(a100: hal.Device) -> None:
    """Each thread's queue raises its own kernel's fault (host reads, which wait for every queue of
    the device, come after the threads)."""
    results: dict[int, str] = {}
    ys = [a100.zeros((4,), np.int32) for _ in range(4)]

    def one(k: int) -> None:
        q = a100.queue()
        if k % 2:
            wait_for_next[4, 32, q](a100.zeros((4,), np.int32))
        bump[1, 4, q](ys[k])
        try:
            q.synchronize(timeout=60)
            results[k] = "ok"
        except hal.DeviceFault as e:
            q.synchronize()
            results[k] = f"fault {'wait_for_next' in str(e)}"

    threads = [threading.Thread(target=one, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert results == {0: "ok", 1: "fault True", 2: "ok", 3: "fault True"}
    assert [y.numpy().tolist() for y in ys] == [[1] * 4] * 4
