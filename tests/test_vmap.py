"""``tj.vmap``: the registry walk (every op batches or says why not), the OpInfo table (vmap of
each op over a stacked batch equals the stack of per-example eager results), composition with
``tj.grad`` and with itself (checked against ``jax.vmap``), control flow, and the errors."""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from opinfo import OPINFOS, OpInfo, leaves, split_arrays

import tracejit as tj
from tracejit.errors import BatchingError
from tracejit.ops.registry import all_ops

BATCH = 3
SAMPLES = {"all_axis0": 2, "first_last_axis": 1}  # per row
TRACED_SAMPLES = 1


# The registry walk -----------------------------------------------------------------------------
def test_every_op_has_a_batching_rule_or_says_why_not() -> None:
    missing = sorted(
        name for name, op in all_ops().items() if not callable(op.batch) and not op.not_batchable
    )
    assert not missing, (
        f"ops without a batching rule: {missing}; give each a rule in "
        "tracejit/ops/batching_rules.py (most ops share a generic one), or set_batch_rule(op, "
        "None, reason) saying why it never needs one"
    )


# The OpInfo table ------------------------------------------------------------------------------
def _examples(array: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """BATCH examples of one sample array: itself and shuffles of its elements (the same set of
    values, so domain constraints — positive inputs, valid indices — still hold)."""
    out = [array]
    for _ in range(BATCH - 1):
        out.append(rng.permutation(array.reshape(-1)).reshape(array.shape))
    return out


def _eager_leaves(info: OpInfo, rebuild: Any, arrays: list[np.ndarray], kwargs: Any) -> list[Any]:
    return [
        r.numpy() for r in leaves(info.fn(*rebuild([tj.constant(a) for a in arrays]), **kwargs))
    ]


LAYOUTS = ("all_axis0", "first_last_axis")
CASES = [
    pytest.param(info, args, kwargs, layout, id=f"{info.id}-{i}-{layout}")
    for info in OPINFOS
    for layout in LAYOUTS
    for i, (args, kwargs) in enumerate(info.sample_list()[: SAMPLES[layout]])
]
TRACED_CASES = [
    pytest.param(info, args, kwargs, "all_axis0", id=f"{info.id}-{i}")
    for info in OPINFOS
    for i, (args, kwargs) in enumerate(info.sample_list()[:TRACED_SAMPLES])
]


def _batched_call(
    info: OpInfo, args: Any, kwargs: Any, layout: str, traced: bool
) -> tuple[list[Any], list[np.ndarray]]:
    arrays, rebuild = split_arrays(args)
    if not arrays:
        pytest.skip("no tensor operands to map over")
    rng = np.random.default_rng(0)
    per_array = [_examples(a, rng) for a in arrays]
    if layout == "all_axis0":
        axes = [0] * len(arrays)
        batched = [np.stack(ex) for ex in per_array]
        examples = [[ex[k] for ex in per_array] for k in range(BATCH)]
    else:  # only the first array mapped, along its last axis; the others shared
        axes = [-1] + [None] * (len(arrays) - 1)
        batched = [np.stack(per_array[0], axis=-1)] + arrays[1:]
        examples = [[per_array[0][k], *arrays[1:]] for k in range(BATCH)]

    def per_example(*tensors: Any) -> Any:
        return info.fn(*rebuild(list(tensors)), **kwargs)

    mapped = tj.vmap(per_example, in_axes=tuple(axes))
    call = tj.function(mapped) if traced else mapped
    result = call(*[tj.constant(b) for b in batched])
    expected = [_eager_leaves(info, rebuild, ex, kwargs) for ex in examples]
    stacked = [np.stack([e[j] for e in expected]) for j in range(len(expected[0]))]
    return leaves(result), stacked


def _compare(info: OpInfo, got: list[Any], want: list[np.ndarray]) -> None:
    assert len(got) == len(want), f"{info.id}: {len(got)} outputs, expected {len(want)}"
    for g, w in zip(got, want, strict=True):
        assert isinstance(g, tj.Tensor)
        assert g.dtype == w.dtype, f"{info.id}: dtype {g.dtype}, per-example {w.dtype}"
        assert g.shape == w.shape, f"{info.id}: shape {g.shape}, per-example {w.shape}"
        rtol, atol = info.tolerance(w.dtype)
        np.testing.assert_allclose(
            g.numpy(), w, rtol=max(rtol, 1e-5), atol=max(atol, 1e-5), err_msg=info.id
        )


@pytest.mark.parametrize(("info", "args", "kwargs", "layout"), CASES)
def test_vmap_of_op_equals_stack_of_examples(
    info: OpInfo, args: tuple[Any, ...], kwargs: dict[str, Any], layout: str
) -> None:
    with redirect_stdout(io.StringIO()):  # the print op's rows
        got, want = _batched_call(info, args, kwargs, layout, traced=False)
    _compare(info, got, want)


@pytest.mark.parametrize(("info", "args", "kwargs", "layout"), TRACED_CASES)
def test_vmap_inside_function_equals_stack_of_examples(
    info: OpInfo, args: tuple[Any, ...], kwargs: dict[str, Any], layout: str
) -> None:
    with redirect_stdout(io.StringIO()):
        got, want = _batched_call(info, args, kwargs, layout, traced=True)
    _compare(info, got, want)


# Composition with gradients, checked against jax ------------------------------------------------
RNG = np.random.default_rng(3)
XS = RNG.standard_normal((5, 3)).astype(np.float32)
W = RNG.standard_normal((3, 2)).astype(np.float32)


def _close(got: Any, want: Any) -> None:
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-6)


