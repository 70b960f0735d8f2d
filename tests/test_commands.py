"""Every ``hal`` command, and every ``hal`` command line the README shows, run as a user runs it: a
subprocess in an empty directory, its exit status and output checked. A command line added to the
README, or a command added to ``hal``, without a run here fails ``test_every_readme_command_is_run``
or ``test_every_cli_command_is_run``.

Slow commands are narrowed with the options the README itself shows (``--device``, ``--epochs``)
or that the command has for it (``hal bench --quick``, ``hal conformance ... -- -k EXPR``)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import hal

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
KERNELS = '''import hal


@hal.kernel
def saxpy(a: hal.f32, x: hal.Ptr[hal.f32], y: hal.Ptr[hal.f32], n: hal.i32):
    i = hal.global_id(0)
    if i < n:
        y[i] = a * x[i] + y[i]
'''
"""``kernels.py`` of the README's ``hal compile`` lines: its "Twenty lines" kernel."""
ONE_TEST = "test_listed_and_found_by_spec"
"""A conformance test that every device runs in well under a second."""


def _cuda_devices() -> int:
    return next((s.device_count for s in hal.backends() if s.name == "cuda" and s.ok), 0)


@dataclass(frozen=True)
class Run:
    """``hal ARGS`` in an empty directory (with ``kernels.py`` where ``hal compile`` needs it): the exit
    status it must end with, lines its output must contain, and a check of what it wrote."""

    args: tuple[str, ...]
    rc: int = 0
    says: tuple[str, ...] = ()
    check: Callable[[Path, str], None] | None = field(default=None, compare=False)
    setup: Callable[[Path], None] | None = field(default=None, compare=False)
    """What it needs in its directory besides ``kernels.py``."""
    own_cache: bool = False
    """It runs with ``HAL_CACHE_DIR`` in its directory (``cache/``), not the session's."""
    ray: bool = False
    """It opens remote devices: it joins this session's Ray cluster (``RAY_ADDRESS``) instead of
    starting one of its own, 10 to 20 s each on two busy cores (tests/conformance/test_bundled.py
    runs ``hal conformance remote`` without ``RAY_ADDRESS``)."""


def _plot_and_json(where: Path, out: str) -> None:
    doc = json.loads((where / "demo.json").read_text())
    assert [r["device"] for r in doc["results"]] == ["cpu:0", "simgpu:0"] and doc["results"][1]["agrees"]
    assert (where / "loss.png").read_bytes().startswith(b"\x89PNG")


def _data_parallel(where: Path, out: str) -> None:
    doc = json.loads((where / "dp.json").read_text())
    grads, averaged = doc["runs"]
    assert grads["devices"] == ["remote:0", "remote:1"] and grads["agrees"] and averaged["sync_every"] == 4
    assert grads["accuracy"] == doc["reference"]["accuracy"]
    assert min(grads["moved_bytes"]) > 3 * max(averaged["moved_bytes"]) > 0


def _report(where: Path, out: str) -> None:
    doc = json.loads((where / "report.json").read_text())
    assert list(doc["devices"]) == ["cpu:0"] and {t["outcome"] for t in doc["tests"]} == {"passed"}


def _all(where: Path, out: str) -> None:
    """Every device present ran; every backend without one is listed with its reason."""
    doc = json.loads((where / "all.json").read_text())
    backends = json.loads(_hal(where, "backends", "--json").stdout)  # as installed, without this session's fakes
    present = sum(b["device_count"] for b in backends if b["status"] == "loaded")
    assert len(doc["devices"]) == len(doc["tests"]) == present
    assert {t["outcome"] for t in doc["tests"]} == {"passed"}
    absent = {b["name"] for b in backends if b["status"] != "loaded" or b["device_count"] == 0}
    assert set(doc["skipped_backends"]) == absent
    for name in absent:
        assert f"hal conformance: backend {name!r} skipped: " in out


def _graph_file(where: Path) -> None:
    """``step.halgraph`` as the README's Graphs section makes it: the saxpy kernel and a copy, inputs saved."""
    import numpy as np

    saxpy = hal.kernel.from_source(KERNELS)
    dev = hal.device("cpu")
    q = dev.queue()
    x, y, z = dev.array(np.arange(256, dtype=np.float32)), dev.zeros((256,), np.float32), dev.empty((256,), np.float32)
    with q.capture() as g:
        saxpy[1, 256, q](2.0, x, y, 256)
        q.copy(z, y)
    g.save(where / "step.halgraph", inputs=True)


