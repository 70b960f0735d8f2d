"""The ``hal`` command: ``hal backends``, ``hal devices``, ``hal conformance``, and the commands
that distributions add through the entry-point group ``hal.commands`` (``name = module:function``,
the function adds its sub-parser; hal-sdk's own demo adds ``hal demo`` and ``hal bench`` that way).
An added command's module is imported only when that command runs (or for ``hal --help``), so
``hal backends`` loads nothing of them."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._errors import HalError, InvalidArgumentError
from ._plugins import entry_points
from ._pool import format_bytes

if TYPE_CHECKING:
    from ._device import Device


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(out)


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2))


def check_output_path(path: str | None, option: str) -> None:
    """Refuse an output file that cannot be written before a long run, not after it."""
    if path is None:
        return
    target = Path(path)
    parent = target.parent
    if target.is_dir():
        why = "it is a directory"
    elif not parent.is_dir():
        why = f"directory {str(parent)!r} does not exist"
    elif not os.access(target if target.exists() else parent, os.W_OK):
        why = "permission denied"
    else:
        return
    raise InvalidArgumentError(f"cannot write {option} {path!r}: {why}; name a writable file")


def write_output(path: str, data: bytes, option: str) -> None:
    """Write ``data`` to ``path``; a full disk or an unwritable file is one error, and no half-written file
    is left behind."""
    target = Path(path)
    existed = target.exists()
    try:
        target.write_bytes(data)
    except OSError as exc:
        if not existed and target.is_file():
            target.unlink()
        raise InvalidArgumentError(f"cannot write {option} {path!r}: {exc.strerror or exc}; name a writable file "
                                   "on a disk with space") from None


def cmd_backends(args: argparse.Namespace) -> int:
    import hal

    statuses = hal.backends()
    if args.json:
        _print_json([{"name": s.name, "plugin": s.plugin, "status": s.status, "version": s.version,
                      "api_version": list(s.api_version) if s.api_version else None,
                      "device_count": s.device_count, "error": s.error} for s in statuses])
        return 0
    rows = []
    for s in statuses:
        api = f"{s.api_version[0]}.{s.api_version[1]}" if s.api_version else "-"
        rows.append([s.name, s.plugin, s.version or "-", api, s.status,
                     str(s.device_count) if s.ok else "-", s.error or ""])
    print(_table(["backend", "plugin", "version", "api", "status", "devices", "error"], rows))
    return 0


def _describe_device(dev: Device) -> dict[str, Any]:
    """The fields of ``hal devices --json``; ``error`` says why a device that exists cannot be opened."""
    record: dict[str, Any] = {"spec": dev.spec, "backend": dev.backend.name}
    try:
        info = dev.info
    except HalError as exc:
        return {**record, "name": None, "kind": None, "vendor": None, "simulated": None, "memory": None,
                "compute_units": None, "features": None, "error": str(exc)}
    return {**record, "name": info.name, "kind": info.kind, "vendor": info.vendor, "simulated": info.simulated,
            "memory": info.memory_bytes, "compute_units": info.compute_units,
            "features": sorted(f.value for f in info.features), "error": None}


def cmd_devices(args: argparse.Namespace) -> int:
    import hal

    records = [_describe_device(dev) for dev in hal.devices()]
    if args.json:
        _print_json(records)
        return 0
    rows = []
    for r in records:
        if r["error"] is None:
            simulated = " (simulated)" if r["simulated"] and "simulated" not in r["name"] else ""
            rows.append([r["spec"], r["name"] + simulated, r["kind"], format_bytes(r["memory"]),
                         str(r["compute_units"]), ",".join(r["features"])])
    print(_table(["device", "name", "kind", "memory", "units", "features"], rows))
    for r in records:
        if r["error"] is not None:
            print(f"hal: {r['spec']}: {r['error']}", file=sys.stderr)
    broken = [s for s in hal.backends() if s.status == "error"]
    if broken:
        print(f"\n{len(broken)} backend(s) failed to load; see `hal backends`.", file=sys.stderr)
    return 0


def conformance_argv(backends: str, extra: Sequence[str] = (), *, json_path: str | None = None,
                     junit_path: str | None = None) -> list[str]:
    """pytest's arguments for the suite, independent of the working directory: the suite's directory
    as the path (with ``--pyargs``, pytest also loads the conftest.py of ``./test*/``), as rootdir and
    as conftest boundary, no ini file and no cache."""
    suite = str(Path(__file__).resolve().parent / "conformance")
    argv = ["-p", "no:cacheprovider", f"--config-file={os.devnull}", f"--rootdir={suite}", f"--confcutdir={suite}",
            "-q", suite, f"--hal-backend={backends}"]
    if json_path:
        argv.append(f"--hal-json={json_path}")
    if junit_path:
        argv.append(f"--junitxml={junit_path}")
    return argv + list(extra)


def cmd_conformance(args: argparse.Namespace) -> int:
    from importlib.util import find_spec

    missing = [m for m in ("pytest", "hypothesis") if find_spec(m) is None]  # not imported: pytest does that
    if missing:
        print(f"hal conformance needs {' and '.join(missing)}; pip install 'hal-sdk[conformance]'",
              file=sys.stderr)
        return 2
    if not args.all and not args.backend:
        print("hal conformance: name a backend (see `hal backends`) or pass --all", file=sys.stderr)
        return 2
    if args.all and args.backend:  # `--all -k EXPR` hands EXPR to the backend argument
        print(f"hal conformance: --all takes no backend name (got {args.backend!r}); pytest options go after "
              "`--`: hal conformance --all -- -k EXPR", file=sys.stderr)
        return 2
    check_output_path(args.json, "--json")
    check_output_path(args.junit, "--junit")
    import pytest

    return int(pytest.main(conformance_argv("all" if args.all else args.backend, args.extra, json_path=args.json,
                                            junit_path=args.junit)))


TARGETS = ("cpu", "opencl", "cuda:sm_XY")
EMITS = ("source", "ptx", "cubin")


def load_kernel(spec: str) -> Any:
    """The IR of the @hal.kernel named by ``FILE.py:KERNEL``."""
    import importlib.util

    path, sep, name = spec.rpartition(":")
    if not sep or not path.endswith(".py") or not name:
        raise InvalidArgumentError(f"hal compile: {spec!r} is not FILE.py:KERNEL; name a @hal.kernel in a file")
    module_spec = importlib.util.spec_from_file_location(Path(path).stem, path)
    if module_spec is None or module_spec.loader is None or not Path(path).is_file():
        raise InvalidArgumentError(f"hal compile: cannot read {path!r}; name an existing Python file")
    module = importlib.util.module_from_spec(module_spec)
    folder = str(Path(path).resolve().parent)
    sys.path.insert(0, folder)  # as `python FILE.py` would: the file imports its siblings
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:  # the user's file: one line saying where it failed, not a traceback through hal
        raise InvalidArgumentError(f"hal compile: importing {path} failed{_where(exc, path)}: "
                                   f"{type(exc).__name__}: {exc}; fix the file (try `python {path}`)") from None
    finally:
        sys.path.remove(folder)
    kernel = getattr(getattr(module, name, None), "ir", None)
    if kernel is None:
        raise InvalidArgumentError(f"hal compile: {path} has no @hal.kernel named {name!r}")
    return kernel


def _where(exc: BaseException, path: str) -> str:
    """`` at line N``: the innermost line of ``path`` the error passed through (a SyntaxError's own)."""
    if isinstance(exc, SyntaxError) and exc.lineno is not None:
        return f" at line {exc.lineno}"
    import traceback

    target = Path(path).resolve()
    lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename).resolve() == target]
    return f" at line {lines[-1]}" if lines else ""


