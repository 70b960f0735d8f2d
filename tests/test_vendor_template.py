"""What tox's vendor-template environment checks: the template installs into a brand-new
virtual environment next to hal and passes the conformance suite there."""

from __future__ import annotations

import subprocess
import venv
from pathlib import Path

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