def _verified(where: Path, out: str) -> None:
    digests = re.findall(r"^\s*(\S+)\s+array \d+\s+sha256 ([0-9a-f]{64})$", out, re.M)
    assert {d for d, _ in digests} == {"cpu:0", "simgpu:1", "opencl:0"} and len({h for _, h in digests}) == 1, out


def _cubin(where: Path, out: str) -> None:
    assert (where / "saxpy.cubin").read_bytes().startswith(b"\x7fELF")


def _ptx(where: Path, out: str) -> None:
    assert ".entry hal_entry(" in (where / "saxpy.ptx").read_text()


def _cuda_source(where: Path, out: str) -> None:
    assert 'extern "C" __global__ void hal_entry(' in (where / "saxpy.cu").read_text()


SELECT = ("--", "-k", ONE_TEST)
CUDA = (Run(("conformance", "cuda", *SELECT), 0, ("1 passed",)) if _cuda_devices() else
        Run(("conformance", "cuda"), 4, ("hal conformance: backend 'cuda' has no device; available backends: ",)))
DEMO_CPU = Run(("demo", "--device", "cpu"), 0, ("all devices match the cpu:0 loss curve",))
VERSION = Run(("--version",), 0, (f"hal {hal.__version__} (vendor API ",))
README_RUNS: dict[str, tuple[Run, ...]] = {
    "hal demo": (DEMO_CPU,),
    "hal demo --device cpu": (DEMO_CPU,),
    "hal conformance cpu": (Run(("conformance", "cpu", *SELECT), 0, ("1 passed",)),),
    "hal --version": (VERSION,),
    "hal demo --device simgpu --epochs 5 --plot loss.png --json demo.json":  # one epoch is too few: it says so
        (Run(("demo", "--device", "simgpu", "--epochs", "1", "--plot", "loss.png", "--json", "demo.json"), 1,
             ("all devices match", "hal demo: failed: test accuracy below 0.9 (cpu:0 0."), _plot_and_json),),
    "hal bench [--plot roofline.png]": (Run(("bench", "--quick", "--device", "cpu"), 0, ("saxpy", "launch")),
                                        Run(("bench", "--quick", "--device", "fpga", "--plot", "roofline.png"), 0,
                                            ("fpga:0",), lambda w, o: _png(w / "roofline.png"))),
    "hal conformance remote": (Run(("conformance", "remote", *SELECT), 0, ("2 passed",), ray=True),),
    "hal demo --data-parallel remote:0,remote:1 [--sync-every 4]":
        (Run(("demo", "--data-parallel", "remote:0,remote:1", "--epochs", "1", "--batch", "32", "--sync-every", "4",
              "--json", "dp.json"), 0, ("matches the cpu:0 loss curve",), _data_parallel, ray=True),),
    "hal conformance <yourbackend>": (Run(("conformance", "fpga", *SELECT), 0, ("1 passed",)),),
    "hal backends": (Run(("backends",), 0, ("backend", "cpu ")),),
    "hal compile kernels.py:saxpy --target opencl": (Run(("compile", "kernels.py:saxpy", "--target", "opencl"), 0,
                                                         ("__kernel void hal_entry(",)),),
    "hal compile kernels.py:saxpy --target cuda:sm_90 --emit ptx|cubin|source -o OUT": tuple(
        Run(("compile", "kernels.py:saxpy", "--target", "cuda:sm_90", "--emit", emit, "-o", out), 0, (), check)
        for emit, out, check in (("ptx", "saxpy.ptx", _ptx), ("cubin", "saxpy.cubin", _cubin),
                                 ("source", "saxpy.cu", _cuda_source))),
    "hal compile FILE.py:KERNEL": (Run(("compile", "kernels.py:saxpy"), 0, ("generated by hal.kernel.cemit",)),),
    "hal conformance cuda": (CUDA,),
    "hal cache info": (Run(("cache", "info"), 0, ("cache", "0 B", "ok"), own_cache=True),),
    "hal cache clear": (Run(("cache", "clear"), 0, ("removed 0 entries (0 B) from ",), own_cache=True),),
    "hal conformance cpu --json report.json": (Run(("conformance", "cpu", "--json", "report.json", *SELECT), 0,
                                                   ("1 passed", "report written to report.json"), _report),),
    "hal verify step.halgraph --devices cpu,simgpu:1,opencl:0":
        (Run(("verify", "step.halgraph", "--devices", "cpu,simgpu:1,opencl:0"), 0,
             ("step.halgraph: bit-identical on cpu:0, simgpu:1, opencl:0",), _verified, setup=_graph_file),),
    "hal conformance --all": (Run(("conformance", "--all", "--json", "all.json", *SELECT), 0, ("feature x device",),
                                  _all, ray=True),),
}
"""Each README command line, and the runs that cover it."""
CLI_RUNS: tuple[Run, ...] = (
    Run(("--help",), 0, ("backends", "devices", "conformance", "compile", "demo", "bench")),
    Run(("backends", "--json"), 0, ('"name": "cpu"',)),
    Run(("devices",), 0, ("cpu:0", "simgpu:1", "remote:1"), ray=True),
)
"""Runs of what the README does not show."""


