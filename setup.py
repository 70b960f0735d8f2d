"""Builds the CPU backend's C runtime (csrc/) as a cffi API-mode extension at install time."""

from setuptools import setup

setup(cffi_modules=["csrc/build_runtime.py:ffibuilder"])
