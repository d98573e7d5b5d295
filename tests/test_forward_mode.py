"""Forward mode: ``tj.jvp``, ``tj.autodiff.ForwardAccumulator`` (TF's API) and ``tj.hvp``.

(a) the OpInfo table drives it, jax.jvp is the oracle: for every differentiable op, the tangent
    ``tj.jvp`` gives for random input tangents equals ``jax.jvp`` of the row's jax reference, run
    eagerly and inside a ``tj.function``;
(b) a registry walk: every differentiable op has a JVP rule, is elementwise (its JVP is its VJP
    applied to the tangent) or goes through the VJP's transpose on purpose;
(c) the accumulator's API as TF documents it (variables, unconnected tangents, nesting,
    integer primals, errors), control flow, custom gradients, compiled calls;
(d) Hessian-vector products (forward-over-reverse) against ``jax.jvp(jax.grad(f))``.
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
from tracejit.autodiff.forward import TangentError
from tracejit.autodiff.forward_rules import op_jvp
from tracejit.autodiff.tape import GradientError
from tracejit.ops.registry import OpDef, all_ops
from tracejit.ops.tensor_methods import is_tensor_leaf

EAGER_SAMPLES = 2
TRACED_SAMPLES = 1


# Ops whose forward mode is a clear error, tested below: py_function's gradient runs Python.
REFUSED = {"py_function"}


def _differentiable(info: OpInfo) -> bool:
    return all_ops()[info.name].differentiable


def _cases(per_row: int) -> list[Any]:
    cases = []
    for info in OPINFOS:
        if info.skip_gradients or not _differentiable(info) or info.name in REFUSED:
            continue
        samples = [s for s in info.sample_list() if _float_positions(s[0])]
        for i, (args, kwargs) in enumerate(samples[:per_row]):
            cases.append(pytest.param(info, args, kwargs, id=f"{info.id}-{i}"))
    return cases


def _float_positions(args: tuple[Any, ...]) -> list[int]:
    return [i for i, a in enumerate(split_arrays(args)[0]) if a.dtype.kind == "f"]


def _tangents(info: OpInfo, args: tuple[Any, ...]) -> dict[int, np.ndarray]:
    """A fixed random tangent per float input array, seeded by the case."""
    arrays = split_arrays(args)[0]
    rng = np.random.default_rng(zlib.crc32(f"jvp{info.id}{arrays[0].shape}".encode()))
    return {
        i: rng.standard_normal(arrays[i].shape).astype(arrays[i].dtype)
        for i in _float_positions(args)
    }


def _program(info: OpInfo, args: tuple[Any, ...], kwargs: dict[str, Any], module: Any) -> Any:
    """The op as a function of its float input arrays (the other inputs fixed)."""
    arrays, rebuild = split_arrays(args)
    positions = _float_positions(args)
    fn = info.fn if module is tj else (info.grad_ref or info.jax_ref or info.ref)

    def program(*floats: Any) -> list[Any]:
        replaced: list[Any] = list(arrays) if module is jnp else [tj.constant(a) for a in arrays]
        for position, value in zip(positions, floats, strict=True):
            replaced[position] = value
        return leaves(fn(*rebuild(replaced), **kwargs))

    return program


def _jax_jvp(info: OpInfo, program: Any, primals: Any, directions: Any) -> Any:
    """``jax.jvp``; for a reference with a custom VJP (which jax cannot push forward), the
    transpose of its VJP, which is what tracejit (and TF) compute for custom gradients."""
    if not isinstance(info.grad_ref, jax.custom_vjp):
        return jax.jvp(program, primals, directions)
    outs, pullback = jax.vjp(program, *primals)
    found = jax.linear_transpose(lambda *cts: pullback(list(cts)), *outs)(tuple(directions))
    return outs, list(found)


def jax_tangents(info: OpInfo, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
    positions, tangents = _float_positions(args), _tangents(info, args)
    arrays = split_arrays(args)[0]
    primals = tuple(jnp.asarray(arrays[p]) for p in positions)
    directions = tuple(jnp.asarray(tangents[p]) for p in positions)
    program = _program(info, args, kwargs, jnp)
    outs, found = jax.jit(lambda p, t: _jax_jvp(info, program, p, t))(primals, directions)
    return [
        np.asarray(t) if jnp.issubdtype(o.dtype, jnp.inexact) else None
        for o, t in zip(outs, found, strict=True)
    ]


def tj_tangents(
    info: OpInfo, args: tuple[Any, ...], kwargs: dict[str, Any], traced: bool, unknown: bool = False
) -> Any:
    """``tj.jvp``'s tangents, eagerly or traced (with an unknown leading dim in the first float
    input's spec and its tangent's when ``unknown``)."""
    positions, tangents = _float_positions(args), _tangents(info, args)
    arrays = split_arrays(args)[0]
    program = _program(info, args, kwargs, tj)

    def run(primals: list[Any], directions: list[Any]) -> Any:
        return tj.jvp(program, primals, directions)[1]

    if traced:
        specs = None
        if unknown:
            floats = [tj.TensorSpec(arrays[p].shape, arrays[p].dtype) for p in positions]
            first = arrays[positions[0]]
            floats[0] = tj.TensorSpec((None, *first.shape[1:]), first.dtype)
            specs = [floats, floats]
        run = tj.function(run, input_signature=specs)
    return run(
        [tj.constant(arrays[p]) for p in positions], [tj.constant(tangents[p]) for p in positions]
    )


def assert_tangents_close(info: OpInfo, got: list[Any], expected: list[Any], what: str) -> None:
    assert len(got) == len(expected), f"{info.id}: {len(got)} tangents for {len(expected)}"
    for i, (g, e) in enumerate(zip(got, expected, strict=True)):
        where = f"{info.id}: {what}, output {i}"
        if e is None:
            assert g is None, f"{where}: an integer output got a tangent"
            continue
        assert isinstance(g, tj.Tensor), f"{where}: got {type(g).__name__}"
        assert g.dtype == e.dtype and g.shape == e.shape, (
            f"{where}: {g.dtype}{g.shape} vs {e.dtype}{e.shape}"
        )
        rtol, atol = tolerance(g.dtype, info.rtol, info.atol)
        rtol, atol = rtol * 4, max(atol, rtol) * 4  # tangents accumulate rounding, as gradients
        np.testing.assert_allclose(
            g.numpy().astype(np.float64), e.astype(np.float64), rtol, atol, err_msg=where
        )


# (a) the OpInfo table ----------------------------------------------------------------------------
@pytest.mark.parametrize(("info", "args", "kwargs"), _cases(EAGER_SAMPLES))
def test_eager_jvp_matches_jax(info: OpInfo, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    expected = jax_tangents(info, args, kwargs)
    assert_tangents_close(info, tj_tangents(info, args, kwargs, False), expected, "eager")


@pytest.mark.parametrize(("info", "args", "kwargs"), _cases(TRACED_SAMPLES))
def test_traced_jvp_matches_jax(
    info: OpInfo, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    expected = jax_tangents(info, args, kwargs)
    assert_tangents_close(info, tj_tangents(info, args, kwargs, True), expected, "traced")


def _unknown_dim_cases() -> list[Any]:
    cases = []
    for case in _cases(TRACED_SAMPLES):
        info, args, kwargs = case.values
        skip = info.skip_unknown(args, kwargs) if callable(info.skip_unknown) else info.skip_unknown
        first = split_arrays(args)[0][_float_positions(args)[0]]
        if not skip and first.ndim > 0 and info.name in UNKNOWN_DIM_OPS:
            cases.append(case)
    return cases


# Ops whose rules meet unknown dims: broadcasting, reductions, reshapes, the like ops (all
# the table's rows pass; these keep the suite's time down).
UNKNOWN_DIM_OPS = {
    "add",
    "subtract",
    "multiply",
    "divide",
    "power",
    "where",
    "maximum",
    "clip",
    "sum",
    "mean",
    "max",
    "prod",
    "logsumexp",
    "softmax",
    "log_softmax",
    "reshape",
    "broadcast_to",
    "concatenate",
    "stack",
    "split",
    "matmul",
    "take",
    "slice",
    "sum_like",
    "broadcast_like",
    "reshape_like",
    "layer_norm",
    "cumulative_sum",
    "sort",
}


@pytest.mark.parametrize(("info", "args", "kwargs"), _unknown_dim_cases())
def test_traced_jvp_with_an_unknown_leading_dim(
    info: OpInfo, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    expected = jax_tangents(info, args, kwargs)
    got = tj_tangents(info, args, kwargs, True, unknown=True)
    assert_tangents_close(info, got, expected, "traced with an unknown dim")


def test_finite_differences_in_float64() -> None:
    script = Path(__file__).with_name("jvpcheck_x64.py")
    env = {**os.environ, "JAX_ENABLE_X64": "1", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "checked" in done.stdout


# (b) the registry walk ---------------------------------------------------------------------------
def _kind(op: OpDef) -> str:
    if getattr(op.jvp, "transposes_vjp", False):
        return "transpose"
    if op.jvp is not None:
        return "rule"
    if op.elementwise and op.vjp is not None and not op.multiple_results:
        return "diagonal"
    return "missing"


def test_every_differentiable_op_has_a_forward_mode_rule() -> None:
    kinds: dict[str, list[str]] = {}
    for name, op in sorted(all_ops().items()):
        if op.differentiable:
            kinds.setdefault(_kind(op), []).append(name)
    assert not kinds.get("missing"), (
        f"ops with a VJP but no JVP rule: {kinds.get('missing')}; give each a jvp= in its "
        "defop (tracejit/ops/jvp_rules.py), or transpose_jvp(name) when the VJP's transpose is "
        "the simpler way"
    )
    # The families the issue asks to write out have rules of their own, not the transpose.
    written = {
        "matmul",
        "dot",
        "tensordot",
        "reshape",
        "transpose",
        "take",
        "slice",
        "sum",
        "mean",
        "max",
        "min",
        "prod",
        "logsumexp",
        "softmax",
        "log_softmax",
        "concatenate",
        "broadcast_to",
        "cond",
        "switch",
        "scan",
        "while_loop",
        "conv2d",
        "sort",
    }
    assert written <= set(kinds["rule"]), written - set(kinds["rule"])
    assert {"exp", "tanh", "sin", "log", "maximum", "clip"} <= set(kinds["diagonal"])
    assert "custom_gradient" in kinds["transpose"]  # the user's gradient decides, as in TF


def test_py_function_refuses_forward_mode_by_name() -> None:
    x = tj.constant([1.0, 2.0])
    traced = tj.function(
        lambda x: tj.jvp(
            lambda x: tj.py_function(np.sin, [x], tj.TensorSpec([2], tj.float32)), (x,), (x,)
        )
    )
    with pytest.raises(GradientError, match="op 'py_function' has no forward-mode rule"):
        traced(x)


def test_an_op_with_neither_rule_is_named() -> None:
    lonely = OpDef("lonely_op", lambda x: x, lambda x: x)
    x = tj.constant(1.0)
    with pytest.raises(GradientError, match="op 'lonely_op' has no forward-mode rule"):
        op_jvp(lonely, (x,), {}, (x,), (tj.constant(1.0),))


# (c) the accumulator -----------------------------------------------------------------------------
def test_tf_guide_dense_layer_jvp_with_respect_to_a_variable() -> None:
    # TF's advanced autodiff guide: the JVP of a loss w.r.t. a layer's kernel.
    x = np.array([[2.0, 3.0], [1.0, 4.0]], np.float32)
    targets = np.array([[1.0], [-1.0]], np.float32)
    kernel0 = np.array([[0.5], [-0.25]], np.float32)
    kernel = tj.Variable(kernel0)
    direction = np.array([[1.0], [0.0]], np.float32)
    with tj.autodiff.ForwardAccumulator(kernel, tj.constant(direction)) as acc:
        loss = tj.sum((tj.matmul(tj.constant(x), kernel) - targets) ** 2.0)

    def jax_loss(k: Any) -> Any:
        return jnp.sum((x @ k - targets) ** 2.0)

    _, expected = jax.jvp(jax_loss, (jnp.asarray(kernel0),), (jnp.asarray(direction),))
    np.testing.assert_allclose(float(acc.jvp(loss)), float(expected), rtol=1e-6)
    np.testing.assert_array_equal(acc.jvp(kernel).numpy(), direction)  # a primal's own tangent


def test_unconnected_and_integer_values() -> None:
    x, other = tj.constant([1.0, 2.0]), tj.constant([3.0, 4.0])
    count = tj.constant([1, 2])
    with tj.autodiff.ForwardAccumulator([x, count], [tj.constant([1.0, 1.0]), 1]) as acc:
        y = x * 2.0
        unrelated = other * 2.0
        index = tj.argmax(x)
        doubled = count * 2
    assert acc.jvp(unrelated) is None
    np.testing.assert_array_equal(acc.jvp(unrelated, unconnected_gradients="zero").numpy(), [0, 0])
    assert acc.jvp(index) is None and acc.jvp(doubled) is None  # integer tensors: no tangent
    assert acc.jvp(count, unconnected_gradients="zero") is None
    found = acc.jvp({"y": y, "u": unrelated})
    np.testing.assert_array_equal(found["y"].numpy(), [2.0, 2.0])
    assert found["u"] is None
    with pytest.raises(ValueError, match="unconnected_gradients"):
        acc.jvp(y, unconnected_gradients="nan")
    after = x * 3.0  # computed after the block: not followed
    assert acc.jvp(after) is None


def test_tangents_must_fit_their_primals() -> None:
    x = tj.constant([1.0, 2.0])
    with pytest.raises(TangentError, match=r"tangent of shape \(3,\) for a primal of shape \(2,\)"):
        tj.autodiff.ForwardAccumulator(x, tj.constant([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="structure of the primals"):
        tj.autodiff.ForwardAccumulator([x, x], [tj.constant([1.0, 2.0])])
    with pytest.raises(TypeError, match="watches tensors or Variables"):
        tj.autodiff.ForwardAccumulator([1.0], [1.0])
    with pytest.raises(TypeError, match="tuple or list"):
        tj.jvp(tj.sin, x, x)


def test_tangent_dtype_follows_the_primal_and_watch_adds_up() -> None:
    x = tj.constant(np.array([1.0, 2.0], np.float16))
    acc = tj.autodiff.ForwardAccumulator(x, [1, 1])  # converted to the primal's dtype
    acc.watch(x, tj.constant(np.array([1.0, 0.0], np.float16)))  # two directions add, as TF
    with acc:
        y = x * x
    assert acc.jvp(y).dtype == np.float16
    np.testing.assert_array_equal(acc.jvp(y).numpy(), [4.0, 4.0])


def test_jvp_matches_jax_on_pytrees_and_multiple_outputs() -> None:
    params = {"w": np.ones((2, 3), np.float32) * 0.5, "b": np.array([0.1, 0.2, 0.3], np.float32)}
    x = np.arange(4, dtype=np.float32).reshape(2, 2)
    directions = {"w": np.full((2, 3), 0.1, np.float32), "b": np.ones(3, np.float32)}

    def tj_model(p: Any) -> Any:
        h = tj.tanh(tj.matmul(tj.constant(x), p["w"]) + p["b"])
        return {"out": tj.sum(h, axis=1), "count": tj.argmax(h, axis=1)}

    def jax_model(p: Any) -> Any:
        return jnp.sum(jnp.tanh(x @ p["w"] + p["b"]), axis=1)

    tj_params = jax.tree_util.tree_map(tj.constant, params)
    tj_dirs = jax.tree_util.tree_map(tj.constant, directions)
    out, tangent = tj.jvp(tj_model, (tj_params,), (tj_dirs,))
    want_out, want_tangent = jax.jvp(jax_model, (params,), (directions,))
    np.testing.assert_allclose(out["out"].numpy(), want_out, rtol=1e-6)
    np.testing.assert_allclose(tangent["out"].numpy(), want_tangent, rtol=1e-5)
    assert tangent["count"] is None


def test_reverse_over_forward_gradient_of_a_jvp() -> None:
    x0, v0 = np.array([0.3, -1.2, 2.0], np.float32), np.array([1.0, 0.5, -2.0], np.float32)
    x, v = tj.constant(x0), tj.constant(v0)
    with tj.GradientTape() as tape:
        tape.watch(x)
        with tj.autodiff.ForwardAccumulator(x, v) as acc:
            y = tj.sum(tj.sin(x) * x**2)
        directional = acc.jvp(y)
    got = tape.gradient(directional, x)

    def directional_ref(x: Any) -> Any:
        return jax.jvp(lambda x: jnp.sum(jnp.sin(x) * x**2), (x,), (v0,))[1]

    np.testing.assert_allclose(got.numpy(), jax.grad(directional_ref)(x0), rtol=1e-5)


def test_forward_over_forward_second_derivative() -> None:
    x = tj.constant(0.7)
    with tj.autodiff.ForwardAccumulator(x, tj.constant(1.0)) as outer:
        with tj.autodiff.ForwardAccumulator(x, tj.constant(1.0)) as inner:
            y = tj.exp(x) * tj.sin(x)
        first = inner.jvp(y)
    second = outer.jvp(first)

    def f(x: Any) -> Any:
        return jnp.exp(x) * jnp.sin(x)

    np.testing.assert_allclose(float(first), float(jax.grad(f)(0.7)), rtol=1e-6)
    np.testing.assert_allclose(float(second), float(jax.grad(jax.grad(f))(0.7)), rtol=1e-5)


def test_accumulator_inside_a_function_traces_the_tangents_into_the_graph() -> None:
    v = tj.Variable([1.0, 2.0])

    @tj.function
    def directional(x: Any, t: Any) -> Any:
        with tj.autodiff.ForwardAccumulator([x, v], [t, tj.ones_like(t)]) as acc:
            y = tj.sum(tj.exp(x) * v)
        return y, acc.jvp(y)

    x0, t0 = np.array([0.5, -0.5], np.float32), np.array([1.0, 3.0], np.float32)
    y, dy = directional(tj.constant(x0), tj.constant(t0))

    def ref(x: Any, w: Any) -> Any:
        return jnp.sum(jnp.exp(x) * w)

    w0 = np.array([1.0, 2.0], np.float32)
    _, want = jax.jvp(ref, (x0, w0), (t0, np.ones(2, np.float32)))
    np.testing.assert_allclose(float(dy), float(want), rtol=1e-6)
    text = str(directional.get_concrete_function(tj.constant(x0), tj.constant(t0)).ir)
    assert text.count("exp") >= 1 and "multiply" in text


def test_compiled_call_from_eager_code_under_an_accumulator() -> None:
    f = tj.function(lambda x: tj.sum(tj.tanh(x) ** 2))
    x0, t0 = np.array([0.1, 0.4, -0.8], np.float32), np.array([1.0, -1.0, 2.0], np.float32)
    x = tj.constant(x0)
    with tj.autodiff.ForwardAccumulator(x, tj.constant(t0)) as acc:
        y = f(x)
    _, want = jax.jvp(lambda x: jnp.sum(jnp.tanh(x) ** 2), (x0,), (t0,))
    np.testing.assert_allclose(float(acc.jvp(y)), float(want), rtol=1e-5)


def test_custom_gradient_decides_the_tangent_as_in_tf() -> None:
    @tj.custom_gradient
    def scaled_identity(x: Any) -> Any:
        return x * 1.0, lambda dy: dy * 3.0

    x, t = tj.constant([1.0, 2.0]), tj.constant([1.0, -1.0])
    _, eager = tj.jvp(lambda x: scaled_identity(x) * 2.0, (x,), (t,))
    np.testing.assert_allclose(eager.numpy(), [6.0, -6.0])
    traced = tj.function(lambda x, t: tj.jvp(lambda x: scaled_identity(x) * 2.0, (x,), (t,))[1])
    np.testing.assert_allclose(traced(x, t).numpy(), [6.0, -6.0])


# Control flow ------------------------------------------------------------------------------------
def _check_traced(fn: Any, ref: Any, primals: list[np.ndarray], tangents: list[np.ndarray]) -> None:
    run = tj.function(lambda p, t: tj.jvp(fn, p, t))
    out, tangent = run([tj.constant(p) for p in primals], [tj.constant(t) for t in tangents])
    want_out, want_tangent = jax.jvp(ref, tuple(primals), tuple(tangents))
    for got, want in zip(
        jax.tree_util.tree_leaves(tangent, is_leaf=is_tensor_leaf),
        jax.tree_util.tree_leaves(want_tangent),
    ):
        np.testing.assert_allclose(got.numpy(), np.asarray(want), rtol=1e-5, atol=1e-6)
    for got, want in zip(
        jax.tree_util.tree_leaves(out, is_leaf=is_tensor_leaf), jax.tree_util.tree_leaves(want_out)
    ):
        np.testing.assert_allclose(got.numpy(), np.asarray(want), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("positive", [True, False])
def test_cond(positive: bool) -> None:
    x0 = np.array([0.5, 1.5], np.float32) * (1 if positive else -1)

    def fn(x: Any, w: Any) -> Any:
        return tj.cond(tj.sum(x) > 0, lambda: tj.sin(x) * w, lambda: x**2 + w)

    def ref(x: Any, w: Any) -> Any:
        return jax.lax.cond(jnp.sum(x) > 0, lambda: jnp.sin(x) * w, lambda: x**2 + w)

    _check_traced(fn, ref, [x0, np.float32(3.0)], [np.ones(2, np.float32), np.float32(0.5)])


def test_switch() -> None:
    def fn(i: Any, x: Any) -> Any:
        return tj.switch(i, [lambda: tj.exp(x), lambda: x * x, lambda: -x])

    def ref(x: Any) -> Any:
        return jax.lax.switch(1, [jnp.exp, lambda x: x * x, lambda x: -x], x)

    run = tj.function(lambda i, x, t: tj.jvp(lambda x: fn(i, x), (x,), (t,)))
    x0, t0 = np.array([0.5, -2.0], np.float32), np.array([1.0, 2.0], np.float32)
    _, tangent = run(tj.constant(1), tj.constant(x0), tj.constant(t0))
    np.testing.assert_allclose(tangent.numpy(), jax.jvp(ref, (x0,), (t0,))[1], rtol=1e-6)


def test_scan_with_carry_xs_and_closed_over_values() -> None:
    def fn(c0: Any, xs: Any, w: Any) -> Any:
        return tj.scan(lambda c, x: (c * w + tj.sin(x), c * x), c0, xs)

    def ref(c0: Any, xs: Any, w: Any) -> Any:
        return jax.lax.scan(lambda c, x: (c * w + jnp.sin(x), c * x), c0, xs)

    primals = [np.float32(0.5), np.linspace(-1, 1, 5).astype(np.float32), np.float32(0.9)]
    tangents = [np.float32(1.0), np.ones(5, np.float32) * 0.3, np.float32(-0.5)]
    _check_traced(fn, ref, primals, tangents)


def test_while_loop_needs_no_maximum_iterations_in_forward_mode() -> None:
    def fn(x: Any) -> Any:
        return tj.while_loop(lambda i, y: i < 4, lambda i, y: (i + 1, tj.sin(y) * 1.5), (0, x))[1]

    def ref(x: Any) -> Any:
        return jax.lax.while_loop(
            lambda s: s[0] < 4, lambda s: (s[0] + 1, jnp.sin(s[1]) * 1.5), (0, x)
        )[1]

    _check_traced(fn, ref, [np.array([0.3, 1.1], np.float32)], [np.array([1.0, -1.0], np.float32)])


def test_fori_loop_and_autograph_loop() -> None:
    def fn(x: Any) -> Any:
        return tj.fori_loop(0, 3, lambda i, y: y * x + 1.0, tj.ones_like(x))

    def ref(x: Any) -> Any:
        return jax.lax.fori_loop(0, 3, lambda i, y: y * x + 1.0, jnp.ones_like(x))

    _check_traced(fn, ref, [np.array([0.5, 2.0], np.float32)], [np.array([1.0, 1.0], np.float32)])


# (d) Hessian-vector products ---------------------------------------------------------------------
def _rosenbrock_tj(x: Any) -> Any:
    return tj.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2) + tj.nn.logsumexp(x)


def _rosenbrock_jax(x: Any) -> Any:
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2) + jax.nn.logsumexp(x)


@pytest.mark.parametrize("traced", [False, True])
def test_hvp_matches_jax_forward_over_reverse(traced: bool) -> None:
    x0 = np.array([0.5, -1.0, 1.5, 0.2], np.float32)
    v0 = np.array([1.0, 0.5, -0.3, 2.0], np.float32)
    expected = jax.jvp(jax.grad(_rosenbrock_jax), (x0,), (v0,))[1]

    def run(x: Any, v: Any) -> Any:
        return tj.hvp(_rosenbrock_tj, (x,), (v,))[0]

    got = (tj.function(run) if traced else run)(tj.constant(x0), tj.constant(v0))
    np.testing.assert_allclose(got.numpy(), np.asarray(expected), rtol=1e-4, atol=1e-3)


def test_tf_guide_hvp_recipe_accumulator_over_a_tape() -> None:
    # TF's advanced autodiff guide: forward-over-reverse with the accumulator outside the tape.
    x0 = np.array([[1.0, 2.0], [3.0, -1.0]], np.float32)
    v0 = np.array([[1.0, 0.0], [0.5, 1.0]], np.float32)
    x = tj.constant(x0)
    with tj.autodiff.ForwardAccumulator(x, tj.constant(v0)) as acc:
        with tj.GradientTape() as tape:
            tape.watch(x)
            y = tj.sum(tj.tanh(tj.matmul(x, x)))
        gradient = tape.gradient(y, x)
    hvp = acc.jvp(gradient)
    f = lambda x: jnp.sum(jnp.tanh(x @ x))  # noqa: E731
    expected = jax.jvp(jax.grad(f), (x0,), (v0,))[1]
    np.testing.assert_allclose(hvp.numpy(), np.asarray(expected), rtol=1e-4, atol=1e-5)


def test_hvp_refuses_a_non_scalar_function() -> None:
    with pytest.raises(GradientError, match="must return a scalar"):
        tj.hvp(lambda x: x * 2.0, (tj.constant([1.0]),), (tj.constant([1.0]),))
