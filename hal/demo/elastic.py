"""Local-SGD training whose replicas may die or join (``--sync-every``; the outer step is :mod:`.outer`).

A replica whose device faults (``hal.DeviceFault``: say its worker died) is dropped where the
fault surfaces: an inner step, a read of its losses, or the outer step, which the survivors then
redo (what is lost is the dead replica's inner steps since the last outer step, nothing more).
The survivors share every later batch. A device that joins at step S receives the global
parameters (and the outer momentum) at the first outer step from S on, and contributes from the
next one. Every kill, drop and join is an :class:`Event`: the step, the device, what, when.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TextIO

import numpy as np

import hal

from .data import Digits
from .nn import MLP
from .outer import Outer, OuterOptimizer
from .placement import Placer, Tensor
from .report import Progress
from .train import Config, test_accuracy


@dataclass(frozen=True)
class Event:
    step: int
    kind: Literal["killed", "dropped", "joined"]
    device: str
    detail: str
    wall_s: float
    """Seconds into the run."""


@dataclass(frozen=True)
class Churn:
    """Membership changes to make during a run: at step ``kill_at``, ``kill`` the last replica's
    device (the demo kills its worker process); from step ``join_at``, ``join`` a device."""

    kill_at: int | None = None
    kill: Callable[[hal.Device], str] | None = None
    """Makes the device fail; what it did, for the event."""
    join: hal.Device | None = None
    join_at: int | None = None

    def describe(self) -> str:
        kill = f"last worker killed at step {self.kill_at}" if self.kill is not None else ""
        join = f"{self.join.spec} joining at step {self.join_at}" if self.join is not None else ""
        return " and ".join(p for p in (kill, join) if p)


@dataclass
class _Member:
    device: hal.Device
    placer: Placer
    model: MLP


@dataclass(frozen=True)
class LocalResult:
    losses: list[float]
    accuracy: float
    wall_s: float
    devices: list[str]
    """Every device that took part, joiners last."""
    events: list[Event]
    curve: list[tuple[int, float, float]]
    """(step, seconds into the run, test accuracy of the global model) after every outer step."""


class LocalSGD:
    """One run: replicas on ``devices`` train alone and meet every ``sync_every`` steps."""

    def __init__(self, devices: list[hal.Device], data: Digits, config: Config, sync_every: int, outer: Outer,
                 fallback: hal.Device | None, churn: Churn | None = None) -> None:
        self.data, self.config, self.sync_every = data, config, sync_every
        self.fallback, self.churn = fallback, churn or Churn()
        self.members = [self._member(d) for d in devices]
        self.optimizer = OuterOptimizer(outer, [m.model for m in self.members], devices)
        self.events: list[Event] = []
        self.curve: list[tuple[int, float, float]] = []
        self.devices = [d.spec for d in devices]
        self.start = time.perf_counter()

    def _member(self, device: hal.Device) -> _Member:
        placer = Placer(device, self.fallback)
        return _Member(device, placer, MLP(placer, (self.data.features, *self.config.hidden, 10), self.config.seed))

    def run(self, stream: TextIO | None = None) -> LocalResult:
        config, data = self.config, self.data
        steps_per_epoch = data.steps_per_epoch(config.batch)
        total = steps_per_epoch * config.epochs
        bar = Progress(f"{len(self.members)} devices", total, stream)
        self.start = time.perf_counter()
        losses: list[float] = []
        step = 0
        for epoch in range(config.epochs):
            pending: list[list[tuple[_Member, Tensor]]] = []
            for x, t in data.batches(config.batch, epoch, config.seed):
                step += 1
                if step == self.churn.kill_at and self.churn.kill is not None:
                    victim = self.members[-1].device
                    self._event(step, "killed", victim, self.churn.kill(victim))
                pending.append(self._inner(step, x, t))
                if step % self.sync_every == 0 or step == total:  # the last one: evaluate the global model
                    self._outer(step)
                    first = self.members[0]
                    self.curve.append((step, time.perf_counter() - self.start,
                                       test_accuracy(first.model, first.placer, data)))
                bar.update(step)
            losses += [self._loss(step, read) for read in pending]
            bar.update(bar.done, f"loss {losses[-1]:.4f}")
        accuracy = self.curve[-1][2]
        wall = time.perf_counter() - self.start
        bar.close(f"loss {losses[-1]:.4f} acc {accuracy:.3f}")
        return LocalResult(losses, accuracy, wall, self.devices, self.events, self.curve)

    def _inner(self, step: int, x: np.ndarray, t: np.ndarray) -> list[tuple[_Member, Tensor]]:
        """One inner step of every replica on its shard of the batch."""
        out = []
        for m, rows in zip(list(self.members), np.array_split(np.arange(len(x)), len(self.members))):
            try:
                out.append((m, m.model.train_step(m.placer.tensor(x[rows]), m.placer.tensor(t[rows]),
                                                  self.config.lr, self.config.momentum).losses))
            except hal.DeviceFault as exc:
                self._drop(step, m, exc)
        return out

    def _outer(self, step: int) -> None:
        """The outer step among the replicas still alive; then a joiner's turn."""
        while True:
            try:
                missed = self.optimizer.step([m.model for m in self.members])
                break
            except hal.DeviceFault as exc:
                dead = [m for m in self.members if not _alive(m.device)]
                if not dead:
                    raise
                for m in dead:
                    self._drop(step, m, exc)
                self.optimizer.forget_residuals()  # the failed all-reduce may have half-updated them
        for i in reversed(missed):
            self._drop(step, self.members[i], hal.DeviceFault(f"{self.members[i].device.spec} failed in the "
                                                              "outer step's update"))
        join, at = self.churn.join, self.churn.join_at
        if join is not None and at is not None and step >= at and join.spec not in self.devices:
            member = self._member(join)
            self.optimizer.join(member.model, join)
            self.members.append(member)
            self.devices.append(join.spec)
            self._event(step, "joined", join, "received the global parameters; contributes from the next "
                                              "outer step")

    def _drop(self, step: int, member: _Member, exc: hal.DeviceFault) -> None:
        if member not in self.members:
            return
        i = self.members.index(member)
        del self.members[i]
        self.optimizer.drop(i)
        self._event(step, "dropped", member.device, str(exc).splitlines()[0].partition("; ")[0])
        if not self.members:
            raise hal.DeviceFault(f"every replica's device failed; the last: {exc}") from exc

    def _loss(self, step: int, read: list[tuple[_Member, Tensor]]) -> float:
        """The step's mean loss over the replicas whose losses can still be read."""
        values = []
        for m, losses in read:
            try:
                values.append(losses.numpy())
            except hal.DeviceFault as exc:
                self._drop(step, m, exc)
        return float(np.concatenate(values).mean()) if values else float("nan")

    def _event(self, step: int, kind: Literal["killed", "dropped", "joined"], device: hal.Device,
               detail: str) -> None:
        self.events.append(Event(step, kind, device.spec, detail, time.perf_counter() - self.start))


def _alive(device: hal.Device) -> bool:
    """Whether the device still answers: a one-element round trip."""
    try:
        device.array(np.zeros(1, np.float32)).numpy()
    except hal.DeviceFault:
        return False
    return True
