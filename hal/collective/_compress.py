"""Compressed all-reduce: block-scaled integer codes with error feedback.

The codec. Values are cut into blocks of :data:`BLOCK` elements; each block has one float32
scale, ``max |v| / L`` (L = 127 for "int8", 7 for "int4"), and each value becomes the integer
nearest ``v / scale``, clipped to [-L, L]: one byte per value (int8) or half a byte (int4, two
per byte). Decoding multiplies back, so each value is off by at most ``scale / 2`` (plus the
rounding of one float multiply). A block holding a NaN or an infinity decodes to NaN: a bad
value shows up as one, never as a plausible number.

The algorithm (the same functions run on the host path and in remote workers, so both give
the same bits). Each rank's data is split into n parts; part j belongs to rank j.

1. ``contribute``: rank i adds its residual to its data and encodes every part; the residual
   becomes what the encoding lost. Part j goes to rank j.
2. ``reduce_part``: rank j decodes the n contributions to part j, sums them in rank order,
   encodes the sum and adds what that encoding lost to its residual's part j.
3. ``assemble``: every rank decodes the n encoded sums: the result, the same bits everywhere.

With residuals (error feedback) every loss is carried into the next call, so the losses
telescope: over T calls, the sum of the results differs from the sum of the exact results by
the residuals of the last call, at most ``n + 1`` half-scales per element however large T is.
Each rank sends and receives ``2 (n - 1) / n`` of the encoded data, as a ring does, in two
rounds instead of ``2 (n - 1)`` (what a high-latency link wants).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

LEVELS = {"int8": 127, "int4": 7}
"""Largest code of each scheme (symmetric: codes run from -L to L)."""
SCHEMES = tuple(LEVELS)
BLOCK = 256
"""Values per scale: 4 bytes of scale per 256 values costs 1.6% over int8's 256 bytes."""
DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


@dataclass(frozen=True)
class Packed:
    """Encoded values: the codes (int8: one per byte; int4: two per byte, offset by 8) and one
    float32 scale per block."""

    scheme: str
    count: int
    codes: np.ndarray
    scales: np.ndarray

    @property
    def nbytes(self) -> int:
        """Bytes on the wire."""
        return int(self.codes.nbytes + self.scales.nbytes)


def packed_nbytes(count: int, scheme: str) -> int:
    """The wire size of ``count`` encoded values (what :attr:`Packed.nbytes` will be)."""
    blocks = -(-count // BLOCK)
    codes = count if scheme == "int8" else (count + 1) // 2
    return codes + 4 * blocks


def encode(values: np.ndarray, scheme: str) -> Packed:
    """Block-scaled integer codes of the 1-D ``values``."""
    level, count = LEVELS[scheme], values.size
    grid = _blocks(values)
    with np.errstate(invalid="ignore", over="ignore"):
        peak = np.maximum(grid.max(axis=1), -grid.min(axis=1))
        scales = (peak / level).astype(np.float32)
        finite = np.isfinite(scales)
        usable = finite & (scales > 0)
        inverse = np.where(usable, 1 / np.where(usable, scales, 1), 0).astype(values.dtype)
        scaled = grid * inverse[:, None]
    scaled[~finite] = 0  # NaN * 0 is NaN; those blocks decode through their NaN scale
    np.rint(scaled, out=scaled)
    np.clip(scaled, -level, level, out=scaled)
    scales[~finite] = np.nan
    small = scaled.astype(np.int8).reshape(-1)[:count]
    if scheme == "int4":
        nibbles = (small + 8).astype(np.uint8)
        if count % 2:
            nibbles = np.append(nibbles, np.uint8(8))
        return Packed(scheme, count, nibbles[0::2] | (nibbles[1::2] << 4), scales)
    return Packed(scheme, count, small.view(np.uint8), scales)


def decode(packed: Packed, dtype: np.dtype[np.floating] | type[np.floating]) -> np.ndarray:
    """The values ``packed`` stands for, in ``dtype``."""
    if packed.scheme == "int4":
        pairs = np.empty(packed.codes.size * 2, np.int8)
        pairs[0::2] = packed.codes & 0x0F
        pairs[1::2] = packed.codes >> 4
        pairs -= 8
        codes = pairs[:packed.count]
    else:
        codes = packed.codes.view(np.int8)
    grid = _blocks(codes).astype(dtype)
    grid *= packed.scales.astype(dtype)[:, None]
    out: np.ndarray = grid.reshape(-1)[:packed.count]
    return out


def _blocks(values: np.ndarray) -> np.ndarray:
    """``values`` as rows of :data:`BLOCK`, the last padded with zeros (a view where it fills them)."""
    blocks = -(-values.size // BLOCK)
    if values.size == blocks * BLOCK:
        return values.reshape(blocks, BLOCK)
    padded = np.zeros(blocks * BLOCK, values.dtype)
    padded[:values.size] = values
    return padded.reshape(blocks, BLOCK)


def split(values: np.ndarray, n: int) -> list[np.ndarray]:
    """The n parts of 1-D ``values`` (views), part j belonging to rank j."""
    return np.array_split(values, n)


def own_part(residual: np.ndarray | None, n: int, rank: int) -> np.ndarray | None:
    """The part of a rank's residual that it owns (a view), or None without error feedback."""
    return None if residual is None else split(residual, n)[rank]


def contribute(data: np.ndarray, residual: np.ndarray | None, n: int, scheme: str) -> list[Packed]:
    """Step 1 for one rank: its data (plus residual) encoded part by part; ``residual``, if
    given, becomes what the encoding lost."""
    total = data + residual if residual is not None else data
    packed = [encode(part, scheme) for part in split(total, n)]
    if residual is not None:
        residual[...] = total - np.concatenate([decode(p, data.dtype) for p in packed])
    return packed


def reduce_part(incoming: Sequence[Packed], residual_part: np.ndarray | None, dtype: np.dtype[np.floating]) -> Packed:
    """Step 2 for the owner of a part: the rank-ordered sum of its n contributions, encoded;
    what that encoding lost goes into ``residual_part`` (the owner's residual there)."""
    total = decode(incoming[0], dtype)
    for p in incoming[1:]:
        total += decode(p, dtype)
    out = encode(total, incoming[0].scheme)
    if residual_part is not None:
        residual_part += total - decode(out, dtype)
    return out


def assemble(parts: Sequence[Packed], out: np.ndarray) -> None:
    """Step 3 on every rank: the decoded sums, part after part, into the 1-D ``out``."""
    out[...] = np.concatenate([decode(p, out.dtype) for p in parts])


def moved(count: int, n: int, scheme: str) -> list[int]:
    """Bytes each rank sends and receives: its n - 1 foreign parts out and back, and its own
    part in from n - 1 ranks and out to them."""
    sizes = [packed_nbytes(count // n + (j < count % n), scheme) for j in range(n)]  # np.array_split's parts
    total = sum(sizes)
    return [2 * (total - mine) + 2 * (n - 1) * mine for mine in sizes]
