"""Generic kernels: specialisation by dtype variables and hal.Const values, its cache, and its errors."""

from __future__ import annotations

import numpy as np
import pytest

import hal
from hal.kernel import ir
from hal.kernel.types import ScalarType

T = hal.dtype_var("T")
U = hal.dtype_var("U")


@hal.func
def twice(v: T) -> T:
    return v + v


@hal.kernel
def convert(x: hal.Ptr[T], y: hal.Ptr[U], a: T, n: hal.i32, SCALE: hal.Const[hal.i32]):
    i = hal.global_id(0)
    if i < n:
        y[i] = U(twice(x[i]) * a) * SCALE


@hal.kernel
def tiled(x: hal.Ptr[T], WIDTH: hal.Const[hal.i32], FLAG: hal.Const[hal.bool_]):
    tile = hal.shared(T, WIDTH * 2)
    lid = hal.local_id(0)
    tile[lid] = x[lid]
    hal.barrier()
    if FLAG:
        x[lid] = tile[(lid + 1) % WIDTH]


def test_specialisations_come_from_dtypes_and_constants() -> None:
    dev = hal.device("cpu")
    x = dev.array(np.arange(5, dtype=np.float32))
    y = dev.zeros((5,), np.int64)
    convert[1, 8](x, y, 1.5, 5, 10)
    assert y.numpy().tolist() == [0, 30, 60, 90, 120]
    spec = convert.specialize(T=hal.f32, U=np.int64, SCALE=10)
    assert [p.type for p in spec.ir.params] == [ScalarType.F32, ScalarType.I64, ScalarType.F32, ScalarType.I32]
    assert [p.name for p in spec.ir.params] == ["x", "y", "a", "n"]  # the constant is not a parameter
    assert repr(spec).startswith("<hal.kernel convert[T=f32, U=i64, SCALE=10]")
    assert convert.specialize(T=hal.f32, U=hal.i64, SCALE=10) is spec  # one object per binding
    assert convert.specialize(T=hal.f32, U=hal.i64, SCALE=11) is not spec


def test_a_constant_is_a_literal_usable_as_a_shared_size() -> None:
    spec = tiled.specialize(T=hal.i32, WIDTH=16, FLAG=True)
    assert spec.ir.arrays == (ir.ArrayDecl("tile", ScalarType.I32, 32, "shared"),)
    off = tiled.specialize(T=hal.i32, WIDTH=16, FLAG=False)
    assert not any(isinstance(s, ir.If) for s in off.ir.body)  # a False flag removes the branch
    dev = hal.device("cpu")
    x = dev.array(np.arange(16, dtype=np.int32))
    tiled[1, 16](x, 16, True)
    assert x.numpy().tolist() == [*range(1, 16), 0]


def test_the_launch_path_finds_a_specialisation_by_one_key() -> None:
    dev = hal.device("cpu")
    x = dev.array(np.arange(4, dtype=np.float64))
    y = dev.zeros((4,), np.float64)
    convert[1, 4](x, y, 1.0, 4, 1)
    specializer = convert.specializer
    assert specializer is not None
    before = dict(specializer._by_binding)
    for _ in range(3):
        convert[1, 4](x, y, 1.0, 4, 1)
    assert specializer._by_binding == before
    assert convert._compiled == {}  # compiled code lives on the specialisations
    spec = next(iter(s for k, s in specializer._by_key.items() if k[0] == np.float64))
    assert dev in spec._compiled


def test_conflicting_bindings_name_both_parameters() -> None:
    @hal.kernel
    def add(x: hal.Ptr[T], y: hal.Ptr[T]):
        y[0] = x[0]

    dev = hal.device("cpu")
    with pytest.raises(hal.InvalidArgumentError, match="T is float32 from parameter 'x' but float64 from parameter 'y'"):
        add[1, 1](dev.zeros((1,), np.float32), dev.zeros((1,), np.float64))


@pytest.mark.parametrize(("value", "message"), [
    (2.5, r"SCALE.*hal.Const\[hal.i32\], a compile-time constant of each launch: pass a Python int"),
    (True, "pass a Python int"),
    (2**40, r"in \[-2147483648, 2147483647\]"),
])
def test_a_const_needs_a_constant_of_its_type(value: object, message: str) -> None:
    dev = hal.device("cpu")
    x = dev.zeros((4,), np.float32)
    with pytest.raises(hal.InvalidArgumentError, match=message):
        convert[1, 4](x, x, 1.0, 4, value)


