"""Broken plugins installed for real: hal lists each with an error that tells its vendor what to fix,
and every other backend keeps working in the same process.

The four distributions next to this file are installed into a temporary site
directory the way an installer unpacks a wheel (the package, then a
``<name>-<version>.dist-info`` with METADATA, entry_points.txt and RECORD), and
``hal`` runs in a subprocess with that directory on ``PYTHONPATH``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import hal

from .installer import install, run_python

HERE = Path(__file__).resolve().parent
PLUGINS = ("hal_test_broken_import", "hal_test_old_major", "hal_test_discovery_fails", "hal_test_newer_minor")
CORE = f"{hal.API_VERSION[0]}.{hal.API_VERSION[1]}"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("site-packages")
    for plugin in PLUGINS:
        install(HERE / plugin, site)
    return site


def rows(table: str) -> dict[str, str]:
    """The lines of a ``hal backends`` table, by backend name."""
    return {line.split()[0]: line for line in table.splitlines()[2:] if line.strip()}


def test_hal_backends_lists_every_broken_plugin_with_a_fix(site: Path) -> None:
    out = run_python(site, "-m", "hal", "backends")
    assert out.returncode == 0, out.stderr
    table = rows(out.stdout)

    broken = table["brokenimport"]
    assert " error " in broken and "failed to import" in broken
    assert "No module named 'acme_accelerator_sdk'" in broken  # what is missing ...
    assert "hal_test_broken_import" in broken and "__init__.py:3" in broken  # ... and where it is imported

    old = table["oldmajor"]
    assert " error " in old and " 0.9 " in old
    assert f"targets hal vendor API 0.9, but this hal provides {CORE}" in old
    assert f"port the plugin to API {hal.API_VERSION[0]}.x" in old

    newer = table["newerminor"]
    assert " error " in newer and " 1.99 " in newer
    assert f"needs hal vendor API 1.99, newer than this hal's {CORE}" in newer and "upgrade hal-sdk" in newer

    flaky = table["flakydriver"]  # listed under its backend name, with the plugin that provides it
    assert " discoveryfails " in flaky and " error " in flaky and "device discovery failed" in flaky
    assert "/dev/acme0 not found" in flaky and "hal_test_discovery_fails" in flaky

    assert " loaded " in table["cpu"]


def test_other_backends_keep_working_in_the_same_process(site: Path) -> None:
    program = """if True:
        import json, numpy as np, hal
        dev = hal.device("cpu")
        x = dev.array(np.arange(8, dtype=np.float32))
        y = dev.zeros((8,), np.float32)
        dev.default_queue.copy(y, x)
        status = {b.name: [b.status, b.api_version and list(b.api_version)] for b in hal.backends()}
        print(json.dumps({"sum": float(y.numpy().sum()), "devices": [d.spec for d in hal.devices()],
                          "status": status}))
    """
    out = run_python(site, "-c", program)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["sum"] == 28.0 and "cpu:0" in result["devices"]
    assert result["status"]["cpu"] == ["loaded", list(hal.API_VERSION)]
    assert result["status"]["brokenimport"] == ["error", None]
    assert result["status"]["oldmajor"] == ["error", [0, 9]]
    assert result["status"]["newerminor"] == ["error", [1, 99]]
    assert result["status"]["flakydriver"] == ["error", list(hal.API_VERSION)]
    assert not any(spec.startswith(("flakydriver", "oldmajor", "newerminor")) for spec in result["devices"])

    devices = run_python(site, "-m", "hal", "devices")
    assert devices.returncode == 0 and "cpu:0" in devices.stdout
    assert "4 backend(s) failed to load; see `hal backends`" in devices.stderr


def test_disabled_plugin_is_never_imported(site: Path) -> None:
    out = run_python(site, "-m", "hal", "backends", HAL_PLUGINS_DISABLED="brokenimport,flakydriver")
    assert out.returncode == 0, out.stderr
    table = rows(out.stdout)
    for name in ("brokenimport", "flakydriver"):
        assert " disabled " in table[name] and "disabled by HAL_PLUGINS_DISABLED" in table[name]
    assert "acme_accelerator_sdk" not in out.stdout  # the module was not imported at all
    assert " error " in table["oldmajor"] and " loaded " in table["cpu"]