def _loss(w: Any, x: Any, lib: Any) -> Any:
    return lib.sum(lib.tanh(x @ w) ** 2) + lib.sum(w * w) * 0.1


def test_per_example_gradients_match_jax_vmap_of_grad() -> None:
    got = tj.vmap(tj.grad(lambda w, x: _loss(w, x, tj)), in_axes=(None, 0))(W, XS)
    want = jax.vmap(jax.grad(lambda w, x: _loss(w, x, jnp)), in_axes=(None, 0))(W, XS)
    assert got.shape == (5, 3, 2)
    _close(got.numpy(), want)
    compiled = tj.function(tj.vmap(tj.grad(lambda w, x: _loss(w, x, tj)), in_axes=(None, 0)))
    _close(compiled(tj.constant(W), tj.constant(XS)).numpy(), want)


def test_per_example_gradients_of_a_variable_with_a_tape_inside() -> None:
    w = tj.Variable(W)

    def per_example(x: Any) -> Any:
        with tj.GradientTape() as tape:
            loss = _loss(w, x, tj)
        return tape.gradient(loss, w)

    want = jax.vmap(jax.grad(lambda w, x: _loss(w, x, jnp)), in_axes=(None, 0))(W, XS)
    _close(tj.vmap(per_example)(XS).numpy(), want)
    _close(tj.function(tj.vmap(per_example))(tj.constant(XS)).numpy(), want)


def test_gradient_through_vmap_with_a_tape_outside() -> None:
    w = tj.Variable(W)
    with tj.GradientTape() as tape:
        total = tj.sum(tj.vmap(lambda x: _loss(w, x, tj))(XS))
    got = tape.gradient(total, w)
    want = jax.grad(lambda w: jnp.sum(jax.vmap(lambda x: _loss(w, x, jnp))(XS)))(W)
    _close(got.numpy(), want)


def test_nested_vmap_with_axes_matches_jax() -> None:
    a = RNG.standard_normal((4, 3, 5)).astype(np.float32)

    def inner(x: Any, y: Any, lib: Any) -> Any:
        return lib.sum(x * y) * x

    tj_fn = tj.vmap(tj.vmap(lambda x, y: inner(x, y, tj), in_axes=(1, None)), in_axes=(0, None))
    jax_fn = jax.vmap(jax.vmap(lambda x, y: inner(x, y, jnp), in_axes=(1, None)), in_axes=(0, None))
    y = RNG.standard_normal(3).astype(np.float32)
    _close(tj_fn(a, y).numpy(), jax_fn(a, y))
    _close(tj.function(tj_fn)(tj.constant(a), tj.constant(y)).numpy(), jax_fn(a, y))
    out1 = tj.vmap(lambda x: x * 2.0, in_axes=1, out_axes=1)(a)
    _close(out1.numpy(), jax.vmap(lambda x: x * 2.0, in_axes=1, out_axes=1)(a))


