"""The data set: scikit-learn's bundled handwritten digits (1,797 8x8 images, no download).

Split and batch order come from one numpy RNG seed on the host, so every
device sees the same weights, the same batches, in the same order.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

import hal

CLASSES = 10


@dataclass(frozen=True)
class Digits:
    """Train/test split of the digits, pixels scaled to [0, 1], labels one-hot as float32."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def features(self) -> int:
        return int(self.x_train.shape[1])

    def batches(self, batch: int, epoch: int, seed: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Shuffled full batches of (x, one-hot y) for one epoch; the last partial batch is
        dropped so every launch has the same shape."""
        order = np.random.default_rng((seed, epoch)).permutation(len(self.x_train))
        eye = np.eye(CLASSES, dtype=np.float32)
        for start in range(0, len(order) - batch + 1, batch):
            idx = order[start:start + batch]
            yield np.ascontiguousarray(self.x_train[idx]), eye[self.y_train[idx]]

    def steps_per_epoch(self, batch: int) -> int:
        return len(self.x_train) // batch


def load_digits(test_fraction: float = 0.2, seed: int = 0, limit: int | None = None) -> Digits:
    """The split digits; ``limit`` keeps only the first samples of the shuffled set (tests)."""
    try:
        from sklearn.datasets import load_digits as sk_load
    except ImportError:
        raise hal.UnsupportedError("hal demo needs scikit-learn for its data set; install it with "
                               "pip install 'hal-sdk[demo]'", feature="scikit-learn") from None
    data = sk_load()
    x = (data.data / 16.0).astype(np.float32)
    y = data.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))[:limit]
    n_test = max(1, int(round(len(order) * test_fraction)))
    test, train = order[:n_test], order[n_test:]
    return Digits(x[train], y[train], x[test], y[test])
