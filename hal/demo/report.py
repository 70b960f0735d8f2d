"""Terminal output shared by ``hal demo`` and ``hal bench``: a progress bar and plain tables."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import TextIO


class Progress:
    """``label [#####.....] 12/60 loss 0.41 3.2 s``, redrawn in place on a terminal; on a pipe,
    only the final line is written (logs stay short)."""

    def __init__(self, label: str, total: int, stream: TextIO | None = None, width: int = 24) -> None:
        self.label, self.total, self.width = label, max(total, 1), width
        self.stream = stream if stream is not None else sys.stderr
        self.live = self.stream.isatty()
        self.start = time.perf_counter()
        self.done, self.note = 0, ""

    def update(self, done: int, note: str | None = None) -> None:
        self.done = done
        if note is not None:
            self.note = note
        if self.live:
            self.stream.write("\r" + self._line())
            self.stream.flush()

    def close(self, note: str | None = None) -> None:
        if note is not None:
            self.note = note
        self.stream.write(("\r" if self.live else "") + self._line() + "\n")
        self.stream.flush()

    def _line(self) -> str:
        filled = self.width * self.done // self.total
        bar = "#" * filled + "." * (self.width - filled)
        return (f"{self.label:<12} [{bar}] {self.done:>4}/{self.total} {self.note} "
                f"{time.perf_counter() - self.start:6.1f} s")


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell; numbers (cells starting with a digit) right-aligned."""
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def cell(text: str, w: int) -> str:
        return text.rjust(w) if text[:1].isdigit() or text[:1] == "-" and text[1:2].isdigit() else text.ljust(w)
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(cell(c, w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


def size(nbytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if nbytes < 1024 or unit == "GiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return f"{nbytes:.1f} GiB"