def _png(path: Path) -> None:
    assert path.read_bytes().startswith(b"\x89PNG")


def _shown(text: str) -> set[str]:
    """The ``hal ...`` command lines of ``text``: in ```sh blocks (``.venv/bin/hal``, after ``&&``, before
    a comment) and in inline code."""
    found = set()
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in block.splitlines():
            for part in re.split(r"\s#", line)[0].split("&&"):
                words = part.split()
                if words and (words[0] == "hal" or words[0].endswith("/hal")):
                    found.add(" ".join(["hal", *words[1:]]))
    for code in re.findall(r"`([^`]+)`", re.sub(r"```.*?```", "", text, flags=re.S)):
        words = code.split()
        if len(words) > 1 and words[0] == "hal":
            found.add(" ".join(words))
    return found


def _subcommands() -> set[str]:
    run = _hal(Path.cwd(), "--help")
    listed = re.search(r"\{([a-z,_-]+)\}", run.stdout)
    assert run.returncode == 0 and listed, run.stdout
    return set(listed.group(1).split(","))


def test_every_readme_command_is_run() -> None:
    shown = _shown(README.read_text())
    assert "hal conformance --all" in shown and "hal demo" in shown  # the parser finds both kinds
    assert shown == set(README_RUNS), f"README commands without a run here: {sorted(shown - set(README_RUNS))}; " \
                                      f"runs of commands no longer shown: {sorted(set(README_RUNS) - shown)}"


def test_every_cli_command_is_run() -> None:
    assert _subcommands() <= {run.args[0] for run in ALL_RUNS}


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    """The address of a local Ray cluster for the module (this session's, where one is running)."""
    ray = pytest.importorskip("ray")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ray.get_runtime_context().gcs_address
    if started:
        ray.shutdown()


def _hal(cwd: Path, *args: str, ray_address: str | None = None,
         cache: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **({"HAL_CACHE_DIR": str(cache)} if cache else {})}
    env.pop("HAL_REMOTE", None)  # the README's commands run with the defaults
    env.pop("RAY_ADDRESS", None)
    if ray_address is not None:
        env["RAY_ADDRESS"] = ray_address
    return subprocess.run([sys.executable, "-m", "hal", *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=600)


ALL_RUNS = list(dict.fromkeys([run for runs in README_RUNS.values() for run in runs] + list(CLI_RUNS)))
"""Every run once (two README lines may share one)."""


@pytest.mark.parametrize("run", [pytest.param(run, id=" ".join(run.args)) for run in ALL_RUNS])
def test_command(run: Run, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if run.args[0] == "compile":
        (tmp_path / "kernels.py").write_text(KERNELS)
    if run.setup is not None:
        run.setup(tmp_path)
    done = _hal(tmp_path, *run.args, ray_address=request.getfixturevalue("ray_address") if run.ray else None,
                cache=tmp_path / "cache" if run.own_cache else None)
    out = done.stdout + done.stderr
    assert done.returncode == run.rc, out[-4000:]
    for text in run.says:
        assert text in out, out[-4000:]
    if run.check is not None:
        run.check(tmp_path, out)


def test_readme_warns_that_from_source_executes_its_text() -> None:
    text = " ".join(README.read_text().split())
    assert "`hal.kernel.from_source` executes the text it is given as Python" in text
    assert "never text from an untrusted source" in text
