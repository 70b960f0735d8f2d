"""``hal demo`` and ``hal bench``: sub-parsers that the ``hal`` command adds through its
``hal.commands`` entry points (pyproject.toml), so the core never imports the demo."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def add_demo_parser(subparsers: Any) -> argparse.ArgumentParser:
    from .train import Config

    d = Config()
    p: argparse.ArgumentParser = subparsers.add_parser(
        "demo", help="train a small neural network on every device through one API")
    p.add_argument("--device", action="append", metavar="SPEC",
                   help="train on this device only (repeatable); default: every device. The CPU "
                        "reference always runs too, for the agreement check")
    p.add_argument("--epochs", type=int, default=d.epochs, help=f"default {d.epochs}")
    p.add_argument("--batch", type=int, default=d.batch, help=f"default {d.batch}")
    p.add_argument("--seed", type=int, default=d.seed, help=f"default {d.seed}")
    p.add_argument("--fallback", default="cpu", metavar="SPEC",
                   help="where operators a device refuses run (default cpu)")
    p.add_argument("--data-parallel", metavar="SPECS", type=_specs,
                   help="train one replica per device (comma-separated, e.g. remote:0,remote:1) on shards of "
                        "each batch, gradients all-reduced every step, against the CPU alone")
    p.add_argument("--sync-every", metavar="H[,H...]", type=_steps, default=(),
                   help="with --data-parallel, also train each replica alone and average the parameters "
                        "every H steps (one run per H): less traffic, some accuracy")
    p.add_argument("--outer", metavar="M[,M...]", type=_outers, default=("average",),
                   help="with --sync-every, the outer step (one run per method): average (the replicas' mean, "
                        "the default) or diloco (Nesterov momentum on the averaged parameter delta)")
    p.add_argument("--outer-lr", type=float, default=0.7, help="DiLoCo's outer learning rate (default 0.7)")
    p.add_argument("--outer-momentum", type=float, default=0.5,
                   help="DiLoCo's Nesterov momentum (default 0.5: the paper's 0.9 suits hundreds of outer steps; "
                        "the demo's runs have a handful, where 0.9 overshoots)")
    p.add_argument("--compress", choices=("int8", "int4"),
                   help="with --sync-every, send the outer deltas as block-scaled integers with error feedback")
    p.add_argument("--link", metavar="BW/LATENCY", type=_link,
                   help="with --data-parallel on remote devices: every worker sends over an EMULATED link, e.g. "
                        "100mbit/50ms (a token bucket in the worker; see plugins/hal_remote/README.md)")
    p.add_argument("--hidden", metavar="N[,N...]", type=_steps, default=d.hidden,
                   help=f"hidden layer sizes (default {','.join(map(str, d.hidden))}; 1024,1024 is a model of "
                        "1.1 million parameters, where communication matters)")
    p.add_argument("--kill-worker-at", metavar="STEP", type=int,
                   help="with --sync-every on remote devices: kill the last device's worker process at this step "
                        "(it is dropped at the next outer step; the others go on)")
    p.add_argument("--join", metavar="SPEC@STEP", type=_join,
                   help="with --sync-every: this device joins at the first outer step from STEP on, receiving the "
                        "global parameters (e.g. remote:3@40)")
    p.add_argument("--plot", metavar="PNG", help="draw every device's loss curve into one picture (with "
                   "--data-parallel: the loss curves and accuracy against bytes moved)")
    p.add_argument("--json", metavar="FILE", help="write the per-device results")
    p.set_defaults(func=cmd_demo)
    return p


def _specs(text: str) -> list[str]:
    specs = [s.strip() for s in text.split(",") if s.strip()]
    if not specs:
        raise argparse.ArgumentTypeError("name devices, e.g. remote:0,remote:1")
    return specs


def _steps(text: str) -> tuple[int, ...]:
    try:
        steps = tuple(int(s) for s in text.split(","))
    except ValueError:
        steps = ()
    if not steps or min(steps) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give step counts >= 1, e.g. 4 or 1,4,16")
    return steps


def _link(text: str) -> str:
    parts = [t.strip() for t in text.replace(",", "/").split("/")]
    if len(parts) != 2 or not all(parts):
        raise argparse.ArgumentTypeError(f"{text!r}: give a bandwidth and a latency, e.g. 100mbit,50ms")
    return "/".join(parts)


def _join(text: str) -> tuple[str, int]:
    spec, _, step = text.rpartition("@")
    if not spec or not step.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: give a device and a step, e.g. remote:3@40")
    return spec, int(step)


def _outers(text: str) -> tuple[str, ...]:
    from .outer import METHODS

    methods = tuple(m.strip() for m in text.split(",") if m.strip())
    if not methods or any(m not in METHODS for m in methods):
        raise argparse.ArgumentTypeError(f"{text!r}: name outer steps among {', '.join(METHODS)}, e.g. average,diloco")
    return methods


def add_bench_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "bench", help="micro-benchmarks (copy, saxpy, reduce, gemm, launch) on every device")
    p.add_argument("--device", action="append", metavar="SPEC", help="this device only (repeatable)")
    p.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test, not a measurement)")
    p.add_argument("--plot", metavar="PNG", help="draw each device's roofline with the measured points")
    p.add_argument("--json", metavar="FILE", help="write the results")
    p.set_defaults(func=cmd_bench)
    return p


def _check_outputs(args: argparse.Namespace) -> None:
    """Fail on an unwritable --json or --plot file now, not after the whole run."""
    from .._cli import check_output_path

    check_output_path(args.json, "--json")
    check_output_path(args.plot, "--plot")


def cmd_demo(args: argparse.Namespace) -> int:
    from .train import Config, run_demo, summary

    if args.epochs < 1 or args.batch < 1:
        print("hal demo: --epochs and --batch must be >= 1", file=sys.stderr)
        return 2
    _check_outputs(args)
    config = Config(epochs=args.epochs, batch=args.batch, seed=args.seed, hidden=tuple(args.hidden))
    if args.data_parallel:
        return _data_parallel(args, config)
    if args.sync_every or args.link or args.kill_worker_at or args.join:
        print("hal demo: --sync-every, --link, --kill-worker-at and --join need --data-parallel", file=sys.stderr)
        return 2
    result = run_demo(args.device, config, fallback=args.fallback)
    print(summary(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result.to_json(), indent=1))
    if args.plot:
        from .plot import plot_losses

        plot_losses(result, args.plot)
    return _verdict([(r.device, r.accuracy) for r in result.results],
                    [r.device for r in result.results if r.agrees is False])


def _data_parallel(args: argparse.Namespace, config: Any) -> int:
    from .elastic import Churn
    from .outer import Outer
    from .parallel import open_device, run_parallel, summary

    if (args.kill_worker_at or args.join) and not args.sync_every:
        print("hal demo: --kill-worker-at and --join need --sync-every (replicas that meet every H steps)",
              file=sys.stderr)
        return 2
    outers = [Outer(m, args.outer_lr, args.outer_momentum, args.compress) for m in args.outer]
    churn = None
    if args.kill_worker_at or args.join:
        join = open_device(args.join[0], args.link) if args.join else None
        churn = Churn(args.kill_worker_at, kill_worker if args.kill_worker_at else None, join,
                      args.join[1] if args.join else None)
    result = run_parallel(args.data_parallel, config, args.sync_every, fallback=args.fallback, outers=outers,
                          link=args.link, churn=churn)
    print(summary(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result.to_json(), indent=1))
    if args.plot:
        from .plot import plot_parallel

        plot_parallel(result, args.plot)
    first = result.runs[0]
    replicas = f"data-parallel on {','.join(first.devices)}"
    return _verdict([(f"{result.reference.device} alone", result.reference.accuracy), (replicas, first.accuracy)],
                    [] if first.agrees else [replicas])


ACCURACY = 0.9
"""The test accuracy below which ``hal demo`` fails: the MLP reaches about 0.97 in the default 10 epochs."""


def _verdict(accuracies: list[tuple[str, float]], mismatched: list[str]) -> int:
    """0, or 1 with one line on stderr for each reason the run failed (the table alone does not say)."""
    low = [f"{where} {accuracy:.3f}" for where, accuracy in accuracies if accuracy < ACCURACY]
    if low:
        print(f"hal demo: failed: test accuracy below {ACCURACY} ({', '.join(low)}); train longer (--epochs) or "
              "with smaller batches (--batch)", file=sys.stderr)
    if mismatched:
        print(f"hal demo: failed: {', '.join(mismatched)} did not match the reference loss curve (see the table)",
              file=sys.stderr)
    return 1 if low or mismatched else 0


def kill_worker(device: Any) -> str:
    """Kill a remote device's worker process (SIGKILL, as a machine that dies): its pid is in the
    device's name, on this host."""
    import os
    import re
    import signal
    import socket

    import hal

    found = re.search(r" on ([^,]+), pid (\d+)", device.info.name)
    if device.info.backend != "remote" or found is None or found[1] != socket.gethostname():
        raise hal.InvalidArgumentError(f"--kill-worker-at kills a remote device's worker on this machine; "
                                       f"{device.spec} ({device.info.name}) is not one")
    os.kill(int(found[2]), signal.SIGKILL)
    return f"worker process {found[2]} killed (SIGKILL)"


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import Sizes, run_bench, summary, to_json

    _check_outputs(args)
    sizes = Sizes(4096, 1024, 1024, 16, 5, 1) if args.quick else Sizes()
    points = run_bench(args.device, sizes)
    print(summary(points))
    if args.json:
        Path(args.json).write_text(json.dumps(to_json(points, sizes), indent=1))
    if args.plot:
        from .plot import plot_roofline

        plot_roofline(points, args.plot)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m hal.demo demo|bench ...`` (the same commands as ``hal demo`` / ``hal bench``)."""
    import hal

    parser = argparse.ArgumentParser(prog="python -m hal.demo")
    sub = parser.add_subparsers(dest="command", required=True)
    add_demo_parser(sub)
    add_bench_parser(sub)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except hal.HalError as exc:
        print(f"hal: error: {exc}", file=sys.stderr)
        return 1
