"""The synthesis report: what ``exe.report()`` returns (a pydantic model; ``str()`` is the table)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from ._presets import RESOURCES, Part
from ._synth import Design, Pipeline
from ._timing import LaunchTiming, LoopRun


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class LoopReport(_Frozen):
    """One pipeline: per entry, statically; and over the last launch, as run."""

    name: str
    kind: str
    line: int
    level: int
    """Nesting: 0 for the work-item loop, 1 for a loop directly in the kernel body, ..."""
    pipelined: bool
    trips: int | None
    """Iterations per entry when the bounds are constants."""
    trips_expr: str
    ii: int
    ii_resource: int
    ii_recurrence: int
    ii_reason: str
    depth: int
    cycles: int | None
    """Cycles of one entry, inner loops included, when every trip count is constant."""
    cycles_unpipelined: int | None
    """``depth * trips``: the same entry without pipelining (inner loops excluded)."""
    last_entries: int | None = None
    last_trips: int | None = None
    last_cycles: int | None = None


class ResourceReport(_Frozen):
    resource: str
    used: int
    available: int

    @property
    def utilization(self) -> float:
        return self.used / self.available


class OperatorReport(_Frozen):
    """Every instance of one operator (``"mul f64"``) and what they cost together."""

    operator: str
    count: int
    latency: int
    dsp: int
    lut: int
    ff: int


class ArrayReport(_Frozen):
    name: str
    space: str
    bram36: int


class LaunchReport(_Frozen):
    grid: tuple[int, int, int]
    block: tuple[int, int, int]
    cycles: int
    workitem_cycles: int
    compute_s: float
    memory_s: float
    kernel_s: float
    dram_bytes: int
    bound: str
    reconfig_s: float


class SynthesisReport(_Frozen):
    """HLS-style report of one kernel on one part. Every figure is an analytic estimate."""

    kernel: str
    part: str
    device: str
    estimate: str
    clock_mhz: float
    slots: int
    workitems: LoopReport
    loops: list[LoopReport]
    resources: list[ResourceReport]
    operators: list[OperatorReport]
    arrays: list[ArrayReport]
    bitstream_bytes: int
    partial_reconfiguration: bool
    load_s: float
    last_launch: LaunchReport | None = None

    def loop(self, line: int) -> LoopReport:
        """The loop at source line ``line``."""
        return next(p for p in self.loops if p.line == line)

    def resource(self, name: str) -> ResourceReport:
        return next(r for r in self.resources if r.resource == name)

    def __str__(self) -> str:
        out = [f"Synthesis report: kernel '{self.kernel}' on {self.part} ({self.device}), "
               f"{self.clock_mhz:g} MHz, {self.slots} slot(s)",
               f"  {self.estimate}", "",
               f"  {'pipeline':<28} {'trips':>12} {'II':>4} {'res':>4} {'rec':>4} {'depth':>6} "
               f"{'cycles':>10} {'unpipelined':>12} {'last run':>12}"]
        for p in [self.workitems, *self.loops]:
            cycles = "-" if p.cycles is None else f"{p.cycles:,}"
            unpiped = "-" if p.cycles_unpipelined is None else f"{p.cycles_unpipelined:,}"
            last = "-" if p.last_cycles is None else f"{p.last_cycles:,}"
            trips = p.trips_expr if p.trips is None else f"{p.trips:,}"
            ii = f"{p.ii}" if p.pipelined else "seq"
            name = "  " * p.level + p.name
            out.append(f"  {name:<28} {trips[:12]:>12} {ii:>4} {p.ii_resource:>4} {p.ii_recurrence:>4} "
                       f"{p.depth:>6} {cycles:>10} {unpiped:>12} {last:>12}")
            if p.ii_reason != "-":
                out.append(f"  {'':<28} II: {p.ii_reason}")
        out += ["", f"  {'resource':<10} {'used':>12} {'available':>12} {'util':>7}"]
        for r in self.resources:
            out.append(f"  {r.resource:<10} {r.used:>12,} {r.available:>12,} {r.utilization:>7.1%}")
        if self.operators:
            out += ["", f"  {'operator':<22} {'count':>6} {'latency':>8} {'DSP':>8} {'LUT':>10} {'FF':>10}"]
            out += [f"  {o.operator:<22} {o.count:>6} {o.latency:>8} {o.dsp:>8,} {o.lut:>10,} {o.ff:>10,}"
                    for o in self.operators]
        kind = "partial" if self.partial_reconfiguration else "full"
        out += ["", f"  bitstream: {kind}, {self.bitstream_bytes:,} bytes, loads in {self.load_s * 1e3:.1f} ms"]
        run = self.last_launch
        if run is not None:
            out.append(f"  last launch grid {run.grid} block {run.block}: {run.cycles:,} cycles = "
                       f"{run.compute_s * 1e6:.3f} us compute, {run.memory_s * 1e6:.3f} us DRAM "
                       f"({run.dram_bytes:,} bytes, {run.bound}-bound), {run.kernel_s * 1e6:.3f} us with "
                       f"launch, reconfiguration {run.reconfig_s * 1e3:.1f} ms")
        return "\n".join(out)


def _levels(design: Design) -> dict[int, int]:
    levels: dict[int, int] = {}

    def visit(p: Pipeline, level: int) -> None:
        levels[p.line] = level
        for line in p.inner:
            visit(design.loop(line), level + 1)
    for line in design.workitems.inner:
        visit(design.loop(line), 1)
    return levels


def _loop_report(design: Design, p: Pipeline, level: int, run: LoopRun | None) -> LoopReport:
    return LoopReport(
        name=p.name, kind=p.kind, line=p.line, level=level, pipelined=p.pipelined, trips=p.trips,
        trips_expr=p.trips_expr, ii=p.ii, ii_resource=p.ii_resource, ii_recurrence=p.ii_recurrence,
        ii_reason=p.ii_reason, depth=p.depth, cycles=design.static_cycles(p),
        cycles_unpipelined=None if p.trips is None or not p.pipelined else p.depth * p.trips,
        last_entries=None if run is None else run.entries, last_trips=None if run is None else run.trips,
        last_cycles=None if run is None else run.cycles)


def build_report(design: Design, part: Part, *, clock_mhz: float, slots: int, estimate: str,
                 bitstream_bytes: int, load_s: float, last: LaunchTiming | None,
                 last_reconfig_s: float) -> SynthesisReport:
    budget = part.budget(slots)
    runs = {r.line: r for r in last.loops} if last else {}
    levels = _levels(design)
    wi = _loop_report(design, design.workitems, 0, None)
    if last is not None:
        n = last.grid[0] * last.grid[1] * last.grid[2] * last.block[0] * last.block[1] * last.block[2]
        wi = wi.model_copy(update={"last_entries": 1, "last_trips": n, "last_cycles": last.workitem_cycles})
    return SynthesisReport(
        kernel=design.kernel, part=part.name, device=part.device, estimate=estimate, clock_mhz=clock_mhz,
        slots=slots, workitems=wi,
        loops=[_loop_report(design, p, levels.get(p.line, 1), runs.get(p.line)) for p in design.loops],
        resources=[ResourceReport(resource=k, used=design.resources[k], available=budget[k]) for k in RESOURCES],
        operators=[OperatorReport(operator=name, count=n, latency=c.latency, dsp=n * c.dsp, lut=n * c.lut,
                                  ff=n * c.ff) for name, n, c in design.operators],
        arrays=[ArrayReport(name=a, space=s, bram36=b) for a, s, b in design.arrays],
        bitstream_bytes=bitstream_bytes, partial_reconfiguration=slots > 1, load_s=load_s,
        last_launch=None if last is None else LaunchReport(
            grid=last.grid, block=last.block, cycles=last.cycles, workitem_cycles=last.workitem_cycles,
            compute_s=last.compute_s, memory_s=last.memory_s, kernel_s=last.kernel_s,
            dram_bytes=last.dram_bytes, bound=last.bound, reconfig_s=last_reconfig_s))