def test_a_const_array_argument_is_refused() -> None:
    dev = hal.device("cpu")
    x = dev.zeros((4,), np.float32)
    with pytest.raises(hal.InvalidArgumentError, match="got <hal.Array"):
        convert[1, 4](x, x, 1.0, 4, x)


def test_a_pointer_binding_needs_an_array() -> None:
    with pytest.raises(hal.InvalidArgumentError, match=r"'x' of kernel 'convert' is hal.Ptr\[T\] and binds T"):
        convert[1, 4]([1.0], hal.device("cpu").zeros((4,), np.float32), 1.0, 4, 1)


def test_an_unbound_dtype_variable_is_a_compile_error() -> None:
    @hal.kernel
    def unbound(x: hal.Ptr[hal.f32], a: T):
        x[0] = hal.f32(a)

    with pytest.raises(hal.CompileError, match="parameter 'a' of kernel 'unbound' has dtype variable T, which no "
                                               r"parameter binds.*add a hal.Ptr\[T\] parameter"):
        unbound[1, 1](hal.device("cpu").zeros((1,), np.float32), 1.0)


def test_a_dtype_variable_only_in_the_body_is_a_compile_error() -> None:
    @hal.kernel
    def body_only(x: hal.Ptr[hal.f32]):
        x[0] = hal.f32(U(1))

    with pytest.raises(hal.CompileError, match="dtype variable U is not bound here"):
        body_only.ir  # noqa: B018


def test_a_generic_kernel_has_no_ir_of_its_own() -> None:
    with pytest.raises(hal.CompileError, match=r"generic over T, U, SCALE.*convert.specialize\(T=..., U=..., SCALE"):
        hal.device("cpu").compile(convert)


def test_specialize_checks_its_names_and_values() -> None:
    with pytest.raises(hal.InvalidArgumentError, match="specialised by T, U, SCALE; got T"):
        convert.specialize(T=hal.f32)
    with pytest.raises(hal.InvalidArgumentError, match="T must be a hal scalar type"):
        convert.specialize(T="complex", U=hal.f32, SCALE=1)
    with pytest.raises(hal.InvalidArgumentError, match="is not generic"):
        twice_kernel.specialize(T=hal.f32)


@hal.kernel
def twice_kernel(x: hal.Ptr[hal.f32]):
    x[0] = x[0] * 2.0


def test_assigning_a_const_is_a_compile_error() -> None:
    @hal.kernel
    def assigns(x: hal.Ptr[hal.i32], N: hal.Const[hal.i32]):
        N = 3
        x[0] = N

    with pytest.raises(hal.CompileError, match="cannot assign to 'N': it is a hal.Const parameter"):
        assigns.specialize(N=1).ir  # noqa: B018


def test_const_in_a_device_function_is_refused() -> None:
    @hal.func
    def f(n: hal.Const[hal.i32]) -> hal.i32:
        return n

    @hal.kernel
    def calls(x: hal.Ptr[hal.i32]):
        x[0] = f(1)

    with pytest.raises(hal.CompileError, match="only kernel parameters are launch constants"):
        calls.ir  # noqa: B018


@pytest.mark.parametrize("type_", [hal.i8, hal.u8, hal.i16, hal.u16, hal.u64])
def test_const_of_every_integer_type_checks_its_range(type_: hal.ScalarType) -> None:
    reads = hal.kernel.from_source(f"""
def reads(x: hal.Ptr[hal.i64], C: hal.Const[hal.{type_.value}]):
    x[0] = hal.i64(C)
""", globals={"hal": hal})

    hi = int(np.iinfo(type_.np_dtype).max)
    assert reads.specialize(C=hi).constants == {"C": hi}
    with pytest.raises(hal.InvalidArgumentError, match=rf"pass a Python int in \[-?\d+, {hi}\]"):
        reads.specialize(C=hi + 1)


def test_a_pointer_binding_lists_every_kernel_dtype() -> None:
    with pytest.raises(hal.InvalidArgumentError, match="float16, bfloat16.*got an array of complex64"):
        convert[1, 4](np.zeros(4, np.complex64), hal.device("cpu").zeros((4,), np.float32), 1.0, 4, 1)
