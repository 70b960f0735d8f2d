"""FpgaDevice, FpgaExecutable: the simulated FPGA card behind hal's vendor interface.

Results are the reference interpreter's; time is the synthesis model's
(:mod:`._synth`, :mod:`._timing`) plus bitstream loads: a kernel not linked into
one of the device's configured slots is linked into one first and that slot
reloaded (:mod:`._slots`).
The model's modules load on first compile, so opening the device stays cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from hal.backend import Dim3, Executable, Feature, kernel_args
from hal.kernel import ir
from hal.sim import SimDevice

from ._presets import MODEL_VERSION, PRESETS, RESOURCES, Part
from ._slots import Resources, Slots

if TYPE_CHECKING:

    from hal.backend import DeviceInfo

    from ._report import SynthesisReport
    from ._synth import Design
    from ._timing import LaunchTiming

_FEATURES = frozenset({
    Feature.KERNELS, Feature.F64, Feature.I64, Feature.SHARED_MEMORY, Feature.BARRIERS, Feature.LOCAL_ARRAYS,
    Feature.MULTI_DIM, Feature.BOUNDS_CHECKS, Feature.SIMULATED_TIMING, Feature.SUBGROUPS,
    Feature.F16, Feature.BF16, Feature.SMALL_INTS,
})
"""No ATOMICS: HLS m_axi ports have no atomic read-modify-write."""


class FpgaExecutable(Executable):
    """A synthesised kernel: its design, its bitstream (alone in its slot), and the timing of its last launch."""

    def __init__(self, kernel: ir.Kernel, design: Design, device: FpgaDevice) -> None:
        self.kernel = kernel
        self.design = design
        self.device = device
        self.bitstream_bytes, self.load_s = device.bitstream(design.resources)
        self.last: tuple[LaunchTiming, float] | None = None

    def report(self) -> SynthesisReport:
        from ._report import build_report

        dev = self.device
        last, reconfig_s = self.last if self.last else (None, 0.0)
        return build_report(self.design, dev.part, clock_mhz=dev.clock_hz / 1e6, slots=dev.slots,
                            estimate=dev.estimate, bitstream_bytes=self.bitstream_bytes, load_s=self.load_s,
                            last=last, last_reconfig_s=reconfig_s)


class FpgaDevice(SimDevice):
    """One simulated card: a part's fabric split into ``slots`` reconfigurable regions."""

    host_visible = False

    def __init__(self, index: int, options: dict[str, Any]) -> None:
        self.index = index
        self.part: Part = PRESETS[options["preset"]]
        self.clock_hz = (options["clock_mhz"] or self.part.clock_mhz) * 1e6
        self.slots: int = options["slots"]
        self.pipeline: bool = options["pipeline"]
        self.estimate = (f"analytic estimate: hal_fpga pipeline model v{MODEL_VERSION}, preset {self.part.key}"
                         f"{'' if self.pipeline else ', pipelining off'}")
        self._slots = Slots(self.part.budget(self.slots), self.slots)

    def info(self) -> DeviceInfo:
        from hal.backend import DeviceInfo

        part = self.part
        return DeviceInfo(
            name=f"{part.name} ({part.device}, simulated)", backend="fpga", index=self.index, kind="fpga",
            vendor="AMD Xilinx", memory_bytes=part.ddr_bytes, compute_units=self.slots, max_block_size=1024,
            warp_size=1, shared_memory_bytes=part.budget(self.slots)["BRAM"] * 36 * 1024 // 8,
            features=_FEATURES, simulated=True, host_visible=False,
            peak_bandwidth=part.ddr_banks * part.ddr_bank_bytes_s,  # peak FLOPs depend on the design: None
            model=f"{self.estimate}, {self.clock_hz / 1e6:g} MHz, {self.slots} slot(s)")

    # ------------------------------------------------------------ compile
    def compile(self, kernel: ir.Kernel) -> FpgaExecutable:
        from ._synth import check_fit, synthesize

        design = synthesize(kernel, self.pipeline)
        check_fit(kernel, design, self.part.budget(self.slots), self.part.device, self.slots)
        return FpgaExecutable(kernel, design, self)

    def bitstream(self, resources: Resources) -> tuple[int, float]:
        """Bytes and load seconds of a slot's bitstream holding designs of ``resources`` in all: the
        full device with one slot, else a partial bitstream covering the fraction of the fabric
        they use (the busiest resource)."""
        part = self.part
        if self.slots == 1:
            return part.full_bitstream_bytes, part.full_load_s
        total = part.budget(1)
        fraction = max(resources[k] / total[k] for k in RESOURCES)
        nbytes = int(part.full_bitstream_bytes * fraction)
        return nbytes, nbytes / part.config_bytes_s

    def _configure(self, exe: FpgaExecutable) -> tuple[float, list[str]]:
        """Seconds to make ``exe`` resident (0 if it is linked in a loaded slot) and the kernels evicted for it."""
        linked, evicted = self._slots.configure(exe.kernel.hash(), exe.kernel.name, exe.design.resources)
        return (0.0 if linked is None else self.bitstream(linked)[1]), evicted

    # ------------------------------------------------------------ run
    def transfer_seconds(self, kind: str, nbytes: int) -> float:
        part = self.part
        if kind in ("copy_h2d", "copy_d2h"):
            return part.transfer_s + nbytes / part.pcie_bytes_s
        passes = 2 if kind == "copy_d2d" else 1  # a device copy reads and writes the bank
        return part.transfer_s + passes * nbytes / part.ddr_bank_bytes_s

    def execute(self, exe: Executable, grid: Dim3, block: Dim3, args: Sequence[Any]) -> tuple[float, dict[str, Any]]:
        assert isinstance(exe, FpgaExecutable)
        reconfig_s, evicted = self._configure(exe)
        from hal.kernel import interpreter

        from ._timing import LoopTracer, launch_timing

        tracer = LoopTracer(exe.design)
        interpreter.run(exe.kernel, grid, block, kernel_args(exe.kernel, args), tracer=tracer)
        t = launch_timing(exe.design, tracer, grid, block, self.clock_hz, self.part.ddr_bank_bytes_s,
                          self.part.launch_s)
        exe.last = (t, reconfig_s)
        cycles_of = {0: t.workitem_cycles, **{r.line: r.cycles for r in t.loops}}
        main = max([exe.design.workitems, *exe.design.loops], key=lambda p: cycles_of[p.line])
        return reconfig_s + t.kernel_s, {
            "cycles": t.cycles, "compute_s": t.compute_s, "memory_s": t.memory_s, "kernel_s": t.kernel_s,
            "reconfig_s": reconfig_s, "reconfigured": reconfig_s > 0, "evicted": evicted,
            "dram_bytes": t.dram_bytes, "bound": t.bound, "ii": main.ii, "depth": main.depth,
            "pipeline": main.name, "model": self.estimate,
        }
