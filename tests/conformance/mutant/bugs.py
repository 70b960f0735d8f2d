"""The bugs the reference backend can plant, one switch each (``HAL_MUTANT=<name>``, read on every
use, so one process can run the suite against each in turn), and where in the suite each should be
caught: the device it needs and the ``-k`` selection of the (unchanged) suite that is run."""

from __future__ import annotations

import os
from dataclasses import dataclass

ENV = "HAL_MUTANT"


@dataclass(frozen=True)
class Bug:
    planted: str
    """What the backend then gets wrong."""
    select: str
    """``pytest -k`` expression choosing the suite's tests that must catch it."""
    device: str = "mutant:0"
    """The real-looking device, or ``mutant:1`` for the simulated one (timing bugs)."""


BUGS: dict[str, Bug] = {
    # byte offsets ignored, one command kind at a time
    "copy_src_offset": Bug("copies read from byte 0 of the source buffer", "test_views"),
    "copy_dst_offset": Bug("copies write to byte 0 of the destination buffer", "test_views"),
    "read_offset": Bug("host reads start at byte 0 of the buffer", "test_views"),
    "write_offset": Bug("host writes land at byte 0 of the buffer", "test_views"),
    "fill_offset": Bug("fills start at byte 0 of the buffer", "test_views"),
    "launch_offset": Bug("kernel pointer arguments point at byte 0 of their buffers", "test_views"),
    # profiling, memory, queues and events
    "device_s": Bug("profile records' device_s is never filled in", "test_profile"),
    "no_oom": Bug("past its real capacity the allocator hands out memory that another block uses",
                  "test_filling_the_device"),
    "oom_wrong_error": Bug("an exhausted allocator raises the driver's RuntimeError", "test_filling_the_device"),
    "noop_wait": Bug("q.wait(event) does nothing", "test_queues or test_cross_queue_chains"),
    "one_byte_fill": Bug("fills repeat the first byte of the pattern (memset)", "test_queues"),
    "swallowed_faults": Bug("kernel faults are dropped instead of raised by synchronize", "test_kernels"),
    "zero_event_times": Bug("every event's device time is 0", "test_queues or test_timing"),
    "noop_synchronize": Bug("synchronize and drain return at once", "test_queues or test_ordering"),
    "early_events": Bug("an event completes once the command before it has started",
                        "test_events_complete_only_after_the_work_before_them or test_queues"),
    "idle_lies": Bug("idle() says True while commands are in flight", "test_host_reads_see_writes_of_every_queue"),
    "stale_scalars": Bug("a kernel keeps the scalar arguments of its first launch", "test_kernels"),
    "stale_reads": Bug("host reads return the data of the last host write, missing later device writes",
                       "test_queues"),
    # native operators
    "gemm_beta": Bug("gemm ignores beta (overwrites out)", "test_ops"),
    "int8_saturate": Bug("int8 gemm saturates to the int32 range instead of wrapping", "test_ops"),
    "conv2d_flipped": Bug("conv2d flips the filter (a convolution, not a cross-correlation)", "test_ops"),
    # the simulated device's timing model
    "timing_flat": Bug("every command costs the same simulated time, whatever its size", "test_timing",
                       "mutant:1"),
    "timing_wallclock": Bug("simulated time is the host's wall time", "test_timing", "mutant:1"),
    "no_counters": Bug("profile records carry no model counters", "test_timing", "mutant:1"),
}


def active(name: str) -> bool:
    """Whether bug ``name`` is planted now."""
    return os.environ.get(ENV, "") == name
