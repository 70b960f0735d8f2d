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
    assert result["status"]["cpu"][0] == "loaded"
    assert result["status"]["brokenimport"] == ["error", None]
    assert result["status"]["oldmajor"] == ["error", [0, 9]]
    assert result["status"]["newerminor"] == ["error", [1, 99]]
    assert result["status"]["flakydriver"] == ["error", [1, 0]]  # a row has the API version its plugin declares
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


@pytest.fixture(scope="module")
def misbehaving_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("misbehaving-site-packages")
    install(HERE / "hal_test_misbehaving", site)
    return site


def test_plugins_that_break_the_contract_are_error_rows(misbehaving_site: Path) -> None:
    """A second ``cpu``, sys.exit() at import, a hook returning a class, device counts of '2' and -1: each an
    error row naming the plugin, what was wrong and what to do; the bundled cpu stays in use."""
    out = run_python(misbehaving_site, "-m", "hal", "backends", "--json")
    assert out.returncode == 0, out.stderr
    rows: dict[tuple[str, str], dict[str, object]] = {(r["name"], r["plugin"]): r for r in json.loads(out.stdout)}
    assert rows["cpu", "cpu"]["status"] == "loaded" and rows["unopenable", "unopenable"]["status"] == "loaded"
    errors = {key: str(row["error"]) for key, row in rows.items() if row["status"] == "error"}
    assert set(errors) == {("cpu", "clonecpu"), ("exits", "exits"), ("notbackends", "notbackends"),
                           ("strcount", "badcounts"), ("negativecount", "badcounts")}
    assert ("backend name 'cpu' of plugin 'clonecpu' (from distribution hal-test-misbehaving) is already "
            "registered by plugin 'cpu' (bundled with hal-sdk)") in errors["cpu", "clonecpu"]
    assert "failed to import: SystemExit: acme: no licence" in errors["exits", "exits"]
    assert "exits.py:5" in errors["exits", "exits"] and "never end the process" in errors["exits", "exits"]
    assert "hal_backends() returned <class 'hal_test_misbehaving.not_backends.NotReturned'>" in \
        errors["notbackends", "notbackends"]
    assert "device_count() returned '2' (str)" in errors["strcount", "badcounts"]
    assert "device_count() returned -1 (int)" in errors["negativecount", "badcounts"]

    program = """if True:
        import json, hal
        cpu = type(hal.device("cpu").backend).__module__
        try:
            hal.device("unopenable").info
        except hal.PluginError as exc:
            print(json.dumps({"cpu": cpu, "error": str(exc), "cause": repr(exc.__cause__)}))
    """
    out = run_python(misbehaving_site, "-c", program)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["cpu"].startswith("hal_cpu") and result["cause"] == "RuntimeError('firmware not loaded')"
    assert result["error"].startswith("backend 'unopenable' could not open device unopenable:0: RuntimeError")


def test_hal_devices_reports_a_device_that_cannot_be_opened_and_goes_on(misbehaving_site: Path) -> None:
    out = run_python(misbehaving_site, "-m", "hal", "devices")
    assert out.returncode == 0, out.stderr
    listed = [line.split()[0] for line in out.stdout.splitlines()[2:]]
    assert "cpu:0" in listed and "simgpu:0" in listed and "unopenable:0" not in listed
    (line,) = [line for line in out.stderr.splitlines() if "unopenable" in line]
    assert line.startswith("hal: unopenable:0: backend 'unopenable' could not open device unopenable:0: "
                           "RuntimeError: firmware not loaded")
    assert "Traceback" not in out.stderr
