"""Devices for the operator tests: the CPU device, an interpreter-backed simulated device
with every kernel feature (f64 included), and one that runs no kernels at all."""

from __future__ import annotations

from typing import Any

import pytest

import hal
from hal._features import Feature
from hal._info import DeviceInfo
from hal.backend import Backend, DeviceImpl

from ..core.fakes import FakeDevice, register_backend

KERNEL_FEATURES = frozenset({Feature.KERNELS, Feature.F64, Feature.SHARED_MEMORY, Feature.BARRIERS,
                             Feature.ATOMICS, Feature.MULTI_DIM, Feature.SIMULATED_TIMING})


class OpsFakeDevice(FakeDevice):
    """Index 0: runs kernels on the reference interpreter; index 1: runs nothing but copies."""

    def info(self) -> DeviceInfo:
        kernels = self.index == 0
        return DeviceInfo(name=f"Ops test device {self.index}", backend="opsfake", index=self.index, kind="gpu",
                          vendor="hal tests", memory_bytes=self.memory_bytes, compute_units=1,
                          max_block_size=256, warp_size=32, shared_memory_bytes=16384, simulated=True,
                          host_visible=True, features=KERNEL_FEATURES if kernels else frozenset())


class OpsFakeBackend(Backend):
    name = "opsfake"
    version = "1.0"

    def device_count(self) -> int:
        return 2

    def open_device(self, index: int, options: Any) -> DeviceImpl:
        return OpsFakeDevice(index, 64 << 20, host_visible=True)


register_backend(OpsFakeBackend, "opsfake")


@pytest.fixture
def interp() -> hal.Device:
    """Kernels on the reference interpreter (simulated, so host natives do not serve it)."""
    return hal.device("opsfake:0")


@pytest.fixture
def nokernels() -> hal.Device:
    """A device that declares no features: every operator is unsupported."""
    return hal.device("opsfake:1")


@pytest.fixture
def cpu() -> hal.Device:
    return hal.device("cpu")


def _simgpu() -> hal.Device | None:
    """simgpu:0, registered in-process when no entry point provides it (a source checkout)."""
    try:
        return hal.device("simgpu")
    except hal.DeviceNotFoundError:
        pass
    try:
        import hal_simgpu
    except ImportError:
        return None
    if "simgpu" not in {s.name for s in hal.backends()}:
        hal.register_plugin(hal_simgpu, "simgpu")
    try:
        return hal.device("simgpu")
    except hal.HalError:
        return None


@pytest.fixture(params=["interp", "simgpu", "cpu"])
def kernel_device(request: pytest.FixtureRequest) -> hal.Device:
    """Every available device that runs kernels (the portable implementations are tested on each)."""
    if request.param == "interp":
        return hal.device("opsfake:0")
    if request.param == "simgpu":
        dev = _simgpu()
        if dev is None:
            pytest.skip("hal_simgpu is not available")
        return dev
    dev = hal.device("cpu")
    try:
        dev.compile(_probe())
    except hal.UnsupportedError as exc:
        pytest.skip(f"the CPU device does not run kernels yet: {exc}")
    return dev


def _probe() -> Any:
    @hal.kernel
    def probe(x: hal.Ptr[hal.f32]):
        x[0] = 1.0
    return probe
