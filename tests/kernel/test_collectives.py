"""Subgroup and work-group collectives: the frontend's lowering and checks, the interpreter's semantics
(partition, missing lanes, tree order, divergence faults), IR serialisation, and the CPU's C."""

from __future__ import annotations

import numpy as np
import pytest

import hal
from hal._errors import CompileError, DeviceFault, InvalidArgumentError
from hal.kernel import analysis, cemit, ir
from hal.kernel.interpreter import run
from hal.kernel.types import ScalarType

I32, F32 = ScalarType.I32, ScalarType.F32


@hal.kernel
def everything(x: hal.Ptr[hal.f32], out: hal.Ptr[hal.f32], lanes: hal.Ptr[hal.i32]):
    i = hal.global_id(0)
    v = x[i]
    out[i * 5] = hal.subgroup_reduce_add(v)
    out[i * 5 + 1] = hal.group_reduce_max(v)
    out[i * 5 + 2] = hal.shuffle(v, 3)
    out[i * 5 + 3] = hal.shuffle_xor(v, hal.min(1, hal.subgroup_size() - 1))  # a mask in [0, S)
    out[i * 5 + 4] = hal.group_reduce_add(v)
    lanes[i] = hal.subgroup_local_id() + 100 * hal.subgroup_size()


def interpret(kernel: ir.Kernel, groups: int, block: int, x: np.ndarray, size: int) -> tuple[np.ndarray, ...]:
    out = np.zeros(5 * len(x), x.dtype)
    lanes = np.zeros(len(x), np.int32)
    run(kernel, (groups, 1, 1), (block, 1, 1), [x.copy(), out, lanes], subgroup_size=size)
    return out.reshape(-1, 5), lanes


# ------------------------------------------------------------------ frontend
def test_collectives_lower_to_statements_with_temporaries() -> None:
    collectives = [s for s in ir.walk_statements(everything.ir.body) if isinstance(s, ir.Collective)]
    assert [(c.scope, c.op) for c in collectives] == [
        ("subgroup", "reduce_add"), ("group", "reduce_max"), ("subgroup", "shuffle"), ("subgroup", "shuffle_xor"),
        ("group", "reduce_add")]
    assert collectives[2].args[1] == ir.Const(3, I32)
    assert all(c.type is F32 and c.result.startswith("_t") for c in collectives)
    assert hal.Feature.SUBGROUPS in analysis.required_features(everything.ir)


def test_ir_with_collectives_round_trips_through_json() -> None:
    k = everything.ir
    assert ir.Kernel.from_json(k.to_json()) == k
    schema = ir.json_schema()
    assert schema["$defs"]["Collective"]["properties"]["scope"] == {"enum": ["subgroup", "group"]}


@pytest.mark.parametrize(("source", "message"), [
    ("y = hal.shuffle(v)", r"hal.shuffle takes \(v, lane\)"),
    ("y = hal.group_reduce_add(v, 1)", r"hal.group_reduce_add takes \(v\)"),
    ("y = hal.subgroup_reduce_max(v > 0.0)", "takes a number, not bool"),
    ("y = hal.shuffle(v, hal.i64(1))", "the lane of hal.shuffle is i64, not i32"),
    ("y = v > 0.0 and hal.group_reduce_add(v) > 0.0", "inside 'and'/'or'"),
    ("y = hal.subgroup_size(0)", r"hal.subgroup_size\(\) takes no arguments"),
    ("hal.group_reduce_add(v)", "as a statement does nothing"),
])
def test_misuse_is_a_compile_error(tmp_path, source: str, message: str) -> None:
    path = tmp_path / "kern.py"
    path.write_text(f"import hal\n\n@hal.kernel\ndef k(x: hal.Ptr[hal.f32]):\n    v = x[0]\n    {source}\n")
    namespace: dict[str, object] = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)  # noqa: S102 - the test's own kernel
    with pytest.raises(CompileError, match=message) as info:
        namespace["k"].ir  # type: ignore[attr-defined]  # noqa: B018
    assert info.value.line == 6


@hal.kernel
def divergent_shuffle(x: hal.Ptr[hal.f32]):
    i = hal.global_id(0)
    if i < 10:
        x[i] = hal.shuffle(x[i], 0)


def test_a_collective_in_divergent_control_flow_is_a_compile_error() -> None:
    with pytest.raises(CompileError, match=r"hal.shuffle\(\) in divergent control flow: the if condition"):
        divergent_shuffle.ir  # noqa: B018


@hal.kernel
def uniform_result(x: hal.Ptr[hal.i32], out: hal.Ptr[hal.i32]):
    n = hal.group_reduce_max(x[hal.global_id(0)])  # every work-item gets one value: uniform
    acc = 0
    for k in range(n):
        hal.barrier()
        acc += k
    out[hal.global_id(0)] = acc


def test_a_group_reduction_is_uniform_so_it_may_bound_a_loop_with_a_barrier() -> None:
    out = np.zeros(8, np.int32)
    run(uniform_result.ir, (2, 1, 1), (4, 1, 1), [np.arange(8, dtype=np.int32), out])
    assert out.tolist() == [3] * 4 + [21] * 4


# --------------------------------------------------------------- interpreter
def test_partition_and_missing_lanes() -> None:
    x = np.arange(20, dtype=np.float32)
    got, lanes = interpret(everything.ir, 2, 10, x, 4)  # subgroups of 4, 4 and 2 lanes per group
    assert lanes.tolist() == [400, 401, 402, 403, 400, 401, 402, 403, 400, 401] * 2
    assert got[:10, 0].tolist() == [6.0] * 4 + [22.0] * 4 + [17.0] * 2
    assert got[:10, 2].tolist() == [3.0] * 4 + [7.0] * 4 + [8.0, 9.0]  # lane 3 is missing from the last one
    assert got[:10, 3].tolist() == [1.0, 0.0, 3.0, 2.0, 5.0, 4.0, 7.0, 6.0, 9.0, 8.0]
    assert got[10:, 1].tolist() == [19.0] * 10 and got[:10, 4].tolist() == [45.0] * 10