def test_in_axes_nests_and_out_axes_nests() -> None:
    params = {"w": tj.constant(W), "b": tj.constant([1.0, -1.0])}

    def f(p: Any, x: Any) -> Any:
        h = x @ p["w"] + p["b"]
        return {"h": h, "s": tj.sum(h)}

    out = tj.vmap(f, in_axes=({"w": None, "b": None}, 0), out_axes={"h": 1, "s": 0})(params, XS)
    want = jax.vmap(
        lambda p, x: {"h": x @ p["w"] + p["b"], "s": jnp.sum(x @ p["w"] + p["b"])},
        in_axes=({"w": None, "b": None}, 0),
        out_axes={"h": 1, "s": 0},
    )({"w": W, "b": np.array([1.0, -1.0], np.float32)}, XS)
    _close(out["h"].numpy(), want["h"])
    _close(out["s"].numpy(), want["s"])


def test_unbatched_outputs_are_broadcast_and_out_axes_none_keeps_them() -> None:
    out, same = tj.vmap(lambda x: (tj.constant(2.0), tj.constant(1.0)), out_axes=(0, None))(XS)
    assert out.shape == (5,) and same.shape == ()
    _close(out.numpy(), np.full(5, 2.0))


def _score(x: Any) -> Any:
    return tj.sum(tj.exp(x)) * x


def test_vmap_inside_function_prints_batched_ir_with_the_users_lines() -> None:
    @tj.function
    def f(xs: Any) -> Any:
        return tj.vmap(_score)(xs)

    text = str(f.get_concrete_function(tj.constant(XS)).ir_unoptimized)
    assert "exp %0" in text and "f32[5,3]" in text
    assert "in _score: return tj.sum(tj.exp(x)) * x" in text
    _close(f(tj.constant(XS)).numpy(), jax.vmap(lambda x: jnp.sum(jnp.exp(x)) * x)(XS))


def test_unknown_batch_size_inside_a_function() -> None:
    @tj.function(input_signature=[tj.TensorSpec((None, 3), "float32")])
    def f(xs: Any) -> Any:
        return tj.vmap(lambda x: (x @ tj.constant(W), tj.constant(1.0)))(xs)

    h, ones = f(tj.constant(XS))
    _close(h.numpy(), XS @ W)
    _close(ones.numpy(), np.ones(5))


def test_vectorized_map_is_vmap_over_axis_0() -> None:
    _close(tj.vectorized_map(lambda x: tj.sum(x * x), XS).numpy(), np.sum(XS * XS, axis=1))


# Control flow -----------------------------------------------------------------------------------
def test_cond_with_batched_and_unbatched_predicates() -> None:
    def f(x: Any, flag: Any, lib: Any) -> Any:
        cond = tj.cond if lib is tj else jax.lax.cond
        return cond(lib.sum(x) > 0, lambda v: v * 2.0, lambda v: -v, x) + cond(
            flag, lambda v: v + 1.0, lambda v: v - 1.0, x
        )

    flag = np.bool_(True)
    want = jax.vmap(lambda x: f(x, flag, jnp), in_axes=0)(XS)
    _close(tj.vmap(lambda x: f(x, tj.constant(flag), tj))(XS).numpy(), want)
    _close(tj.function(tj.vmap(lambda x: f(x, tj.constant(flag), tj)))(XS).numpy(), want)


def test_switch_with_a_batched_index_clamps_as_lax_switch() -> None:
    idx = np.array([0, 1, 2, 5, -1], np.int32)
    branches_tj = [lambda v: v * 2.0, lambda v: v + 1.0, lambda v: -v]
    branches_jax = [lambda v: v * 2.0, lambda v: v + 1.0, lambda v: -v]
    got = tj.vmap(lambda i, x: tj.switch(i, branches_tj, x))(idx, XS)
    want = jax.vmap(lambda i, x: jax.lax.switch(i, branches_jax, x))(idx, XS)
    _close(got.numpy(), want)


