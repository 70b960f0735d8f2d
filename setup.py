"""Builds the CPU backend's C runtime (csrc/) as a cffi API-mode extension at install time, and
ships the kernel ABI header with it: the CPU backend compiles generated kernels against it.

The extension uses only Python's stable ABI (cffi builds it so: ``_runtime.abi3.so``), so one wheel
per platform serves every Python from 3.10 on. A release is built by ``.ci/build-wheel``."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithAbiHeader(build_py):
    def run(self) -> None:
        super().run()
        include = Path(self.build_lib) / "hal_cpu" / "include"
        include.mkdir(parents=True, exist_ok=True)
        shutil.copy(Path(__file__).parent / "csrc" / "hal_kernel_abi.h", include)


setup(cffi_modules=["csrc/build_runtime.py:ffibuilder"], cmdclass={"build_py": BuildPyWithAbiHeader},
      options={"bdist_wheel": {"py_limited_api": "cp310"}})
