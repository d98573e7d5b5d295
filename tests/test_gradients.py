"""Gradient tests: the OpInfo table (tests/opinfo.py) drives them, jax.grad is the oracle.

For every row and sample, the program is ``sum(op(*inputs) * w)`` with ``w`` a fixed random
cotangent per output (so the VJPs see non-trivial cotangents):

(a) the eager GradientTape gradient w.r.t. every input array equals jax.grad of the same program
    written with the row's jax.numpy reference (None where jax's gradient is exactly zero because
    no gradient flows: integer and bool inputs, shape templates, non-differentiable ops);
(b) the same tape inside a ``tj.function`` agrees with eager, with known shapes and with the
    first input's leading dim unknown;
(c) float64 central differences agree with the tape, in a subprocess with JAX_ENABLE_X64=1
    (``tests/gradcheck_x64.py``), because x64 changes jax's dtype canonicalization globally;
(d) second-order gradients (nested tapes) match jax Hessian-vector products;
(e) the tape's API: None for integer outputs and non-differentiable ops, stop_gradient,
    unconnected_gradients, persistent tapes, tj.grad / tj.value_and_grad, tj.custom_gradient.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from opinfo import OPINFOS, OpInfo, leaves, split_arrays, tolerance

import tracejit as tj
from tracejit.autodiff.tape import GradientError
from tracejit.ops.registry import all_ops

# Every case compiles: each eager op once per shape, each traced function and jax reference once.
EAGER_SAMPLES = 3
TRACED_SAMPLES = 1


def _differentiable(info: OpInfo) -> bool:
    return all_ops()[info.name].differentiable


def _checked(info: OpInfo, only_differentiable: bool) -> bool:
    if info.skip_gradients:
        return False
    return _differentiable(info) or not only_differentiable


def _has_float_input(args: tuple[Any, ...]) -> bool:
    return any(a.dtype.kind == "f" for a in split_arrays(args)[0])


def _cases(per_row: int | None, only_differentiable: bool) -> list[Any]:
    cases = []
    for info in OPINFOS:
        if not _checked(info, only_differentiable):
            continue
        samples = [s for s in info.sample_list() if _has_float_input(s[0])]
        for i, (args, kwargs) in enumerate(samples[:per_row]):
            cases.append(pytest.param(info, args, kwargs, id=f"{info.id}-{i}"))
    return cases


# Non-differentiable ops are checked on one sample each: they must give None.
EAGER_CASES = _cases(EAGER_SAMPLES, True) + [
    case for case in _cases(1, False) if not _differentiable(case.values[0])
]
TRACED_CASES = _cases(TRACED_SAMPLES, True)


# The program and its pieces ----------------------------------------------------------------------
def cotangents(info: OpInfo, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
    """A fixed random cotangent per float output (None for the others), seeded by the case."""
    arrays, rebuild = split_arrays(args)
    outs = leaves(info.fn(*rebuild([tj.constant(a) for a in arrays]), **kwargs))
    rng = np.random.default_rng(zlib.crc32(f"{info.id}{outs[0].shape}".encode()))
    return [
        rng.standard_normal(o.shape).astype(o.dtype) if o.dtype.kind == "f" else None for o in outs
    ]


def tape_gradients(
    info: OpInfo, args: tuple[Any, ...], kwargs: dict[str, Any], tensors: list[Any], ws: list[Any]
) -> list[Any]:
    """Gradients of ``sum(op(*inputs) * w)`` w.r.t. every input tensor (works traced too)."""
    rebuild = split_arrays(args)[1]
    with tj.GradientTape() as tape:
        tape.watch(tensors)
        outs = leaves(info.fn(*rebuild(tensors), **kwargs))
        terms = [tj.sum(o * w) for o, w in zip(outs, ws, strict=True) if w is not None]
        target = sum(terms[1:], terms[0]) if terms else outs
    return tape.gradient(target, list(tensors))


def jax_gradients(
    info: OpInfo, args: tuple[Any, ...], kwargs: dict[str, Any], ws: list[Any]
) -> list[Any]:
    """jax.grad of the same program w.r.t. the float inputs (None for the other inputs)."""
    arrays, rebuild = split_arrays(args)
    positions = [i for i, a in enumerate(arrays) if a.dtype.kind == "f"]
    reference = info.grad_ref or info.jax_ref or info.ref

    def program(*floats: Any) -> Any:
        replaced: list[Any] = list(arrays)
        for position, value in zip(positions, floats, strict=True):
            replaced[position] = value
        outs = leaves(reference(*rebuild(replaced), **kwargs))
        terms = [jnp.sum(o * w) for o, w in zip(outs, ws, strict=True) if w is not None]
        return sum(terms[1:], terms[0]) if terms else jnp.zeros(())

    floats = [jnp.asarray(arrays[p]) for p in positions]
    # One compile for the whole reference: op-by-op dispatch would compile every op separately.
    gradient = jax.jit(jax.grad(program, argnums=tuple(range(len(floats)))))
    grads = gradient(*floats) if floats else ()
    expected: list[Any] = [None] * len(arrays)
    for position, grad in zip(positions, grads, strict=True):
        expected[position] = np.asarray(grad)
    return expected


def assert_gradients_close(
    info: OpInfo, got: list[Any], expected: list[Any], what: str, slack: float = 1.0
) -> None:
    assert len(got) == len(expected), f"{info.id}: {len(got)} gradients for {len(expected)}"
    for i, (g, e) in enumerate(zip(got, expected, strict=True)):
        where = f"{info.id}: {what}, input {i}"
        if g is None:
            # No gradient flows: only right when the reference is exactly zero (or absent).
            assert e is None or not np.any(e), f"{where}: got None, expected {e}"
            continue
        assert e is not None, f"{where}: got a gradient, expected None"
        assert isinstance(g, tj.Tensor), f"{where}: got {type(g).__name__}"
        assert g.dtype == e.dtype and g.shape == e.shape, f"{where}: {g.dtype}{g.shape}"
        rtol, atol = tolerance(g.dtype, info.rtol, info.atol)
        rtol, atol = rtol * slack, max(atol, rtol) * slack  # gradients accumulate rounding
        np.testing.assert_allclose(
            g.numpy().astype(np.float64), e.astype(np.float64), rtol, atol, err_msg=where
        )


# (a) eager tape vs jax.grad ----------------------------------------------------------------------
@pytest.mark.parametrize(("info", "args", "kwargs"), EAGER_CASES)
def test_eager_gradient_matches_jax(
    info: OpInfo, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    ws = cotangents(info, args, kwargs)
    arrays = split_arrays(args)[0]
    got = tape_gradients(info, args, kwargs, [tj.constant(a) for a in arrays], ws)
    if not _differentiable(info) or all(w is None for w in ws):  # or only integer outputs
        assert all(g is None for g in got), f"{info.id}: no gradient should flow, got {got}"
        return
    assert_gradients_close(info, got, jax_gradients(info, args, kwargs, ws), "tape vs jax.grad")


# (b) traced vs eager -----------------------------------------------------------------------------
def _traced(
    info: OpInfo, args: tuple[Any, ...], kwargs: dict[str, Any], ws: list[Any], specs: Any
) -> list[Any]:
    def gradients(tensors: list[Any]) -> list[Any]:
        return tape_gradients(info, args, kwargs, list(tensors), ws)

    function = tj.function(gradients, input_signature=None if specs is None else [specs])
    return function([tj.constant(a) for a in split_arrays(args)[0]])


def _eager_reference(info: OpInfo, args: tuple[Any, ...], kwargs: dict[str, Any], ws: Any) -> Any:
    arrays = split_arrays(args)[0]
    eager = tape_gradients(info, args, kwargs, [tj.constant(a) for a in arrays], ws)
    return [None if g is None else g.numpy() for g in eager]


@pytest.mark.parametrize(("info", "args", "kwargs"), TRACED_CASES)
def test_traced_gradient_matches_eager(
    info: OpInfo, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    ws = cotangents(info, args, kwargs)
    expected = _eager_reference(info, args, kwargs, ws)
    assert_gradients_close(info, _traced(info, args, kwargs, ws, None), expected, "traced")


@pytest.mark.parametrize(("info", "args", "kwargs"), TRACED_CASES)
def test_traced_gradient_with_unknown_leading_dim(
    info: OpInfo, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    skip = info.skip_unknown(args, kwargs) if callable(info.skip_unknown) else info.skip_unknown
    arrays = split_arrays(args)[0]
    if skip or arrays[0].ndim == 0:
        pytest.skip("no input with a leading dim to make unknown")
    specs = [tj.TensorSpec(a.shape, a.dtype) for a in arrays]
    specs[0] = tj.TensorSpec((None, *arrays[0].shape[1:]), arrays[0].dtype)
    ws = cotangents(info, args, kwargs)
    expected = _eager_reference(info, args, kwargs, ws)
    got = _traced(info, args, kwargs, ws, specs)
    assert_gradients_close(info, got, expected, "traced with an unknown dim")


# (c) float64 finite differences, in a subprocess -------------------------------------------------
def test_finite_differences_in_float64() -> None:
    script = Path(__file__).with_name("gradcheck_x64.py")
    env = {**os.environ, "JAX_ENABLE_X64": "1", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "checked" in done.stdout


# (d) second-order gradients ----------------------------------------------------------------------
def _matvec(x: Any) -> Any:
    return x @ x.T


SECOND_ORDER = [
    ("exp", tj.exp, jnp.exp),
    ("tanh", tj.tanh, jnp.tanh),
    ("multiply", lambda x: x * x * x, lambda x: x * x * x),
    ("matmul", _matvec, _matvec),
    ("sum", lambda x: tj.sum(x, axis=1) ** 2, lambda x: jnp.sum(x, axis=1) ** 2),
    ("softmax", tj.nn.softmax, jax.nn.softmax),
    ("log_softmax", tj.nn.log_softmax, jax.nn.log_softmax),
    ("max", lambda x: tj.max(x, axis=0) ** 2, lambda x: jnp.max(x, axis=0) ** 2),
    ("prod", lambda x: tj.prod(x, axis=1), lambda x: jnp.prod(x, axis=1)),
    ("logsumexp", lambda x: tj.nn.logsumexp(x, axis=1), lambda x: jax.nn.logsumexp(x, axis=1)),
    ("gelu", lambda x: tj.nn.gelu(x, False), lambda x: jax.nn.gelu(x, approximate=False)),
    ("getitem", lambda x: x[1:, ::-1] ** 3, lambda x: x[1:, ::-1] ** 3),
]


def _hvp_case(rng: np.random.Generator, fn: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = rng.standard_normal((3, 4)).astype(np.float32)
    out_shape = jax.eval_shape(fn, jnp.asarray(x)).shape
    return x, rng.standard_normal(out_shape).astype(np.float32), rng.standard_normal((3, 4))


def _tape_hvp(fn: Any, x: Any, w: Any, v: Any) -> Any:
    with tj.GradientTape() as outer:
        outer.watch(x)
        with tj.GradientTape() as inner:
            inner.watch(x)
            y = tj.sum(fn(x) * w)
        g = inner.gradient(y, x)
        gv = tj.sum(g * v)
    return outer.gradient(gv, x)


@pytest.mark.parametrize(("name", "fn", "ref"), SECOND_ORDER, ids=[c[0] for c in SECOND_ORDER])
def test_second_order_gradient_matches_jax_hvp(name: str, fn: Any, ref: Any) -> None:
    x, w, v = _hvp_case(np.random.default_rng(zlib.crc32(name.encode())), ref)
    v = v.astype(np.float32)

    def first(x: Any) -> Any:
        return jax.grad(lambda x: jnp.sum(ref(x) * w))(x)

    expected = jax.jit(jax.grad(lambda x: jnp.sum(first(x) * v)))(jnp.asarray(x))
    got = _tape_hvp(fn, tj.constant(x), tj.constant(w), tj.constant(v))
    np.testing.assert_allclose(got.numpy(), np.asarray(expected), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["matmul", "softmax", "getitem"])
def test_second_order_gradient_traced(name: str) -> None:
    _, fn, ref = next(case for case in SECOND_ORDER if case[0] == name)
    x, w, v = _hvp_case(np.random.default_rng(1), ref)
    args = (tj.constant(x), tj.constant(w), tj.constant(v.astype(np.float32)))
    traced = tj.function(lambda x, w, v: _tape_hvp(fn, x, w, v))(*args)
    np.testing.assert_allclose(traced.numpy(), _tape_hvp(fn, *args).numpy(), rtol=1e-5, atol=1e-5)


# (e) the tape's API ------------------------------------------------------------------------------
def test_non_differentiable_ops_and_integer_paths_give_none() -> None:
    x = tj.constant([1.5, -2.0, 3.0])
    with tj.GradientTape(persistent=True) as tape:
        tape.watch(x)
        index = tj.argmax(x)
        positive = tj.greater(x, 0.0)
        back = tj.cast(tj.cast(x, "int32"), "float32")
        rounded = tj.floor_divide(x, 1.0)
    assert tape.gradient(index, x) is None
    assert tape.gradient(positive, x) is None
    assert tape.gradient(back, x) is None  # the path through int32 carries no gradient
    assert tape.gradient(rounded, x) is None


def test_integer_targets_give_none() -> None:
    x = tj.constant([1.5, -2.0, 3.0])
    with tj.GradientTape(persistent=True) as tape:
        tape.watch(x)
        as_int = tj.cast(x, "int32")
        count = tj.sum(tj.cast(x > 0, "int32"))
    assert tape.gradient(as_int, x) is None
    assert tape.gradient([count, as_int], x) is None


def test_stop_gradient_blocks() -> None:
    x = tj.constant([1.0, 2.0])
    with tj.GradientTape() as tape:
        tape.watch(x)
        y = tj.sum(x * tj.stop_gradient(x * 3.0))
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), [3.0, 6.0])
    with tj.GradientTape() as tape:
        tape.watch(x)
        z = tj.sum(tj.stop_gradient(x) ** 2)
    assert tape.gradient(z, x) is None


def test_unconnected_gradients() -> None:
    x, unused = tj.constant([1.0, 2.0]), tj.constant([[3.0]])
    with tj.GradientTape(persistent=True) as tape:
        tape.watch([x, unused])
        y = tj.sum(x**2)
    assert tape.gradient(y, [x, unused])[1] is None
    zero = tape.gradient(y, unused, unconnected_gradients="zero")
    assert zero.shape == (1, 1) and zero.dtype == np.float32 and not zero.numpy().any()
    with pytest.raises(ValueError, match="unconnected_gradients"):
        tape.gradient(y, x, unconnected_gradients="nan")


def test_persistent_tape_answers_twice_and_plain_tape_refuses() -> None:
    x = tj.constant(3.0)
    with tj.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y, z = x * x, tj.exp(x)
    assert float(tape.gradient(y, x)) == 6.0
    np.testing.assert_allclose(float(tape.gradient(z, x)), np.exp(3.0), rtol=1e-6)
    with tj.GradientTape() as plain:
        plain.watch(x)
        y = x * x
    plain.gradient(y, x)
    with pytest.raises(GradientError, match="already called.*persistent=True"):
        plain.gradient(y, x)


def test_grad_and_value_and_grad_with_argnums_and_pytrees() -> None:
    def loss(params: dict[str, Any], x: Any, scale: Any) -> Any:
        return tj.sum(tj.tanh(x @ params["w"] + params["b"]) * scale)

    rng = np.random.default_rng(0)
    params = {"w": rng.standard_normal((3, 2)), "b": rng.standard_normal(2)}
    params = {k: v.astype(np.float32) for k, v in params.items()}
    x, scale = rng.standard_normal((4, 3)).astype(np.float32), np.float32(1.5)

    def jax_loss(params: dict[str, Any], x: Any, scale: Any) -> Any:
        return jnp.sum(jnp.tanh(x @ params["w"] + params["b"]) * scale)

    value, (d_params, d_x) = tj.value_and_grad(loss, argnums=(0, 1))(
        {k: tj.constant(v) for k, v in params.items()}, tj.constant(x), tj.constant(scale)
    )
    want_value, (want_params, want_x) = jax.value_and_grad(jax_loss, argnums=(0, 1))(
        params, x, scale
    )
    np.testing.assert_allclose(float(value), float(want_value), rtol=1e-5)
    assert set(d_params) == {"w", "b"}
    for key in ("w", "b"):
        np.testing.assert_allclose(d_params[key].numpy(), want_params[key], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(d_x.numpy(), want_x, rtol=1e-5, atol=1e-6)
    # numpy leaves are converted; a single argnum gives the gradient itself.
    d_w = tj.grad(lambda w: tj.sum(tj.matmul(x, w) ** 2))(params["w"])
    want_w = jax.grad(lambda w: jnp.sum((x @ w) ** 2))(params["w"])
    np.testing.assert_allclose(d_w.numpy(), want_w, rtol=1e-5, atol=1e-5)


def test_grad_of_a_non_scalar_function_is_refused() -> None:
    with pytest.raises(GradientError, match="must return a scalar"):
        tj.grad(lambda x: x * 2.0)(tj.constant([1.0, 2.0]))


def test_custom_gradient_replaces_the_rule() -> None:
    @tj.custom_gradient
    def clipped_square(x: Any) -> Any:
        return x * x, lambda dy: tj.clip(dy * 2.0 * x, -1.0, 1.0)

    x = tj.constant([0.1, 3.0, -3.0])
    with tj.GradientTape() as tape:
        tape.watch(x)
        y = tj.sum(clipped_square(x))
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), [0.2, 1.0, -1.0], rtol=1e-6)
    traced = tj.function(lambda x: tj.grad(lambda t: tj.sum(clipped_square(t)))(x))(x)
    np.testing.assert_allclose(traced.numpy(), [0.2, 1.0, -1.0], rtol=1e-6)


# Ties and zeros ----------------------------------------------------------------------------------
TIES = np.array([[1.0, 3.0, 3.0, -1.0], [0.0, 2.0, 0.0, 5.0], [0.0, 2.0, 4.0, 5.0]], np.float32)


@pytest.mark.parametrize(
    ("name", "fn", "ref"),
    [
        ("max", lambda t: tj.max(t, axis=1), lambda t: jnp.max(t, axis=1)),
        ("min", lambda t: tj.min(t, axis=0), lambda t: jnp.min(t, axis=0)),
        ("max_all", tj.max, jnp.max),
        ("prod_rows", lambda t: tj.prod(t, axis=1), lambda t: jnp.prod(t, axis=1)),
        ("prod_cols", lambda t: tj.prod(t, axis=0, keepdims=True), lambda t: jnp.prod(t, 0)),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_ties_share_the_gradient_and_zeros_are_exact(name: str, fn: Any, ref: Any) -> None:
    """max/min split the cotangent equally between tied elements, as jax does; prod's gradient
    at zeros (one zero, or several) is the product of the others."""
    got = tj.grad(lambda t: tj.sum(fn(t)))(tj.constant(TIES))
    want = jax.grad(lambda t: jnp.sum(ref(t)))(TIES)
    np.testing.assert_allclose(got.numpy(), np.asarray(want), rtol=1e-6)


# Rules whose formulation changes with unknown dims -----------------------------------------------
UNKNOWN_DIM_PROGRAMS = [  # unknown dims are 2 at run time
    ("reshape", (None, None, 3), lambda x: tj.reshape(x, (-1,)) * tj.arange(12.0)),
    ("concatenate", (None, 3), lambda x: tj.concatenate([x, x * 2.0, x[1:]], axis=0)),
    ("mean", (None, 3), lambda x: tj.mean(x, axis=0) * tj.constant([1.0, 2.0, 3.0])),
    ("sum", (None, 3), lambda x: tj.sum(x**2, axis=(0, 1))),
    ("max", (None, 3), lambda x: tj.max(x, axis=0, keepdims=True) * 2.0),
    ("broadcast_to", (None, 1), lambda x: tj.broadcast_to(x, (None, 4)) * tj.arange(4.0)),
    ("take", (None, 3), lambda x: tj.take(x, tj.constant([0, 2, 2]), axis=1)),
    ("slice", (None, 3), lambda x: x[1:, ::2] * 3.0),
    ("dot", (None, 2, 3), lambda x: tj.dot(x, tj.ones((4, 3, 2)))),
]


@pytest.mark.parametrize(
    ("name", "shape", "fn"), UNKNOWN_DIM_PROGRAMS, ids=[p[0] for p in UNKNOWN_DIM_PROGRAMS]
)
def test_gradients_with_unknown_dims(name: str, shape: Any, fn: Any) -> None:
    actual = tuple(2 if d is None else d for d in shape)
    x = tj.constant(np.random.default_rng(2).standard_normal(actual).astype(np.float32))
    spec = tj.TensorSpec(shape, "float32")
    function = tj.function(lambda x: tj.grad(lambda t: tj.sum(fn(t)))(x), input_signature=[spec])
    np.testing.assert_allclose(
        function(x).numpy(), tj.grad(lambda t: tj.sum(fn(t)))(x).numpy(), rtol=1e-5, atol=1e-5
    )
    assert function.get_concrete_function(x).output_avals[0].shape == shape


def test_broadcast_to_of_an_unknown_dim_sums_only_when_it_was_one() -> None:
    spec = tj.TensorSpec((None, 3), "float32")
    function = tj.function(
        lambda x: tj.grad(lambda t: tj.sum(tj.broadcast_to(t, (5, 3)) * tj.arange(5.0)[:, None]))(
            x
        ),
        input_signature=[spec],
    )
    np.testing.assert_allclose(function(tj.ones((1, 3))).numpy(), np.full((1, 3), 10.0))
    np.testing.assert_allclose(function(tj.ones((5, 3))).numpy(), np.tile(np.arange(5.0), (3, 1)).T)
