"""A small neural-network framework on hal: operators with forward and backward passes,
a multilayer perceptron, and SGD with momentum.

Every operator has a fused-kernel implementation (one launch) and, where
``hal.ops`` can express it, a composition of ``hal.ops`` that runs natively on
devices without kernels (the NPU). What cannot be expressed that way
(``relu_grad``, ``softmax_xent``: no compare, exp or log there) goes to the
fallback device; see :mod:`.placement`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

import hal

from . import kernels as K
from .placement import Impl, Op, Placer, Tensor

F32 = np.float32


# ---------------------------------------------------------------- implementations
@cache
def _ones(device: hal.Device, shape: tuple[int, int]) -> hal.Array:
    """A constant of ones, kept per device: with gemm it broadcasts a bias or sums rows."""
    return device.array(np.ones(shape, F32))


def _fused_linear(name: str, kernel: object) -> Impl:
    def fn(dev: hal.Device, x: hal.Array, w: hal.Array, b: hal.Array) -> hal.Array:
        z = hal.ops.gemm(x, w)
        out = dev.empty(z.shape, F32)
        K.launch(kernel, z.size, z, b, out, z.size, z.shape[1], device=dev)
        return out
    return Impl(f"gemm + {name} kernel", fn, (kernel,))


def _ops_linear(dev: hal.Device, x: hal.Array, w: hal.Array, b: hal.Array) -> hal.Array:
    z = hal.ops.gemm(_ones(dev, (x.shape[0], 1)), b)  # every row = b
    hal.ops.gemm(x, w, out=z, beta=1.0)
    return z


def _ops_linear_relu(dev: hal.Device, x: hal.Array, w: hal.Array, b: hal.Array) -> hal.Array:
    z = _ops_linear(dev, x, w, b)
    hal.ops.relu(z, out=z)
    return z


def _matmul(dev: hal.Device, a: hal.Array, b: hal.Array, *, trans_a: bool = False,
            trans_b: bool = False) -> hal.Array:
    return hal.ops.gemm(a, b, trans_a=trans_a, trans_b=trans_b)


def _relu_grad(dev: hal.Device, dh: hal.Array, h: hal.Array) -> hal.Array:
    out = dev.empty(dh.shape, F32)
    K.launch(K.relu_grad, dh.size, dh, h, out, dh.size, device=dev)
    return out


def _sum_rows(dev: hal.Device, dz: hal.Array) -> hal.Array:
    summed: hal.Array = hal.ops.sum(dz, axis=0)
    return summed.reshape(1, dz.shape[1])


def _gemm_sum_rows(dev: hal.Device, dz: hal.Array) -> hal.Array:
    return hal.ops.gemm(_ones(dev, (1, dz.shape[0])), dz)


def _softmax_xent(dev: hal.Device, z: hal.Array, t: hal.Array, *, scale: float | None = None
                  ) -> tuple[hal.Array, hal.Array]:
    """``scale`` multiplies the gradient: 1 / rows (the batch mean) unless given (a shard of a
    data-parallel batch scales by 1 / the whole batch, so the shards' gradients sum to its mean's)."""
    rows, cols = z.shape
    loss, dz = dev.empty((rows,), F32), dev.empty(z.shape, F32)
    K.launch(K.softmax_xent, rows, z, t, loss, dz, rows, cols, 1.0 / rows if scale is None else scale, device=dev)
    return loss, dz


def _fused_sgd(dev: hal.Device, w: hal.Array, v: hal.Array, g: hal.Array, *, lr: float,
               mu: float) -> tuple[hal.Array, hal.Array]:
    w2, v2 = dev.empty(w.shape, F32), dev.empty(w.shape, F32)
    K.launch(K.sgd_momentum, w.size, w, v, g, w2, v2, lr, mu, w.size, device=dev)
    return w2, v2


def _ops_sgd(dev: hal.Device, w: hal.Array, v: hal.Array, g: hal.Array, *, lr: float,
             mu: float) -> tuple[hal.Array, hal.Array]:
    v2 = hal.ops.mul(v, mu)
    hal.ops.add(v2, g, out=v2)
    step = hal.ops.mul(v2, lr)
    return hal.ops.sub(w, step, out=step), v2


LINEAR = Op("linear", (_fused_linear("bias_add", K.bias_add), Impl("gemm + gemm(ones, bias)", _ops_linear)))
LINEAR_RELU = Op("linear_relu", (_fused_linear("bias_relu", K.bias_relu), Impl("gemm + gemm(ones, bias) + relu",
                                                                   _ops_linear_relu)))
MATMUL = Op("matmul", (Impl("gemm", _matmul),))
RELU_GRAD = Op("relu_grad", (Impl("relu_grad kernel", _relu_grad, (K.relu_grad,)),))
BIAS_GRAD = Op("bias_grad", (Impl("sum(axis=0)", _sum_rows), Impl("gemm(ones, dz)", _gemm_sum_rows)))
SOFTMAX_XENT = Op("softmax_xent", (Impl("softmax_xent kernel", _softmax_xent, (K.softmax_xent,)),))
SGD = Op("sgd_momentum", (Impl("sgd_momentum kernel", _fused_sgd, (K.sgd_momentum,)),
                          Impl("mul + add + mul + sub", _ops_sgd)))
OPS = (LINEAR_RELU, LINEAR, SOFTMAX_XENT, MATMUL, BIAS_GRAD, RELU_GRAD, SGD)
"""Every operator of the framework, in the order a training step first calls them."""


# ---------------------------------------------------------------- model
@dataclass(frozen=True)
class Step:
    """What one training step returns: per-example losses (read later, so the step never waits)."""

    losses: Tensor


class MLP:
    """``in -> hidden (ReLU) -> ... -> out`` with softmax cross-entropy; He-initialised on the host."""

    def __init__(self, placer: Placer, sizes: tuple[int, ...], seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.placer = placer
        self.params: list[Tensor] = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
            w = (rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)).astype(F32)
            self.params += [placer.tensor(w), placer.tensor(np.zeros((1, fan_out), F32))]
        self.velocity = [placer.tensor(np.zeros(p.shape, F32)) for p in self.params]

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """Logits and the layer inputs the backward pass needs."""
        run, acts = self.placer, [x]
        layers = len(self.params) // 2
        for i in range(layers):
            op = LINEAR if i == layers - 1 else LINEAR_RELU
            (out,) = run(op, acts[-1], self.params[2 * i], self.params[2 * i + 1])
            acts.append(out)
        return acts[-1], acts[:-1]

    def train_step(self, x: Tensor, onehot: Tensor, lr: float, momentum: float) -> Step:
        losses, grads = self.gradients(x, onehot)
        self.update(grads, lr, momentum)
        return Step(losses)

    def gradients(self, x: Tensor, onehot: Tensor, scale: float | None = None) -> tuple[Tensor, list[Tensor]]:
        """Per-example losses and the gradient of every parameter (of the mean loss, or of the
        losses times ``scale``)."""
        run = self.placer
        logits, acts = self.forward(x)
        losses, dz = run(SOFTMAX_XENT, logits, onehot, scale=scale)
        grads: list[Tensor] = [dz] * len(self.params)
        for i in reversed(range(len(self.params) // 2)):
            (grads[2 * i],) = run(MATMUL, acts[i], dz, trans_a=True)
            (grads[2 * i + 1],) = run(BIAS_GRAD, dz)
            if i:
                (dh,) = run(MATMUL, dz, self.params[2 * i], trans_b=True)
                (dz,) = run(RELU_GRAD, dh, acts[i])
        return losses, grads

    def update(self, grads: list[Tensor], lr: float, momentum: float) -> None:
        """One step of SGD with momentum."""
        for j, g in enumerate(grads):
            self.params[j], self.velocity[j] = self.placer(SGD, self.params[j], self.velocity[j], g, lr=lr,
                                                           mu=momentum)

    def predict(self, x: Tensor) -> np.ndarray:
        logits, _ = self.forward(x)
        return np.asarray(logits.numpy().argmax(axis=1))
