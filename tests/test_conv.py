"""Convolution and pooling (tracejit/ops/conv.py) beyond the OpInfo rows of tests/opinfo_conv.py:
values against jax.lax, inferred shapes with unknown dims, gradients of first and second order
against jax (eager tapes and inside tj.function), and the error messages.

Gradients are seeded with random output cotangents (``output_gradients``), so each check is one
VJP compared with ``jax.vjp`` of the equivalent jax program.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from opinfo_conv import conv_opinfos, jax_avg_pool2d, jax_conv2d, jax_max_pool2d

import tracejit as tj
from tracejit.errors import OpError, OpTypeError, ShapeError
from tracejit.ops import conv
from tracejit.ops.registry import all_ops

TOL = {"rtol": 1e-4, "atol": 1e-5}
# (padding, strides, dilation): SAME/VALID x strides 1, 2 x dilation 1, 2.
CONV_CONFIGS = [(p, s, d) for p in ("SAME", "VALID") for s in (1, 2) for d in (1, 2)]
# (padding, window, strides)
POOL_CONFIGS = [
    ("VALID", 2, None),
    ("SAME", 2, None),
    ("SAME", 3, 2),
    ("VALID", (3, 2), (1, 2)),
]


def data(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng([seed, *shape]).standard_normal(shape).astype(np.float32)


def close(actual: Any, expected: Any) -> None:
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), **TOL)


def tape_vjp(fn: Callable[..., Any], primals: list[Any], ct: Any) -> list[Any]:
    """Cotangents of ``primals`` for ``fn(*primals)`` seeded with ``ct``, by a GradientTape."""
    with tj.GradientTape() as tape:
        tape.watch(primals)
        out = fn(*primals)
    return tape.gradient(out, primals, output_gradients=ct)


# Values and shapes --------------------------------------------------------------------------------
@pytest.mark.parametrize(("padding", "strides", "dilation"), CONV_CONFIGS)
def test_conv2d_matches_jax(padding: str, strides: int, dilation: int) -> None:
    x, kernel = data(2, 7, 6, 3), data(3, 2, 3, 4)
    got = tj.nn.conv2d(tj.constant(x), tj.constant(kernel), strides, padding, dilation)
    want = jax_conv2d(x, kernel, strides, padding, dilation)
    assert got.shape == want.shape and got.dtype == np.float32
    close(got.numpy(), want)


@pytest.mark.parametrize(("padding", "window", "strides"), POOL_CONFIGS)
def test_pools_match_jax(padding: str, window: Any, strides: Any) -> None:
    x = data(2, 7, 6, 3)
    got = tj.nn.max_pool2d(tj.constant(x), window, strides, padding)
    np.testing.assert_array_equal(got.numpy(), jax_max_pool2d(x, window, strides, padding))
    got = tj.nn.avg_pool2d(tj.constant(x), window, strides, padding)
    close(got.numpy(), jax_avg_pool2d(x, window, strides, padding))


def test_same_avg_pool_averages_valid_elements_only() -> None:
    x = tj.ones((1, 3, 3, 1))
    np.testing.assert_array_equal(tj.nn.avg_pool2d(x, 2, padding="SAME").numpy(), 1.0)
    assert tj.nn.max_pool2d(-x, 2, padding="SAME").numpy().max() == -1.0  # padding never wins


@pytest.mark.parametrize(("padding", "strides", "dilation"), CONV_CONFIGS[::3])
def test_traced_matches_eager_and_inference_with_unknown_dims(
    padding: str, strides: int, dilation: int
) -> None:
    x, kernel = data(2, 9, 8, 3), data(3, 3, 3, 4)

    def net(x: Any, kernel: Any) -> Any:
        y = tj.nn.conv2d(x, kernel, strides, padding, dilation)
        return y, tj.nn.max_pool2d(y, 2, 1, padding), tj.nn.avg_pool2d(y, 2, padding=padding)

    eager = net(tj.constant(x), tj.constant(kernel))
    function = tj.function(net)
    traced = function(tj.constant(x), tj.constant(kernel))
    for got, want in zip(traced, eager, strict=True):
        assert got.shape == want.shape
        close(got.numpy(), want.numpy())
    batch = function.get_concrete_function(
        tj.TensorSpec((None, 9, 8, 3)), tj.TensorSpec((3, 3, 3, 4))
    )
    assert [a.shape for a in batch.output_avals] == [(None, *t.shape[1:]) for t in eager]
    image = function.get_concrete_function(tj.TensorSpec((2, None, None, 3)), tj.constant(kernel))
    assert [a.shape for a in image.output_avals] == [(2, None, None, 4)] * 3


def test_params_are_normalized_pairs_and_print_readably() -> None:
    f = tj.function(
        lambda x, k: (
            tj.nn.conv2d(x, k, strides=2, padding="same"),
            tj.nn.conv2d(x, k, strides=(2, 2), padding="SAME", dilation=(1, 1)),
            tj.nn.max_pool2d(x, 3, padding="VALID"),
        )
    )
    ir = f.get_concrete_function(tj.ones((1, 6, 6, 2)), tj.ones((3, 3, 2, 4))).ir
    convs = [n for n in ir.nodes if n.op.name == "conv2d"]
    assert convs and len({n.params for n in convs}) == 1  # one CSE key for equal convolutions
    text = str(ir)
    assert "conv2d[dilation=(1,1), padding=SAME, strides=(2,2)]" in text
    assert "max_pool2d[padding=VALID, strides=(3,3), window=(3,3)]" in text


# Gradients ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("padding", "strides", "dilation"), CONV_CONFIGS)
def test_conv2d_gradients_match_jax(padding: str, strides: int, dilation: int) -> None:
    x, kernel = data(2, 7, 6, 3), data(3, 2, 3, 4)
    out, pullback = jax.vjp(lambda x, k: jax_conv2d(x, k, strides, padding, dilation), x, kernel)
    ct = data(*out.shape, seed=1)
    want_x, want_k = pullback(ct)
    primals = [tj.constant(x), tj.constant(kernel)]
    got_x, got_k = tape_vjp(
        lambda x, k: tj.nn.conv2d(x, k, strides, padding, dilation), primals, tj.constant(ct)
    )
    close(got_x.numpy(), want_x)
    close(got_k.numpy(), want_k)


@pytest.mark.parametrize(("padding", "window", "strides"), POOL_CONFIGS)
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool_gradients_match_jax(kind: str, padding: str, window: Any, strides: Any) -> None:
    tj_pool = tj.nn.max_pool2d if kind == "max" else tj.nn.avg_pool2d
    jax_pool = jax_max_pool2d if kind == "max" else jax_avg_pool2d
    x = data(2, 7, 6, 3)
    out, pullback = jax.vjp(lambda x: jax_pool(x, window, strides, padding), x)
    ct = data(*out.shape, seed=1)
    (got,) = tape_vjp(lambda x: tj_pool(x, window, strides, padding), [tj.constant(x)], ct)
    close(got.numpy(), pullback(ct)[0])


def _network(x: Any, kernel: Any) -> Any:
    """conv -> tanh -> max pool -> conv (strided, dilated) -> avg pool, with tracejit ops."""
    y = tj.tanh(tj.nn.conv2d(x, kernel, padding="SAME"))
    y = tj.nn.max_pool2d(y, 2, strides=1, padding="SAME")
    y = tj.nn.conv2d(y, kernel * 0.5, strides=2, padding="VALID", dilation=(1, 2))
    return tj.nn.avg_pool2d(y, 2, padding="SAME")


def _jax_network(x: Any, kernel: Any) -> Any:
    y = jnp.tanh(jax_conv2d(x, kernel, padding="SAME"))
    y = jax_max_pool2d(y, 2, strides=1, padding="SAME")
    y = jax_conv2d(y, kernel * 0.5, strides=2, padding="VALID", dilation=(1, 2))
    return jax_avg_pool2d(y, 2, padding="SAME")


def test_gradients_inside_function_with_unknown_dims_match_jax() -> None:
    x, kernel = data(2, 9, 10, 3), data(3, 3, 3, 3)
    out, pullback = jax.vjp(_jax_network, x, kernel)
    ct = data(*out.shape, seed=1)
    want_x, want_k = pullback(ct)

    def grads(x: Any, kernel: Any, ct: Any) -> Any:
        return tape_vjp(_network, [x, kernel], ct)

    spec = tj.TensorSpec((None, None, None, 3))
    function = tj.function(grads, input_signature=[spec, tj.TensorSpec((3, 3, 3, 3)), spec])
    concrete = function.get_concrete_function()
    assert [a.shape for a in concrete.output_avals] == [(None, None, None, 3), (3, 3, 3, 3)]
    names = {n.op.name for n in concrete.ir.nodes}
    assert {"conv2d_input_grad", "conv2d_filter_grad", "max_pool2d_grad"} <= names
    assert "avg_pool2d_grad" in names
    got_x, got_k = function(tj.constant(x), tj.constant(kernel), tj.constant(ct))
    close(got_x.numpy(), want_x)
    close(got_k.numpy(), want_k)
    eager_x, eager_k = grads(tj.constant(x), tj.constant(kernel), tj.constant(ct))
    close(eager_x.numpy(), want_x)
    close(eager_k.numpy(), want_k)
    # Another image size runs through the same signature.
    small = data(1, 6, 7, 3)
    small_out, small_pullback = jax.vjp(_jax_network, small, kernel)
    small_ct = data(*small_out.shape, seed=2)
    got_x, got_k = function(tj.constant(small), tj.constant(kernel), tj.constant(small_ct))
    for got, want in zip((got_x, got_k), small_pullback(small_ct), strict=True):
        close(got.numpy(), want)


def test_gradient_of_a_variable_kernel_through_a_compiled_call() -> None:
    x, kernel = data(2, 6, 6, 2), data(3, 3, 2, 4)
    variable = tj.Variable(kernel)
    forward = tj.function(lambda x: tj.nn.avg_pool2d(tj.nn.conv2d(x, variable), 2))
    out, pullback = jax.vjp(lambda k: jax_avg_pool2d(jax_conv2d(x, k), 2), kernel)
    ct = data(*out.shape, seed=1)
    with tj.GradientTape() as tape:
        y = forward(tj.constant(x))
    close(tape.gradient(y, variable, output_gradients=tj.constant(ct)).numpy(), pullback(ct)[0])


def _second_order(fn: Callable[..., Any], primals: list[Any], ct: Any) -> list[Any]:
    """Gradients of ``sum(g ** 3)`` over the first-order gradients ``g`` of ``fn`` (seeded with
    ``ct``), by nested tapes; ``d sum(g ** 3) / d g = 3 g ** 2`` seeds the outer tape."""
    with tj.GradientTape() as outer:
        outer.watch(primals)
        first = tape_vjp(fn, primals, ct)
    return outer.gradient(first, primals, output_gradients=[3 * g * g for g in first])


def _jax_second_order(fn: Callable[..., Any], primals: list[Any], ct: Any) -> Any:
    def objective(*primals: Any) -> Any:
        _, pullback = jax.vjp(fn, *primals)
        return sum(jnp.sum(g**3) for g in pullback(ct))

    return jax.grad(objective, argnums=tuple(range(len(primals))))(*primals)


SECOND_ORDER = {
    "conv2d": (
        lambda x, k: tj.tanh(tj.nn.conv2d(x, k, strides=2)),
        lambda x, k: jnp.tanh(jax_conv2d(x, k, strides=2)),
    ),
    "max_pool2d": (
        lambda x: tj.nn.max_pool2d(tj.sin(x), 3, 2, "SAME"),
        lambda x: jax_max_pool2d(jnp.sin(x), 3, 2, "SAME"),
    ),
    "avg_pool2d": (
        lambda x: tj.nn.avg_pool2d(tj.sin(x), 3, 2, "SAME"),
        lambda x: jax_avg_pool2d(jnp.sin(x), 3, 2, "SAME"),
    ),
}


@pytest.mark.parametrize("name", SECOND_ORDER)
def test_second_order_gradients_match_jax(name: str) -> None:
    tj_fn, jax_fn = SECOND_ORDER[name]
    primals = [data(2, 7, 6, 3), data(3, 3, 3, 2)][: 2 if name == "conv2d" else 1]
    ct = data(*jax_fn(*primals).shape, seed=1)
    want = _jax_second_order(jax_fn, primals, ct)
    got = _second_order(tj_fn, [tj.constant(p) for p in primals], tj.constant(ct))
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g.numpy(), w, rtol=1e-4, atol=1e-4)


def test_second_order_gradients_inside_function() -> None:
    tj_fn, jax_fn = SECOND_ORDER["conv2d"]
    x, kernel = data(2, 7, 6, 3), data(3, 3, 3, 2)
    ct = data(*jax_fn(x, kernel).shape, seed=1)
    want = _jax_second_order(jax_fn, [x, kernel], ct)
    traced = tj.function(lambda x, k, ct: _second_order(tj_fn, [x, k], ct))
    got = traced(tj.constant(x), tj.constant(kernel), tj.constant(ct))
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g.numpy(), w, rtol=1e-4, atol=1e-4)


def test_every_conv_op_has_a_row_and_a_vjp() -> None:
    names = {name for name, op in all_ops().items() if op.impl.__module__ == conv.__name__}
    assert names == {info.name for info in conv_opinfos()}
    assert all(all_ops()[name].vjp is not None for name in names)


# Errors -------------------------------------------------------------------------------------------
ERRORS = [
    (
        lambda: tj.nn.conv2d(tj.ones((2, 5, 5, 3)), tj.ones((3, 3, 4, 8))),
        ShapeError,
        r"kernel in-channels 4 != input channels 3: input \(2, 5, 5, 3\) \(NHWC\), "
        r"kernel \(3, 3, 4, 8\) \(HWIO\)",
    ),
    (
        lambda: tj.nn.conv2d(
            tj.ones((1, 4, 4, 1)), tj.ones((3, 3, 1, 1)), padding="VALID", dilation=2
        ),
        ShapeError,
        r"kernel 3x3 dilated by 2x2 to 5x5 is larger than the input's height and width 4x4 "
        r"\(input \(1, 4, 4, 1\)\) with VALID padding",
    ),
    (
        lambda: tj.nn.max_pool2d(tj.ones((1, 2, 2, 3)), 3),
        ShapeError,
        r"max_pool2d: window 3x3 is larger than the input's height and width 2x2",
    ),
    (
        lambda: tj.nn.avg_pool2d(tj.ones((1, 2, 5, 3)), (3, 1), padding="VALID"),
        ShapeError,
        r"avg_pool2d: window 3x1 is larger",
    ),
    (
        lambda: tj.nn.conv2d(tj.ones((1, 4, 4, 1)), tj.ones((3, 3, 1, 1)), padding="FULL"),
        OpError,
        r"conv2d: padding must be \"SAME\" or \"VALID\", got 'FULL'",
    ),
    (
        lambda: tj.nn.max_pool2d(tj.ones((1, 4, 4, 1)), 2, padding=1),
        OpError,
        r"padding must be",
    ),
    (
        lambda: tj.nn.conv2d(tj.ones((1, 4, 4, 1)), tj.ones((3, 3, 1, 1)), strides=0),
        OpError,
        r"strides must be a positive int or a pair of them, got 0",
    ),
    (
        lambda: tj.nn.conv2d(tj.ones((1, 4, 4, 1)), tj.ones((3, 3, 1, 1)), dilation=(1, 2, 1)),
        OpError,
        r"dilation must be a positive int or a pair of them, got \(1, 2, 1\)",
    ),
    (lambda: tj.nn.max_pool2d(tj.ones((1, 4, 4, 1)), 1.5), OpError, r"window must be"),
    (lambda: tj.nn.avg_pool2d(tj.ones((1, 4, 4, 1)), True), OpError, r"window must be"),
    (
        lambda: tj.nn.conv2d(tj.ones((5, 5, 3)), tj.ones((3, 3, 3, 4))),
        ShapeError,
        r"input must be 4-D NHWC \(batch, height, width, channels\), got \(5, 5, 3\)",
    ),
    (
        lambda: tj.nn.conv2d(tj.ones((1, 5, 5, 3)), tj.ones((3, 3, 3))),
        ShapeError,
        r"kernel must be 4-D HWIO .* got \(3, 3, 3\)",
    ),
    (
        lambda: tj.nn.conv2d(tj.ones((1, 5, 5, 3)), tj.ones((3, 3, 3, 4), dtype="float16")),
        OpTypeError,
        r"input and kernel dtypes differ: float32 and float16",
    ),
    (
        lambda: tj.nn.conv2d(tj.ones((1, 5, 5, 3), "int32"), tj.ones((3, 3, 3, 4), "int32")),
        OpTypeError,
        r"conv2d: needs a floating-point input, got int32",
    ),
    (
        lambda: tj.nn.avg_pool2d(tj.ones((1, 4, 4, 1), "int32"), 2),
        OpTypeError,
        r"avg_pool2d: needs a floating-point input, got int32",
    ),
    (
        lambda: conv.conv2d_input_grad(
            tj.ones((1, 4, 4, 5)), tj.ones((3, 3, 3, 4)), tj.ones((1, 4, 4, 3))
        ),
        ShapeError,
        r"cotangent shape \(1, 4, 4, 5\) does not match the forward output shape \(1, 4, 4, 4\)",
    ),
]


@pytest.mark.parametrize(("call", "error", "pattern"), ERRORS)
def test_errors_are_clear_and_located(call: Callable[[], Any], error: type, pattern: str) -> None:
    with pytest.raises(error, match=pattern) as info:
        call()
    assert info.value.loc is not None and info.value.loc.file.endswith("test_conv.py")


def test_errors_while_tracing_name_the_user_line() -> None:
    def bad(x: Any) -> Any:
        return tj.nn.max_pool2d(x, 4)  # the failing line

    line = bad.__code__.co_firstlineno + 1
    with pytest.raises(ShapeError, match=r"window 4x4 is larger .* \(\?, 3, 8, 2\)") as info:
        tj.function(bad).get_concrete_function(tj.TensorSpec((None, 3, 8, 2)))
    assert f"test_conv.py:{line} in bad" in str(info.value)
    # Unknown dims cannot be checked until run time, so they trace.
    concrete = tj.function(bad).get_concrete_function(tj.TensorSpec((None, None, 8, 2)))
    assert concrete.output_avals[0].shape == (None, None, 2, 2)


def test_eager_error_names_the_user_line() -> None:
    line = sys._getframe().f_lineno + 2
    with pytest.raises(ShapeError) as info:
        tj.nn.conv2d(tj.ones((1, 2, 2, 1)), tj.ones((3, 3, 1, 1)), padding="VALID")
    assert f"test_conv.py:{line}" in str(info.value)
