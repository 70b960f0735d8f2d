"""The fpga backend: synthesis figures against hand-computed pipelines, reconfiguration, exact results."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from pydantic import BaseModel

import hal
from hal.kernel.types import f32, i32

from . import kernels as K

if TYPE_CHECKING:
    from hal_fpga._presets import Part
    from hal_fpga._report import SynthesisReport


def loop_line(kernel: hal.kernel.KernelFunction) -> int:
    """The source line of the kernel's first loop."""
    from hal.kernel import ir

    return next(s.line for s in ir.walk_statements(kernel.ir.body) if isinstance(s, (ir.For, ir.While)))


def launch(kernel: hal.kernel.KernelFunction, grid: int, block: int, *args: object) -> hal.ProfileRecord:
    """Launch once under a profile; the launch's record."""
    with hal.profile() as prof:
        kernel[grid, block](*args)
    (record,) = prof.records
    return record


# ----------------------------------------------------------------- the classic check
def test_twenty_iteration_loop_is_22_cycles_pipelined(fpga: hal.Device) -> None:
    a, b = np.arange(20, dtype=np.int32), np.arange(20, dtype=np.int32) * 7
    da, db, dc = fpga.array(a), fpga.array(b), fpga.zeros((20,), np.int32)
    loop = fpga.compile(K.add20).report().loop(loop_line(K.add20))
    assert (loop.trips, loop.ii, loop.depth, loop.cycles, loop.cycles_unpipelined) == (20, 1, 3, 22, 60)
    record = launch(K.add20, 1, 1, da, db, dc)
    assert record.counters["cycles"] == 22
    assert (record.counters["ii"], record.counters["depth"]) == (1, 3)
    np.testing.assert_array_equal(dc.numpy(), a + b)


def test_twenty_iteration_loop_is_60_cycles_unpipelined() -> None:
    dev = hal.device("fpga", pipeline=False)
    loop = dev.compile(K.add20).report().loop(loop_line(K.add20))
    assert (loop.ii, loop.depth, loop.cycles) == (3, 3, 60)
    ones = dev.array(np.ones(20, np.int32))
    assert launch(K.add20, 1, 1, ones, ones, dev.zeros((20,), np.int32)).counters["cycles"] == 60


# ----------------------------------------------------------------- recurrences and streams
def test_float_accumulator_ii_is_the_adder_latency(fpga: hal.Device) -> None:
    from hal_fpga._ops import op_cost

    fadd = op_cost("add", f32).latency
    report = fpga.compile(K.accumulate).report()
    loop = report.loop(loop_line(K.accumulate))
    assert loop.ii == loop.ii_recurrence == fadd == 4
    assert "'s'" in loop.ii_reason
    assert (loop.depth, loop.trips, loop.trips_expr) == (1 + fadd, None, "n")
    x = fpga.array(np.full(100, 0.5, np.float32))
    out = fpga.zeros((1,), np.float32)
    record = launch(K.accumulate, 1, 1, x, out, 100)
    # loop: depth + II * 99; then the store of out[0]: 1 cycle
    assert record.counters["cycles"] == (1 + fadd) + fadd * 99 + 1
    assert out.numpy()[0] == 50.0


def test_work_items_stream_through_one_pipeline(fpga: hal.Device) -> None:
    report = fpga.compile(K.saxpy).report()
    # i < n: 1 | x[i]: 1, a * x: +3 = 4 | y[i]: 1 | add: max(4, 1) + 4 = 8 | store: 9
    assert (report.workitems.pipelined, report.workitems.depth, report.workitems.ii) == (True, 9, 1)
    x = np.linspace(-3, 3, 1000, dtype=np.float32)
    y = np.linspace(1, 2, 1000, dtype=np.float32)
    dy = fpga.array(y)
    record = launch(K.saxpy, 4, 256, 2.5, fpga.array(x), dy, 1000)
    assert record.counters["cycles"] == 9 + 1 * (1024 - 1)
    np.testing.assert_array_equal(dy.numpy(), np.float32(2.5) * x + y)


