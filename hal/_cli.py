"""The ``hal`` command: ``hal backends``, ``hal devices`` (and more as the SDK grows)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from ._pool import format_bytes


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(out)


def cmd_backends(args: argparse.Namespace) -> int:
    import hal

    rows = []
    for s in hal.backends():
        api = f"{s.api_version[0]}.{s.api_version[1]}" if s.api_version else "-"
        rows.append([s.name, s.plugin, s.version or "-", api, s.status,
                     str(s.device_count) if s.ok else "-", s.error or ""])
    print(_table(["backend", "plugin", "version", "api", "status", "devices", "error"], rows))
    return 0


def cmd_devices(args: argparse.Namespace) -> int:
    import hal

    rows = []
    for dev in hal.devices():
        info = dev.info
        features = ",".join(sorted(f.value for f in info.features))
        simulated = " (simulated)" if info.simulated and "simulated" not in info.name else ""
        rows.append([dev.spec, info.name + simulated, info.kind,
                     format_bytes(info.memory_bytes), str(info.compute_units), features])
    print(_table(["device", "name", "kind", "memory", "units", "features"], rows))
    broken = [s for s in hal.backends() if s.status == "error"]
    if broken:
        print(f"\n{len(broken)} backend(s) failed to load; see `hal backends`.", file=sys.stderr)
    return 0


def cmd_conformance(args: argparse.Namespace) -> int:
    try:
        import hypothesis  # noqa: F401 - the differential tests need it
        import pytest
    except ImportError as exc:
        print(f"hal conformance needs pytest and hypothesis ({exc}); pip install 'hal-sdk[conformance]'",
              file=sys.stderr)
        return 2

    if not args.all and not args.backend:
        print("hal conformance: name a backend (see `hal backends`) or pass --all", file=sys.stderr)
        return 2
    argv = ["-p", "no:cacheprovider", "-q", "--pyargs", "hal.conformance",
            f"--hal-backend={'all' if args.all else args.backend}"]
    if args.json:
        argv.append(f"--hal-json={args.json}")
    return int(pytest.main(argv + list(args.extra)))


COMMANDS: dict[str, tuple[str, Callable[[argparse.Namespace], int]]] = {
    "backends": ("list discovered backends with their status and errors", cmd_backends),
    "devices": ("list usable devices", cmd_devices),
    "conformance": ("run the conformance suite on a backend", cmd_conformance),
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hal", description="hal: one API for every kind of compute hardware")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, func) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        p.set_defaults(func=func)
        if name == "conformance":
            p.add_argument("backend", nargs="?", help="backend name (see `hal backends`)")
            p.add_argument("--all", action="store_true", help="every loaded backend, one matrix column per device")
            p.add_argument("--json", metavar="FILE", help="write a machine-readable report")
    from .demo.cli import add_bench_parser, add_demo_parser

    add_demo_parser(sub)
    add_bench_parser(sub)
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "conformance":  # only conformance passes extras on (to pytest)
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra = extra
    from ._errors import HalError

    try:
        return int(args.func(args))
    except HalError as exc:
        print(f"hal: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