def kernel_source(spec: str, target: str, checked: bool = False, emit: str = "source") -> bytes:
    """What ``target``'s backend builds from ``FILE.py:KERNEL``: its generated source, or for
    ``cuda:sm_XY`` also the PTX or cubin NVRTC makes of it (no GPU needed)."""
    from .kernel import cemit, cuda, nvrtc, opencl, simt

    backend, _, arch = target.partition(":")
    if backend not in ("cpu", "opencl", "cuda") or (arch and backend != "cuda"):
        raise InvalidArgumentError(f"hal compile: unknown target {target!r}; use one of {', '.join(TARGETS)}")
    if emit != "source" and backend != "cuda":
        raise InvalidArgumentError(f"hal compile: --emit {emit} is for cuda targets; {backend} emits source")
    if backend == "cuda":
        arch = nvrtc.parse_arch(arch or "sm_90")
    kernel = load_kernel(spec)
    if backend == "cpu":
        return cemit.emit(kernel, checked=checked).encode()
    if backend == "opencl":
        return simt.emit(kernel, opencl.OpenCL(), checked=checked).text.encode()
    text = simt.emit(kernel, cuda.Cuda(), checked=checked).text
    if emit == "source":
        return text.encode()
    return nvrtc.compile_source(text, kernel.name, arch, emit, cuda.NVRTC_OPTIONS)


def cmd_compile(args: argparse.Namespace) -> int:
    check_output_path(args.output, "-o")
    if args.emit == "cubin" and not args.output:
        raise InvalidArgumentError("hal compile: a cubin is binary; write it to a file with -o OUT")
    from .backend import checked_mode

    data = kernel_source(args.kernel, args.target, checked_mode(), args.emit)
    if args.output:
        write_output(args.output, data, "-o")
    else:
        print(data.decode(), end="")
    return 0


