"""Slots: which kernels are configured on the fabric, linked into one bitstream per slot.

Vitis links several kernels into one xclbin (``v++ --link``) as long as they fit the fabric, so
a slot holds a *set* of kernels: switching between kernels of a loaded set costs nothing; adding
a kernel re-links the set and reloads the slot (the caller prices the new set's bitstream).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable

from ._presets import RESOURCES

Resources = dict[str, int]


class Slots:
    """``count`` slots of ``budget`` each; kernels are keyed by IR hash and named for counters."""

    def __init__(self, budget: Resources, count: int) -> None:
        self._budget = budget
        self._slots: list[OrderedDict[str, tuple[str, Resources]]] = [OrderedDict() for _ in range(count)]
        """Each slot's set (key -> (name, resources)), least recently used kernel first; the slots
        themselves least recently used first."""
        self._lock = threading.Lock()

    def configure(self, key: str, name: str, resources: Resources) -> tuple[Resources | None, list[str]]:
        """Make a kernel resident. Returns None if it already was, else the summed resources of the
        slot's new set (to price its reload); and the names of the kernels evicted for it.

        A new kernel joins the most recently used slot it fits next to; if it fits in none, the least
        recently used slot drops its least recently used kernels until it does (a kernel alone
        always fits: synthesis checked it against the budget)."""
        with self._lock:
            for i, slot in enumerate(self._slots):
                if key in slot:
                    slot.move_to_end(key)
                    self._touch(i)
                    return None, []
            fitting = [i for i, s in enumerate(self._slots) if self._fits([*s.values(), (name, resources)])]
            i = fitting[-1] if fitting else 0
            slot, evicted = self._slots[i], []
            while not self._fits([*slot.values(), (name, resources)]):
                evicted.append(slot.popitem(last=False)[1][0])
            slot[key] = (name, resources)
            self._touch(i)
            return _total(slot.values()), evicted

    def _fits(self, kernels: list[tuple[str, Resources]]) -> bool:
        total = _total(kernels)
        return all(total[k] <= self._budget[k] for k in RESOURCES)

    def _touch(self, i: int) -> None:
        self._slots.append(self._slots.pop(i))


def _total(kernels: Iterable[tuple[str, Resources]]) -> Resources:
    """Summed resources of ``(name, resources)`` pairs: the linked set's design."""
    pairs = list(kernels)
    return {k: sum(r[k] for _, r in pairs) for k in RESOURCES}
