"""Emulated links: a worker's network link as a token bucket, so one machine shows how a run
over slow, far-apart links behaves. Emulated, not measured: the worker waits as long as the
model says a message takes, on top of whatever the real transfer costs.

The model (plugins/hal_remote/README.md, "Emulated links"): a link has a bandwidth (bytes per
second), a one-way latency and a bucket of ``burst`` bytes. The bucket fills at the bandwidth
up to ``burst``; a message of b bytes leaves when the line is free and the bucket holds b tokens
(its last ``b - tokens`` bytes go at line rate), and arrives ``latency`` after it left.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, field_validator

from hal.backend import InvalidArgumentError

BURST = 64 * 1024
"""Bytes a link sends at once after being idle: a few packets' worth, as a NIC's queue."""
_RATE = {"bit": 1 / 8, "kbit": 1e3 / 8, "mbit": 1e6 / 8, "gbit": 1e9 / 8}
_TIME = {"us": 1e-6, "ms": 1e-3, "s": 1.0}
_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"


@dataclass(frozen=True)
class Link:
    """One worker's link: what it sends is paced to ``bandwidth`` bytes/s and arrives ``latency``
    seconds later."""

    bandwidth: float
    latency: float
    burst: int = BURST

    @classmethod
    def parse(cls, text: str) -> Link:
        """``"100mbit/50ms"`` (or ``"100mbit,50ms"``): a bandwidth in bit, kbit, mbit or gbit per
        second, then a one-way latency in us, ms or s."""
        parts = re.split(r"\s*[/,]\s*", str(text).strip().lower())
        rate, delay = (parts[0], parts[1]) if len(parts) == 2 else ("", "")
        bw = re.fullmatch(_NUMBER + r"\s*(bit|kbit|mbit|gbit)", rate)
        lat = re.fullmatch(_NUMBER + r"\s*(us|ms|s)", delay)
        if bw is None or lat is None or float(bw[1]) <= 0:
            raise InvalidArgumentError(f"bad link {text!r}: give a bandwidth above 0 and a latency, e.g. "
                                       "'100mbit/50ms' (bit, kbit, mbit, gbit per second; us, ms, s)")
        return cls(float(bw[1]) * _RATE[bw[2]], float(lat[1]) * _TIME[lat[2]])

    def __str__(self) -> str:
        return f"{self.bandwidth * 8 / 1e6:g} Mbit/s, {self.latency * 1e3:g} ms"


class Bucket:
    """A link's state: its tokens, when the line is next free, and what it carried. Pure: the
    caller says what time it is, so tests drive it with a clock of their own."""

    def __init__(self, link: Link, now: float) -> None:
        self.link = link
        self.tokens = float(link.burst)
        self.at = now
        """When ``tokens`` was last brought up to date (and the line went free)."""
        self.bytes = 0
        self.messages = 0
        self.seconds = 0.0
        """Time the senders waited for the link, summed over messages."""

    def send(self, nbytes: int, now: float) -> float:
        """Charge a message of ``nbytes`` sent at ``now``; when it arrives."""
        link = self.link
        start = max(now, self.at)
        tokens = min(float(link.burst), self.tokens + (start - self.at) * link.bandwidth)
        done = start + max(0.0, nbytes - tokens) / link.bandwidth
        self.tokens, self.at = max(0.0, tokens - nbytes), done
        arrival = done + link.latency
        self.bytes += nbytes
        self.messages += 1
        self.seconds += arrival - now
        return arrival


class Options(BaseModel):
    """Options of ``hal.device("remote:<i>", ...)``: ``link`` emulates a network link for that
    worker (a device of its own: a worker with the link, beside the one without)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    link: str | None = None

    @field_validator("link")
    @classmethod
    def _parses(cls, value: str | None) -> str | None:
        if value is not None:
            Link.parse(value)
        return value


def split_entry(entry: str) -> tuple[str, Link | None]:
    """A ``HAL_REMOTE`` entry: the hosted device's spec and, after ``@``, its link
    (``cpu@100mbit/50ms``)."""
    spec, at, link = entry.partition("@")
    return spec.strip(), Link.parse(link) if at else None