def test_subgroup_size_one_makes_every_subgroup_collective_the_identity() -> None:
    x = np.random.default_rng(0).standard_normal(12).astype(np.float32)
    got, lanes = interpret(everything.ir, 3, 4, x, 1)
    assert np.array_equal(got[:, 0], x) and np.array_equal(got[:, 2], x) and np.array_equal(got[:, 3], x)
    assert lanes.tolist() == [100] * 12


def test_reductions_combine_neighbours_first() -> None:
    # f32: 1e8 + 1 rounds to 1e8. Neighbours first: (1e8 + 1) + (-1e8 + 1) = 0; a left fold gives 1,
    # halves first (x[i] + x[i + n/2]) gives 2.
    x = np.array([1e8, 1, -1e8, 1], np.float32)
    got, _ = interpret(everything.ir, 1, 4, x, 4)
    assert got[0, 0] == 0.0 and got[0, 4] == 0.0


def test_group_reduction_equals_the_tree_of_subgroup_reductions() -> None:
    x = (np.random.default_rng(1).standard_normal(96) * 1e4).astype(np.float32)
    whole, _ = interpret(everything.ir, 1, 96, x, 1)
    partials, _ = interpret(everything.ir, 1, 96, x, 32)
    sums = partials[::32, 0]
    assert whole[0, 4] == partials[0, 4] == (sums[0] + sums[1]) + sums[2]


def _kernel(body: list[ir.Stmt]) -> ir.Kernel:
    return ir.Kernel("k", (ir.Param("x", F32, True),), (("r", F32),), (), tuple(body), "kern.py", 1)


@pytest.mark.parametrize(("scope", "size", "message"), [
    ("subgroup", 4, r"subgroup divergence: 2 of 4 threads of the subgroup reached hal.shuffle\(\); thread global "
                    r"\(2, 0, 0\)"),
    ("group", 1, r"work-group divergence: 4 of 8 threads of the work-group reached hal.group_reduce_add\(\)"),
])
def test_partial_participation_is_a_fault(scope: str, size: int, message: str) -> None:
    op, args = ("shuffle", (ir.Const(1.0, F32), ir.Const(0, I32))) if scope == "subgroup" else \
        ("reduce_add", (ir.Const(1.0, F32),))
    lid = ir.ThreadIndex("local_id", 0)
    body: list[ir.Stmt] = [ir.If(ir.Binary("lt", ir.Binary("mod", lid, ir.Const(4, I32), I32), ir.Const(2, I32),
                                           ScalarType.BOOL),
                                 (ir.Collective(scope, op, args, "r", F32, 7),), (), 6)]  # type: ignore[arg-type]
    with pytest.raises(DeviceFault, match=message):
        run(_kernel(body), (1, 1, 1), (8, 1, 1), [np.zeros(8, np.float32)], subgroup_size=size)


def test_whole_subgroups_may_skip_a_subgroup_collective() -> None:
    lid = ir.ThreadIndex("local_id", 0)
    body: list[ir.Stmt] = [
        ir.If(ir.Binary("lt", lid, ir.Const(4, I32), ScalarType.BOOL), (
            ir.Collective("subgroup", "reduce_add", (ir.Const(1.0, F32),), "r", F32, 7),
            ir.Store("x", "global", lid, ir.Var("r", F32), 8)), (), 6)]
    x = np.zeros(8, np.float32)
    run(_kernel(body), (1, 1, 1), (8, 1, 1), [x], subgroup_size=4)
    assert x.tolist() == [4.0] * 4 + [0.0] * 4


def test_subgroup_size_must_be_a_power_of_two() -> None:
    with pytest.raises(InvalidArgumentError, match="power of two"):
        run(everything.ir, (1, 1, 1), (4, 1, 1), [np.zeros(4, np.float32), np.zeros(20, np.float32),
                                                  np.zeros(4, np.int32)], subgroup_size=3)


# ------------------------------------------------------------------ C emitter
@hal.kernel
def reduce_in_loops(x: hal.Ptr[hal.f32], out: hal.Ptr[hal.f32], n: hal.i32):
    i = hal.global_id(0)
    if n < 0:
        return  # uniform: every work-item or none
    acc = hal.f32(0)
    for k in range(n):
        if k == 3:
            break  # uniform break out of a loop holding a group reduction
        acc += hal.group_reduce_add(x[i] * hal.f32(k + 1))
    m = hal.group_reduce_min(acc - x[i])
    out[i] = acc + m + hal.shuffle(x[i], 0) + hal.subgroup_reduce_max(x[i])


def test_cpu_group_reductions_in_phases_match_the_interpreter() -> None:
    text = cemit.emit(reduce_in_loops.ir)
    assert text.count("hal_red") > 4 and "hal_add_f32(hal_red" in text
    dev = hal.device("cpu")
    x = (np.random.default_rng(2).standard_normal(3 * 37) * 100).astype(np.float32)
    for n in (-1, 2, 5):
        out = dev.zeros((len(x),), np.float32)
        reduce_in_loops[3, 37](dev.array(x), out, n)
        want = np.zeros(len(x), np.float32)
        run(reduce_in_loops.ir, (3, 1, 1), (37, 1, 1), [x.copy(), want, n])
        assert np.array_equal(out.numpy(), want), n
