"""Figures for ``--plot``: the demo's loss curves and the bench's rooflines (matplotlib, imported
only when a plot is asked for, and drawn off-screen)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hal

from .bench import BenchPoint, peaks
from .train import DemoResult

if TYPE_CHECKING:
    from .parallel import ParallelDemo


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


def plot_parallel(result: ParallelDemo, path: str | Path) -> None:
    """Left: the loss curves of the one-device reference and of each data-parallel run. Middle:
    the bandwidth/accuracy trade-off: test accuracy against the bytes each device moved. Right:
    test accuracy against seconds into the run (over the emulated link, when there is one)."""
    plt = _pyplot()
    fig, (curves, tradeoff, timeline) = plt.subplots(1, 3, figsize=(16, 4.5))
    ref = result.reference
    curves.plot(range(1, len(ref.losses) + 1), ref.losses, label=f"{ref.device} alone", linewidth=2.5)
    for r in result.runs:
        (line,) = curves.plot(range(1, len(r.losses) + 1), r.losses, "--", label=r.label, linewidth=1.2)
        moved = max(r.moved_bytes) / 2**20
        tradeoff.plot(moved, r.accuracy, "o", color=line.get_color())
        tradeoff.annotate(f"{r.label}\n(final loss {r.final_loss:.3f})", (moved, r.accuracy), fontsize=7,
                          xytext=(4, 4), textcoords="offset points")
        timeline.plot([s for _, s, _ in r.curve], [a for _, _, a in r.curve], ".-", color=line.get_color(),
                      label=r.label, linewidth=1.2)
        for e in r.events:
            timeline.axvline(e.wall_s, color=line.get_color(), linestyle=":", linewidth=0.8)
    curves.set(xlabel="step", ylabel="training loss (batch mean)", yscale="log",
               title=f"data-parallel on {', '.join(d.partition('(')[0] for d in result.runs[0].devices)}")
    curves.legend(fontsize=8)
    tradeoff.set(xlabel="MiB moved per device (collectives)", ylabel="test accuracy", xscale="log",
                 title="bandwidth against accuracy")
    tradeoff.xaxis.set_minor_formatter(plt.NullFormatter())
    tradeoff.margins(x=0.3, y=0.2)  # room for the labels
    where = f"over an EMULATED {result.link} link" if result.link else "wall time"
    timeline.set(xlabel=f"seconds into the run ({where})", ylabel="test accuracy", title="accuracy against time "
                 "(dotted: deaths, joins)")
    timeline.legend(fontsize=7)
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
