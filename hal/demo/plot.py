"""Figures for ``--plot``: the demo's loss curves and the bench's rooflines (matplotlib, imported
only when a plot is asked for, and drawn off-screen)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hal

from .bench import BenchPoint, peaks
from .train import DemoResult


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise hal.UnsupportedError("--plot needs matplotlib; install it with pip install 'hal-sdk[demo]'",
                                   feature="matplotlib") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_losses(result: DemoResult, path: str | Path) -> None:
    """Every device's loss per step in one picture; agreeing curves lie on top of each other."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, r in enumerate(result.results):
        ax.plot(range(1, len(r.losses) + 1), r.losses, label=f"{r.device} (acc {r.accuracy:.3f})",
                linewidth=2.5 if i == 0 else 1.2, linestyle="-" if i == 0 else "--")
    ax.set(xlabel="step", ylabel="training loss (batch mean)", yscale="log",
           title=f"hal demo: same seed on every device (tolerance {result.tolerance:g} vs {result.reference})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_roofline(points: Sequence[BenchPoint], path: str | Path) -> None:
    """One panel per device: its roofline (the model's peaks where the device declares them, else
    the best measured rates, dotted) and the measured points at their arithmetic intensity."""
    plt = _pyplot()
    devices = sorted({p.device for p in points}, key=[p.device for p in points].index)
    cols = min(3, len(devices))
    rows = (len(devices) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3.8 * rows), squeeze=False)
    for ax in axes.flat[len(devices):]:
        ax.set_visible(False)
    for ax, spec in zip(axes.flat, devices, strict=False):
        ran = [p for p in points if p.device == spec and not p.error and p.nbytes and p.seconds > 0]
        mine = [p for p in ran if p.flops]
        peak_flops, peak_bw = peaks(hal.device(spec))
        measured = peak_flops is None or peak_bw is None
        flops = peak_flops or max((p.flops / p.seconds for p in mine), default=1.0)
        bw = peak_bw or max((p.nbytes / p.seconds for p in ran if p.bench != "gemm"), default=1.0)
        ridge = flops / bw
        xs = [ridge / 100, ridge, ridge * 100]
        ax.loglog(xs, [min(flops, bw * x) for x in xs], "k:" if measured else "k-",
                  label="measured ceiling" if measured else "model peak")
        for p in mine:
            ax.loglog(p.flops / p.nbytes, p.flops / p.seconds, "o", label=p.bench)
        ax.set(title=spec, xlabel="FLOP / byte", ylabel="FLOP/s")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