def test_while_loop_with_a_batched_predicate_matches_jax() -> None:
    starts = np.array([1.0, 3.0, 0.5, 20.0], np.float32)

    def tj_loop(x: Any) -> Any:
        return tj.while_loop(lambda i, v: v < 10.0, lambda i, v: (i + 1, v * 2.0), (0, x))

    def jax_loop(x: Any) -> Any:
        return jax.lax.while_loop(lambda s: s[1] < 10.0, lambda s: (s[0] + 1, s[1] * 2.0), (0, x))

    for got, want in zip(tj.vmap(tj_loop)(starts), jax.vmap(jax_loop)(starts)):
        _close(got.numpy(), want)
    for got, want in zip(tj.function(tj.vmap(tj_loop))(starts), jax.vmap(jax_loop)(starts)):
        _close(got.numpy(), want)


def test_scan_and_fori_loop_batch_their_bodies() -> None:
    def tj_scan(x: Any, w: Any) -> Any:
        return tj.scan(lambda c, e: (c * 0.5 + e @ w, tj.tanh(c)), tj.zeros(2), x)

    def jax_scan(x: Any, w: Any) -> Any:
        return jax.lax.scan(lambda c, e: (c * 0.5 + e @ w, jnp.tanh(c)), jnp.zeros(2), x)

    xs = np.stack([XS, XS * 2.0])  # (2, 5, 3): 2 examples of 5 steps
    for got, want in zip(
        tj.vmap(tj_scan, in_axes=(0, None))(xs, W), jax.vmap(jax_scan, in_axes=(0, None))(xs, W)
    ):
        _close(got.numpy(), want)
    got = tj.vmap(lambda x: tj.fori_loop(0, 3, lambda i, v: v * x, tj.ones(3)))(XS)
    _close(got.numpy(), XS**3)


def test_custom_gradient_keeps_its_rule_per_example() -> None:
    @tj.custom_gradient
    def scaled(x: Any) -> Any:
        return tj.sin(x), lambda dy: dy * 10.0  # deliberately not cos(x)

    got = tj.vmap(tj.grad(lambda x: tj.sum(scaled(x) * x)))(XS)
    # d/dx sum(sin(x) * x) with the rule: 10 * x (through scaled) + sin(x)
    _close(got.numpy(), 10.0 * XS + np.sin(XS))
    compiled = tj.function(tj.vmap(tj.grad(lambda x: tj.sum(scaled(x) * x))))
    _close(compiled(tj.constant(XS)).numpy(), 10.0 * XS + np.sin(XS))


def test_jax_function_batches_through_jax_vmap_and_differentiates() -> None:
    logsumexp = tj.jax_function(jax.scipy.special.logsumexp)
    got = tj.vmap(lambda x: logsumexp(x * 2.0))(XS)
    _close(got.numpy(), jax.vmap(lambda x: jax.scipy.special.logsumexp(x * 2.0))(XS))
    grads = tj.vmap(tj.grad(lambda x: logsumexp(x * 2.0)))(XS)
    _close(grads.numpy(), jax.vmap(jax.grad(lambda x: jax.scipy.special.logsumexp(x * 2.0)))(XS))
    text = str(
        tj.function(tj.vmap(lambda x: logsumexp(x))).get_concrete_function(XS).ir_unoptimized
    )
    assert "jax_call[fn=vmap(logsumexp)]" in text


# Errors -----------------------------------------------------------------------------------------
def test_an_op_without_a_rule_is_named_with_the_users_line() -> None:
    from tracejit.ops.registry import get_op, set_batch_rule

    op = get_op("sin")
    rule = op.batch
    set_batch_rule(op, None, "")
    try:
        with pytest.raises(BatchingError, match=r"sin: tj.vmap has no batching rule") as info:
            tj.vmap(lambda x: tj.sin(x) * 2.0)(XS)
        assert "test_vmap.py" in str(info.value) and "tj.sin(x) * 2.0" in str(info.value)
    finally:
        set_batch_rule(op, rule)


