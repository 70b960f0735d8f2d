"""Emulated links: the token-bucket model driven by a clock of the test's own, how a link is
named (HAL_REMOTE, the device option), and that a worker's link charges what the model says
for what it sends (accounting, never wall time)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from hal_remote._link import Bucket, Link, split_entry

import hal

from .test_worker import _alloc, _worker


def test_the_bucket_sends_a_burst_at_once_then_at_line_rate() -> None:
    link = Link(bandwidth=1000.0, latency=0.05, burst=500)
    b = Bucket(link, now=10.0)
    assert b.send(300, now=10.0) == pytest.approx(10.05)  # within the burst: latency only
    assert b.send(400, now=10.0) == pytest.approx(10.0 + 200 / 1000 + 0.05)  # 200 tokens left, 200 at line rate
    assert b.send(100, now=10.1) == pytest.approx(10.2 + 0.1 + 0.05)  # the line is busy until 10.2
    assert b.send(2000, now=20.0) == pytest.approx(20.0 + 1500 / 1000 + 0.05)  # refilled to the burst only
    assert (b.bytes, b.messages) == (2800, 4)
    assert b.seconds == pytest.approx(0.05 + 0.25 + 0.25 + 1.55)


def test_links_are_named_in_bits_per_second_and_a_latency() -> None:
    assert Link.parse("100mbit/50ms") == Link(12.5e6, 0.05) == Link.parse(" 100Mbit , 50ms ")
    assert Link.parse("1.5gbit/200us") == Link(1.5e9 / 8, 200 * 1e-6)
    assert split_entry("simgpu:1@10kbit/1s") == ("simgpu:1", Link(1250.0, 1.0))
    assert split_entry("cpu") == ("cpu", None)
    for bad in ("100mbit", "fast/1ms", "0mbit/1ms", "1mbit/1ms/2", "1mbyte/1ms"):
        with pytest.raises(hal.InvalidArgumentError, match="e.g. '100mbit/50ms'"):
            Link.parse(bad)
    with pytest.raises(hal.InvalidArgumentError, match="bad options for 'remote'.*bad link 'fast'"):
        hal.device("remote:0", link="fast")


def test_a_paced_ring_step_waits_as_the_model_says() -> None:
    w = _worker("cpu")
    _alloc(w, 1, 4096 * 4)
    link = Link(bandwidth=4e6, latency=0.004, burst=1024)
    w.set_link(link)
    step = (("dst", (1, 0, 4096 * 4), (1, 0, 4096 * 4), "<f4", 1, None, None), None, 0, True)  # a swap's send
    sent, _ = asyncio.run(w.collective(3, step, None, None))
    assert sent is not None and sent.nbytes == 4096 * 4
    nbytes, messages, seconds = w.link_stats()
    assert (nbytes, messages) == (4096 * 4, 1)
    assert seconds == pytest.approx((4096 * 4 - link.burst) / link.bandwidth + link.latency, rel=1e-6)


def test_a_remote_device_with_a_link_charges_its_sends(pair: list[hal.Device]) -> None:
    linked = hal.device("remote:1", link="80mbit/10ms")
    assert linked is not pair[1] and "emulated 80 Mbit/s, 10 ms link" in linked.info.name
    arrays = [pair[0].array(np.ones(40_000, np.float32)), linked.array(np.full(40_000, 2, np.float32))]
    hal.collective.all_reduce(arrays)
    assert (arrays[1].numpy() == 3).all()
    link = Link.parse("80mbit/10ms")
    stats = linked.impl.worker.link_stats.remote()  # type: ignore[attr-defined]
    nbytes, messages, seconds = linked.impl.ray.get(stats)  # type: ignore[attr-defined]
    assert (nbytes, messages) == (160_000, 1)  # two ranks swap arrays: one message
    assert seconds == pytest.approx((160_000 - link.burst) / link.bandwidth + link.latency, rel=1e-6)
    assert pair[0].impl.ray.get(pair[0].impl.worker.link_stats.remote()) == (0, 0, 0.0)  # type: ignore[attr-defined]