def cmd_cache(args: argparse.Namespace) -> int:
    """``hal cache info`` (where the kernel cache is, what it holds, its limit, why it is not used)
    and ``hal cache clear`` (remove its entries)."""
    from .backend import cache_clear, cache_info

    info = cache_clear() if args.action == "clear" else cache_info()
    if args.action == "clear":
        print(f"removed {info.entries} entries ({format_bytes(info.bytes)}) from {info.dir}")
    elif args.json:
        _print_json({"dir": str(info.dir), "entries": info.entries, "bytes": info.bytes, "limit": info.limit,
                     "problem": info.problem})
    else:
        print(_table(["dir", "entries", "bytes", "limit (HAL_CACHE_MAX_BYTES)", "status"],
                     [[str(info.dir), str(info.entries), format_bytes(info.bytes), format_bytes(info.limit),
                       f"not used: {info.problem}" if info.problem else "ok"]]))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """``hal verify FILE --devices cpu,simgpu:1``: exit 0 when every output is bit-identical."""
    from ._graphfile import verify

    report = verify(args.graph, devices=[d for d in args.devices.split(",") if d])
    print(report)
    return 0 if report.identical else 1


COMMANDS: dict[str, tuple[str, Callable[[argparse.Namespace], int]]] = {
    "backends": ("list discovered backends with their status and errors", cmd_backends),
    "devices": ("list usable devices (one line on stderr for each that cannot be opened)", cmd_devices),
    "conformance": ("run the conformance suite on a backend", cmd_conformance),
    "compile": ("print or write the source a backend generates for a kernel", cmd_compile),
    "cache": ("show (info) or empty (clear) the kernel cache", cmd_cache),
    "verify": ("replay a saved graph on several devices and compare its outputs bit for bit", cmd_verify),
}


COMMAND_GROUP = "hal.commands"


def add_commands(subparsers: Any, argv: Sequence[str]) -> None:
    """Add the sub-parsers of the ``hal.commands`` entry points that ``argv`` may need: the named
    command's only, or every one when no core command is named (``hal --help``, a typo)."""
    named = next((a for a in argv if not a.startswith("-")), None)
    if named in COMMANDS:
        return
    for ep in entry_points(COMMAND_GROUP):
        if ep.name in COMMANDS or (named is not None and ep.name != named):
            continue
        try:
            ep.load()(subparsers)
        except Exception as exc:  # a broken extension must not take the core commands with it
            print(f"hal: command {ep.name!r} ({ep.origin}) could not be added: {type(exc).__name__}: {exc}",
                  file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    from . import API_VERSION, __version__

    parser = argparse.ArgumentParser(prog="hal", description="hal: one API for every kind of compute hardware")
    parser.add_argument("--version", action="version",
                        version=f"hal {__version__} (vendor API {API_VERSION[0]}.{API_VERSION[1]})")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, func) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        p.set_defaults(func=func)
        if name in ("backends", "devices"):
            p.add_argument("--json", action="store_true", help="print a JSON list (for scripts and CI)")
        if name == "conformance":
            p.add_argument("backend", nargs="?", help="backend name, or several comma-separated (see `hal backends`)")
            p.add_argument("--all", action="store_true", help="every loaded backend, one matrix column per device")
            p.add_argument("--json", metavar="FILE", help="write a machine-readable report: each test's outcome, "
                                                          "duration, failure message or skip reason; each device's "
                                                          "model, driver, hal and plugin versions")
            p.add_argument("--junit", metavar="FILE", help="write JUnit XML for CI, each test named "
                                                           "hal.conformance.<module> / <test>[<device>] on every machine")
        if name == "verify":
            p.add_argument("graph", metavar="FILE.halgraph", help="a graph saved with g.save(path, inputs=True)")
            p.add_argument("--devices", default="cpu", metavar="SPECS",
                           help="comma-separated devices to replay it on (default cpu), e.g. cpu,simgpu:1,opencl:0")
        if name == "compile":
            p.add_argument("kernel", metavar="FILE.py:KERNEL", help="a @hal.kernel in a Python file")
            p.add_argument("--target", default="cpu", metavar="TARGET",
                           help=f"the backend whose code to generate: {', '.join(TARGETS)} (default cpu; cuda means "
                                "cuda:sm_90)")
            p.add_argument("--emit", choices=EMITS, default="source",
                           help="the generated source, or for cuda targets NVRTC's PTX or cubin")
            p.add_argument("-o", dest="output", metavar="OUT", help="write to OUT instead of printing")
        if name == "cache":
            p.add_argument("action", choices=("info", "clear"), help="info: where it is, entries, bytes, limit; "
                                                                       "clear: remove every entry")
            p.add_argument("--json", action="store_true", help="info as a JSON object")
    argv = sys.argv[1:] if argv is None else list(argv)
    # `hal conformance --all --json F -- -k EXPR`: what follows the separator is pytest's, never a backend name
    argv, passed = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    add_commands(sub, argv)
    args, extra = parser.parse_known_args(argv)
    extra += passed
    if extra and args.command != "conformance":  # only conformance passes extras on (to pytest)
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra = extra
    try:
        return int(args.func(args))
    except HalError as exc:
        print(f"hal: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
