"""``hal.profile()`` scoping (moved out of the conformance suite: the core decides what is recorded)."""

from __future__ import annotations

import numpy as np

import hal


def test_no_records_outside_a_profile(fake: hal.Device) -> None:
    with hal.profile() as prof:
        pass
    fake.default_queue.fill(fake.empty((8,), np.float32), 0.0)
    fake.default_queue.synchronize()
    assert prof.records == []