def test_barrier_phases_per_work_group(fpga: hal.Device) -> None:
    report = fpga.compile(K.reverse_blocks).report()
    # phase 1: x[gid] 1, tile store 2 | barrier | 63 - t: 3, tile load 4, store 5
    assert (report.workitems.depth, report.workitems.ii) == (5, 1)
    assert [(a.name, a.space, a.bram36) for a in report.arrays if a.space == "shared"] == [("tile", "shared", 1)]
    x = np.arange(256, dtype=np.float32)
    dy = fpga.zeros((256,), np.float32)
    record = launch(K.reverse_blocks, 4, 64, fpga.array(x), dy)
    # each of 4 groups: depth once, then II * (64 - 1) per phase, 2 phases
    assert record.counters["cycles"] == 4 * 5 + 4 * 2 * 63
    np.testing.assert_array_equal(dy.numpy(), x.reshape(4, 64)[:, ::-1].ravel())


def test_trip_counts_known_only_at_run_time(fpga: hal.Device) -> None:
    out = fpga.zeros((64,), np.int32)
    record = launch(K.triangle, 1, 64, out)
    loop = fpga.compile(K.triangle).report().loop(loop_line(K.triangle))
    assert (loop.pipelined, loop.ii, loop.depth, loop.trips) == (True, 1, 1, None)
    assert (loop.last_entries, loop.last_trips) == (63, 64 * 63 // 2)
    # loop: depth * entries + II * (trips - entries); work-items: 64 x 1 (the store after the loop)
    assert loop.last_cycles == 63 + (2016 - 63)
    assert record.counters["cycles"] == loop.last_cycles + 64
    i = np.arange(64)
    np.testing.assert_array_equal(out.numpy(), i * (i - 1) // 2)


def test_while_loop_recurrence_and_trips(fpga: hal.Device) -> None:
    from hal_fpga._ops import op_cost

    x = np.arange(1, 33, dtype=np.int32)
    steps = fpga.zeros((32,), np.int32)
    launch(K.collatz, 1, 32, fpga.array(x), steps)
    loop = fpga.compile(K.collatz).report().loop(loop_line(K.collatz))
    # v % 2 == 0 (mod + eq) selects the new v: that path is the recurrence
    assert loop.ii == op_cost("mod", i32).latency + op_cost("eq", i32).latency == 38
    expected = []
    for v in x.tolist():
        k = 0
        while v != 1:
            v, k = (v // 2 if v % 2 == 0 else 3 * v + 1), k + 1
        expected.append(k)
    np.testing.assert_array_equal(steps.numpy(), expected)
    assert loop.last_trips == sum(expected)


# ----------------------------------------------------------------- budget
def _big_kernel(tmp_path: Path, multiplies: int, name: str = "big") -> hal.kernel.KernelFunction:
    """A one-work-item kernel of ``multiplies`` f64 multiplies (11 DSP48E2 each)."""
    body = "\n".join(f"    acc = acc * x[{k % 4}]" for k in range(multiplies))
    src = (f"import hal\n\n@hal.kernel\ndef {name}(x: hal.Ptr[hal.f64], out: hal.Ptr[hal.f64]):\n"
           f"    acc = x[0]\n{body}\n    out[0] = acc\n")
    path = tmp_path / f"{name}kernel.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location(f"{name}kernel", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[f"{name}kernel"] = module
    spec.loader.exec_module(module)
    return getattr(module, name)


def test_design_over_the_dsp_budget_is_a_compile_error(fpga: hal.Device, tmp_path: Path) -> None:
    big = _big_kernel(tmp_path, 1200)  # 1,200 f64 multipliers x 11 DSP48E2 = 13,200 > 12,288
    with pytest.raises(hal.CompileError) as err:
        fpga.compile(big)
    message = str(err.value)
    assert "kernel 'big' does not fit xcu250" in message
    assert "DSP 13,200 of 12,288 (+912 over)" in message
    assert message.count("over)") == 1 and "1,200 x mul f64" in message
    # the device keeps working
    ones = fpga.array(np.ones(20, np.int32))
    out = fpga.zeros((20,), np.int32)
    K.add20[1, 1](ones, ones, out)
    np.testing.assert_array_equal(out.numpy(), 2)


def test_a_design_that_fits_reports_its_use(fpga: hal.Device, tmp_path: Path) -> None:
    report = fpga.compile(_big_kernel(tmp_path, 100)).report()
    assert report.resource("DSP").used == 1100
    assert report.operators[0].operator == "mul f64" and report.operators[0].count == 100


# ----------------------------------------------------------------- reconfiguration
def kernel_loads(prof: hal.Profile) -> list[tuple[str, float, list[str]]]:
    """(kernel, reconfig_s, evicted) of each kernel launch recorded."""
    return [(r.name, r.counters["reconfig_s"], r.counters["evicted"]) for r in prof.records if r.kind == "kernel"]


def test_one_slot_links_kernels_into_one_bitstream() -> None:
    dev = hal.device("fpga", clock_mhz=250)  # a fresh device: nothing configured yet
    x, out = dev.array(np.ones(8, np.float32)), dev.zeros((1,), np.float32)
    ones = dev.array(np.ones(20, np.int32))
    c = dev.zeros((20,), np.int32)
    full = hal_fpga_preset().full_load_s
    with hal.profile() as prof:
        K.add20[1, 1](ones, ones, c)          # first launch: full load
        K.add20[1, 1](ones, ones, c)
        K.accumulate[1, 1](x, out, 8)         # re-linked with add20: one more full load
        K.add20[1, 1](ones, ones, c)          # both in the loaded image: free from now on
        K.accumulate[1, 1](x, out, 8)
        K.add20[1, 1](ones, ones, c)
    assert kernel_loads(prof) == [("add20", full, []), ("add20", 0.0, []), ("accumulate", full, []),
                                  ("add20", 0.0, []), ("accumulate", 0.0, []), ("add20", 0.0, [])]
    assert [r.counters["reconfigured"] for r in prof.records] == [True, False, True, False, False, False]
    for r in prof.records:
        assert r.device_s == pytest.approx(r.counters["reconfig_s"] + r.counters["kernel_s"])
        assert r.counters["kernel_s"] == pytest.approx(r.counters["cycles"] / 250e6 + 10e-6)
    np.testing.assert_array_equal(c.numpy(), 2)
    assert out.numpy()[0] == 8.0


def test_a_kernel_that_does_not_fit_next_to_the_loaded_ones_evicts_them(tmp_path: Path) -> None:
    dev = hal.device("fpga", clock_mhz=200)  # a fresh device (hal.device caches one per options)
    big_a = _big_kernel(tmp_path, 1100, "big_a")  # 12,100 DSP of 12,288: fits alone, or next to add20 (0 DSP)
    big_b = _big_kernel(tmp_path, 600, "big_b")   # 6,600 DSP: not next to big_a
    x, y = dev.array(np.full(4, 1.0)), dev.zeros((1,), np.float64)
    ones, c = dev.array(np.ones(20, np.int32)), dev.zeros((20,), np.int32)
    full = hal_fpga_preset().full_load_s
    with hal.profile() as prof:
        K.add20[1, 1](ones, ones, c)
        big_a[1, 1](x, y)                     # linked next to add20
        K.add20[1, 1](ones, ones, c)          # free; big_a is now the least recently used
        big_b[1, 1](x, y)                     # does not fit next to big_a: big_a evicted, add20 kept
        K.add20[1, 1](ones, ones, c)
        big_b[1, 1](x, y)
        big_a[1, 1](x, y)                     # back: the least recently used (add20), then big_b, make room
    assert kernel_loads(prof) == [("add20", full, []), ("big_a", full, []), ("add20", 0.0, []),
                                  ("big_b", full, ["big_a"]), ("add20", 0.0, []), ("big_b", 0.0, []),
                                  ("big_a", full, ["add20", "big_b"])]
    assert y.numpy()[0] == 1.0


def partial_load_s(*reports: SynthesisReport) -> float:
    """Load seconds of one partial bitstream linking the designs of ``reports`` (u250, ICAP 400 MB/s)."""
    part = hal_fpga_preset()
    totals = {"LUT": part.lut, "FF": part.ff, "DSP": part.dsp, "BRAM": part.bram36}
    fraction = max(sum(r.resource(k).used for r in reports) / n for k, n in totals.items())
    return int(part.full_bitstream_bytes * fraction) / part.config_bytes_s


def test_partial_reconfiguration_with_slots(tmp_path: Path) -> None:
    dev = hal.device("fpga", slots=2)
    q = dev.queue()
    big_a, big_b, big_c = (_big_kernel(tmp_path, n, name) for n, name in ((500, "big_a"), (300, "big_b"),
                                                                         (400, "big_c")))
    reports = {k.name: dev.compile(k).report() for k in (K.add20, big_a, big_b, big_c)}
    for r in reports.values():
        assert r.partial_reconfiguration and r.resource("DSP").available == 12_288 // 2
        assert r.load_s == pytest.approx(r.bitstream_bytes / 400e6)
        assert 0 < r.bitstream_bytes < 107_000_000 // 2
        assert r.load_s == pytest.approx(partial_load_s(r), abs=1e-8)
    add20, a, b, c = reports.values()
    ones, out = dev.array(np.ones(20, np.int32)), dev.zeros((20,), np.int32)
    x, y = dev.array(np.full(4, 1.0)), dev.zeros((1,), np.float64)
    e0 = q.record()
    with hal.profile() as prof:
        K.add20[1, 1, q](ones, ones, out)     # slot 1: add20
        big_a[1, 1, q](x, y)                  # 5,500 DSP fits next to add20: slot 1 re-linked
        big_b[1, 1, q](x, y)                  # 3,300 more does not fit slot 1's 6,144: slot 2
        K.add20[1, 1, q](ones, ones, out)     # resident: no load
        big_c[1, 1, q](x, y)                  # fits neither: the least recently used slot (2) drops big_b
    e1 = q.record()
    assert kernel_loads(prof) == [
        ("add20", pytest.approx(add20.load_s), []), ("big_a", pytest.approx(partial_load_s(add20, a)), []),
        ("big_b", pytest.approx(b.load_s), []), ("add20", 0.0, []), ("big_c", pytest.approx(c.load_s), ["big_b"])]
    assert e1.elapsed(e0) == pytest.approx(sum(r.device_s for r in prof.records))


def hal_fpga_preset() -> Part:
    from hal_fpga._presets import PRESETS

    return PRESETS["u250"]


# ----------------------------------------------------------------- language coverage
def test_atomics_are_unsupported_by_name(fpga: hal.Device) -> None:
    assert not fpga.supports("atomics")
    with pytest.raises(hal.UnsupportedError) as err:
        fpga.compile(K.histogram)
    assert err.value.feature == "atomics" and "atomics" in str(err.value)


def test_synthesis_names_the_atomic_it_cannot_build() -> None:
    from hal_fpga._synth import synthesize

    with pytest.raises(hal.UnsupportedError, match="hal.atomic_add") as err:
        synthesize(K.histogram.ir)
    assert err.value.feature == "atomics"


# ----------------------------------------------------------------- device and report
def test_device_info_and_options() -> None:
    dev = hal.device("fpga", preset="u50")
    info = dev.info
    assert (info.kind, info.backend, info.simulated) == ("fpga", "fpga", True)
    assert "U50" in info.name and "preset u50" in (info.model or "")
    with pytest.raises(hal.InvalidArgumentError, match="preset"):
        hal.device("fpga", preset="not-a-part")
    with pytest.raises(hal.InvalidArgumentError, match="slots"):
        hal.device("fpga", slots=0)


def test_report_is_a_pydantic_model_with_a_table(fpga: hal.Device) -> None:
    report = fpga.compile(K.add20).report()
    assert isinstance(report, BaseModel)
    assert type(report).model_validate_json(report.model_dump_json()) == report
    text = str(report)
    assert "xcu250" in text and "analytic estimate" in text and "for i (line" in text
    assert math.isclose(report.clock_mhz, 300.0) and report.resource("BRAM").used == 3 * 2