def test_argument_errors() -> None:
    with pytest.raises(BatchingError, match="in_axes has 1 entries but the function got 2"):
        tj.vmap(lambda a, b: a + b, in_axes=(0,))(XS, XS)
    with pytest.raises(BatchingError, match="different sizes"):
        tj.vmap(lambda a, b: a + b)(XS, XS[:2])
    with pytest.raises(BatchingError, match="out of range"):
        tj.vmap(lambda a: a, in_axes=2)(XS)
    with pytest.raises(BatchingError, match="no argument is mapped"):
        tj.vmap(lambda a: a, in_axes=None)(XS)
    with pytest.raises(BatchingError, match="Python number"):
        tj.vmap(lambda a, b: a * b)(XS, 2.0)
    with pytest.raises(BatchingError, match="out_axes is None for output leaf 0"):
        tj.vmap(lambda a: a * 2.0, out_axes=None)(XS)
    with pytest.raises(BatchingError, match="does not match the structure"):
        tj.vmap(lambda a: a, in_axes=((0, 0),))(XS)
    with pytest.raises(TypeError, match="needs a callable"):
        tj.vmap(3)
    assert tj.vmap(lambda a, n: a * n, in_axes=(0, None))(XS, 2.0).shape == (5, 3)


def test_assigning_a_variable_inside_vmap_is_an_error() -> None:
    v = tj.Variable(np.zeros(3, np.float32), name="acc")

    def f(x: Any) -> Any:
        v.assign(x)
        return x

    with pytest.raises(BatchingError, match="assigns variable\\(s\\) acc"):
        tj.vmap(f)(XS)
    with pytest.raises(BatchingError, match="assigns variable"):
        tj.function(tj.vmap(f))(tj.constant(XS))


# Contractions: every operand layout, against jax.vmap -------------------------------------------
CONTRACTIONS = [
    ("matmul", tj.matmul, jnp.matmul, (3, 4), (4, 2)),
    ("matmul", tj.matmul, jnp.matmul, (4,), (4, 2)),
    ("matmul", tj.matmul, jnp.matmul, (2, 3, 4), (4,)),
    ("matmul", tj.matmul, jnp.matmul, (4,), (4,)),
    ("matmul", tj.matmul, jnp.matmul, (4,), (2, 4, 3)),
    ("dot", tj.dot, jnp.dot, (3, 2, 4), (5, 4, 2)),
    ("dot", tj.dot, jnp.dot, (3, 4), (4,)),
    ("dot", tj.dot, jnp.dot, (4,), (4, 2)),
]


@pytest.mark.parametrize("in_axes", [(0, None), (None, 0), (0, 0), (1, None), (None, -1)])
@pytest.mark.parametrize(
    ("name", "tj_fn", "jnp_fn", "x_shape", "y_shape"),
    CONTRACTIONS,
    ids=[f"{c[0]}-{c[3]}-{c[4]}" for c in CONTRACTIONS],
)
def test_contractions_for_every_layout(
    name: str, tj_fn: Any, jnp_fn: Any, x_shape: Any, y_shape: Any, in_axes: Any
) -> None:
    def batched(shape: tuple[int, ...], axis: int | None) -> np.ndarray:
        if axis is None:
            return RNG.standard_normal(shape).astype(np.float32)
        if axis >= len(shape) + 1 or -axis > len(shape) + 1:
            pytest.skip("axis out of range for this operand")
        full = list(shape)
        full.insert(axis % (len(shape) + 1), 3)
        return RNG.standard_normal(full).astype(np.float32)

    x, y = batched(x_shape, in_axes[0]), batched(y_shape, in_axes[1])
    want = jax.vmap(jnp_fn, in_axes=in_axes)(x, y)
    got = tj.vmap(tj_fn, in_axes=in_axes)(x, y)
    assert got.shape == want.shape
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-5)


def test_keyword_arguments_are_mapped_along_axis_0_as_jax_does() -> None:
    got = tj.vmap(lambda x, *, scale: x * scale, in_axes=None)(tj.constant(2.0), scale=XS)
    _close(got.numpy(), XS * 2.0)
    got = tj.vmap(lambda x, scale: x @ scale, in_axes=(0,))(XS, scale=np.stack([W] * 5))
    _close(got.numpy(), np.einsum("bi,bij->bj", XS, np.stack([W] * 5)))
