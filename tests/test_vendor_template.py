"""The vendor templates conform: the simulated-device template installs into a brand-new virtual
environment next to hal and passes the suite there (what tox's vendor-template environment
checks); the real-runtime template (API 1.2) and the simulated template as it was at API 1.0
(tests/plugins/vendor_api_1_0, frozen) pass it installed next to this hal."""

from __future__ import annotations

import subprocess
import venv
from pathlib import Path

import pytest

from .plugins.installer import install, run_python

ROOT = Path(__file__).resolve().parents[1]


def test_template_installs_in_a_clean_environment_and_conforms(tmp_path: Path) -> None:
    env = tmp_path / "venv"
    venv.create(env, with_pip=True)
    python = env / "bin" / "python"
    install = subprocess.run([str(python), "-m", "pip", "install", "-q", str(ROOT),
                              str(ROOT / "examples" / "vendor-plugin")],
                             capture_output=True, text=True, timeout=900)
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    backends = subprocess.run([str(env / "bin" / "hal"), "backends"], capture_output=True, text=True,
                              cwd=tmp_path, timeout=120)
    assert "example" in backends.stdout and "loaded" in backends.stdout, backends.stdout + backends.stderr
    run = subprocess.run([str(env / "bin" / "hal"), "conformance", "example"], capture_output=True, text=True,
                         cwd=tmp_path, timeout=900)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "failed" not in run.stdout.splitlines()[-1], run.stdout[-2000:]
    # hal itself was installed from a wheel, not in place: its CPU backend must still find the
    # kernel ABI header and compile
    cpu = subprocess.run([str(env / "bin" / "hal"), "conformance", "cpu", "-k", "saxpy or tree_reduction"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=600,
                         env={"HAL_CACHE_DIR": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"})
    assert cpu.returncode == 0, cpu.stdout[-4000:] + cpu.stderr[-2000:]


@pytest.mark.parametrize(("project", "backend", "api"), [
    (ROOT / "tests" / "plugins" / "vendor_api_1_0", "example", "1.0"),
    (ROOT / "examples" / "vendor-runtime", "runtime", "1.2"),
], ids=["frozen-1.0-template", "runtime-template"])
def test_template_loads_and_conforms(project: Path, backend: str, api: str, tmp_path: Path) -> None:
    install(project, tmp_path)
    listed = run_python(tmp_path, "-m", "hal", "backends")
    (row,) = [line for line in listed.stdout.splitlines() if line.startswith(f"{backend} ")]
    assert f" {api} " in row and " loaded " in row, listed.stdout + listed.stderr
    run = run_python(tmp_path, "-m", "hal", "conformance", backend, "--hal-examples", "5")
    assert run.returncode == 0 and "failed" not in run.stdout.splitlines()[-1], run.stdout[-4000:] + run.stderr[-2000:]


def test_the_1_0_template_is_told_where_its_imports_moved(tmp_path: Path) -> None:
    install(ROOT / "tests" / "plugins" / "vendor_api_1_0", tmp_path)
    run = run_python(tmp_path, "-W", "always::DeprecationWarning", "-c", "import hal_example.device")
    assert run.returncode == 0, run.stderr
    for moved in ("hal.hookspecs.hookimpl", "hal.sim.kernel_args"):
        assert f"{moved} is deprecated since vendor API 1.2: import it from hal.backend" in run.stderr, run.stderr
