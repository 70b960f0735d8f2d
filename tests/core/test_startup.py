"""``import hal; hal.devices()`` loads nothing heavy: each module below is imported only when used.

Why each one: ``ml_dtypes`` (0.6 s in 0.7.0) when a bf16 dtype is first needed; ``pydantic`` when a
device's ``info`` is first read; ``pyopencl`` when an OpenCL device opens (devices are counted through
the ICD loader); ``cuda.*`` when a CUDA device opens (counted through libcuda); ``ray`` when a remote
device opens; ``cffi``'s backend and the CPU runtime (``hal_cpu._runtime``) when the CPU device is first used; test and demo tools never. Nothing must stay: every
plugin counts its devices without its SDK. numpy's optional parts that ``import numpy`` itself does not
load stay unloaded too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

HEAVY = ("ml_dtypes", "pydantic", "pydantic_core", "pyopencl", "cuda", "cuda.core", "cuda.bindings", "ray", "cffi",
         "_cffi_backend", "hal_cpu._runtime", "hypothesis", "pytest", "sklearn", "matplotlib", "scipy", "torch", "jax")

_PROBE = """
import json, sys
import numpy
before = set(sys.modules)
import hal
devices = hal.devices()
print(json.dumps({"devices": [d.spec for d in devices], "new": sorted(set(sys.modules) - before)}))
"""


def _probe() -> dict[str, list[str]]:
    env = {k: v for k, v in os.environ.items() if k not in ("HAL_PLUGINS_DISABLED", "HAL_PLUGINS")}
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, env=env, check=True,
                         timeout=120)
    result: dict[str, list[str]] = json.loads(out.stdout.splitlines()[-1])
    return result


def test_import_and_devices_load_no_heavy_module() -> None:
    result = _probe()
    assert "cpu:0" in result["devices"]
    new = set(result["new"])
    heavy = sorted(m for m in new if m.split(".")[0] in HEAVY or m in HEAVY or m.startswith("hal_cpu._runtime"))
    assert not heavy, f"import hal; hal.devices() imported {heavy}"
    extra_numpy = sorted(m for m in new if m.startswith("numpy."))
    assert not extra_numpy, f"numpy parts that `import numpy` does not load: {extra_numpy}"


def test_a_bf16_dtype_imports_ml_dtypes_when_first_used() -> None:
    code = ("import sys, hal; assert 'ml_dtypes' not in sys.modules; t = hal.bf16.np_dtype; "
            "assert 'ml_dtypes' in sys.modules and hal.kernel.types.ScalarType.from_dtype(t) is hal.bf16; "
            "assert hal.bf16.bits == 16 and 'float16' in str(hal.f16.np_dtype); print(t)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "bfloat16"
