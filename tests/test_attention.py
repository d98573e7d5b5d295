"""dot_product_attention: located errors, the attention pattern of fuse_patterns (fires on the
hand-written chain, not on near-misses, same values), and MultiHeadAttention against a numpy
implementation of Keras' equations with the layer's weights."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tracejit as tj
from tracejit.passes.patterns import fuse_patterns


def rand(*shape, seed=0):
    return (
        np.random.default_rng(seed + len(shape) * 7 + sum(shape))
        .standard_normal(shape)
        .astype(np.float32)
    )


def traced(fn, *specs):
    return tj.function(fn, optimize=False).get_concrete_function(*specs).ir


def op_names(graph):
    return [n.op.name for n in graph.nodes]


# The op's errors ---------------------------------------------------------------------------------
def test_errors_name_the_argument_and_the_users_line():
    q = tj.ones((2, 4, 3, 8))
    with pytest.raises(tj.errors.ShapeError, match=r"k must have rank 4") as info:
        tj.nn.dot_product_attention(q, tj.ones((4, 3, 8, 1, 1)), q)
    assert "test_attention.py" in str(info.value)
    with pytest.raises(tj.errors.ShapeError, match=r"differ in their dim size \(axis 3\)"):
        tj.nn.dot_product_attention(q, tj.ones((2, 5, 3, 4)), tj.ones((2, 5, 3, 4)))
    with pytest.raises(tj.errors.ShapeError, match="grouped-query attention"):
        tj.nn.dot_product_attention(q, tj.ones((2, 5, 1, 8)), tj.ones((2, 5, 1, 8)))
    with pytest.raises(tj.errors.ShapeError, match="k and v must have the same shape"):
        tj.nn.dot_product_attention(q, tj.ones((2, 5, 3, 8)), tj.ones((2, 6, 3, 8)))
    with pytest.raises(tj.errors.OpTypeError, match="mask must be bool"):
        tj.nn.dot_product_attention(q, q, q, mask=tj.ones((4, 4)))
    with pytest.raises(tj.errors.ShapeError, match=r"bias must broadcast to .*\(2, 3, 4, 4\)"):
        tj.nn.dot_product_attention(q, q, q, bias=tj.ones((5, 4)))
    with pytest.raises(tj.errors.OpTypeError, match="one dtype"):
        tj.nn.dot_product_attention(q, tj.cast(q, "float16"), q)


def test_compiled_gradient_matches_jax_grad():
    q, k, v = rand(2, 5, 2, 4), rand(2, 6, 2, 4, seed=1), rand(2, 6, 2, 4, seed=2)
    mask = np.random.default_rng(3).random((2, 1, 5, 6)) > 0.4
    bias = rand(1, 2, 5, 6, seed=4)

    def loss(q, k, v, bias):
        out = tj.nn.dot_product_attention(q, k, v, mask=mask, bias=bias, is_causal=True)
        return tj.sum(tj.sin(out))

    @tj.function
    def grads(q, k, v, bias):
        with tj.GradientTape() as tape:
            tape.watch([q, k, v, bias])
            value = loss(q, k, v, bias)
        return tape.gradient(value, [q, k, v, bias])

    def jax_loss(q, k, v, bias):
        out = jax.nn.dot_product_attention(q, k, v, bias=bias, mask=mask, is_causal=True)
        return jnp.sum(jnp.sin(out))

    expected = jax.grad(jax_loss, argnums=(0, 1, 2, 3))(q, k, v, bias)
    for got, want in zip(grads(q, k, v, bias), expected, strict=True):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-6)


# The pattern -------------------------------------------------------------------------------------
def attention_bnth(q, k, v):
    scores = tj.matmul(q, tj.transpose(k, (0, 1, 3, 2))) / math.sqrt(8)
    return tj.matmul(tj.nn.softmax(scores, axis=-1), v)


def attention_masked(q, k, v, mask):
    scores = (q @ tj.transpose(k, (0, 1, 3, 2))) * 0.25 + mask
    return tj.nn.softmax(scores) @ v


def attention_single_head(q, k, v):  # [batch, seq, dim]
    return tj.nn.softmax(q @ tj.transpose(k, (0, 2, 1)) * 0.3) @ v


def attention_unbatched(q, k, v):  # [seq, dim], no scale
    return tj.nn.softmax(q @ k.T) @ v


def multi_head(x, w):
    """The usual layer: project, split heads by reshape + transpose, attend, merge heads."""
    heads = tj.transpose(tj.reshape(x @ w, (2, 5, 4, 8)), (0, 2, 1, 3))
    scores = (heads @ tj.transpose(heads, (0, 1, 3, 2))) / math.sqrt(8)
    out = tj.nn.softmax(scores) @ heads
    return tj.reshape(tj.transpose(out, (0, 2, 1, 3)), (2, 5, 32))


B4 = tj.TensorSpec((2, 4, 5, 8))
FIRES = [
    ("bnth", attention_bnth, (B4, B4, B4)),
    ("additive_mask", attention_masked, (B4, B4, B4, tj.TensorSpec((2, 1, 5, 5)))),
    ("single_head", attention_single_head, (tj.TensorSpec((3, 5, 8)),) * 3),
    (
        "unbatched",
        attention_unbatched,
        (tj.TensorSpec((5, 8)), tj.TensorSpec((6, 8)), tj.TensorSpec((6, 8))),
    ),  # fmt: skip
    ("multi_head", multi_head, (tj.TensorSpec((2, 5, 32)), tj.TensorSpec((32, 32)))),
]


def arrays(specs, seed=0):
    return [rand(*s.shape, seed=seed + i) for i, s in enumerate(specs)]


@pytest.mark.parametrize("name,fn,specs", FIRES, ids=[f[0] for f in FIRES])
def test_pattern_fires_on_hand_written_attention_and_keeps_the_values(name, fn, specs):
    graph = fuse_patterns(traced(fn, *specs))
    names = op_names(graph)
    assert names.count("dot_product_attention") == 1
    assert "softmax" not in names and "matmul" not in names[names.index("dot_product_attention") :]
    args = arrays(specs)
    optimized = tj.function(fn)
    reference = tj.function(fn, optimize=False)
    np.testing.assert_allclose(
        optimized(*args).numpy(), reference(*args).numpy(), rtol=1e-5, atol=1e-6
    )
    report = optimized.get_concrete_function(*specs).pass_report()
    record = next(r for r in report if r.name == "fuse_patterns")
    assert record.made == (("dot_product_attention", 1),)
    assert "fuse_patterns" in str(report) and "1 dot_product_attention" in str(report)


def test_multi_head_pattern_reads_through_the_layout_transposes():
    graph = fuse_patterns(traced(multi_head, tj.TensorSpec((2, 5, 32)), tj.TensorSpec((32, 32))))
    assert op_names(graph) == ["matmul", "reshape", "dot_product_attention", "reshape"]


def test_pattern_leaves_a_differentiated_chain_alone():
    """In a training step the backward reads the chain's intermediates (the weights), so the
    chain stays (a fused op would compute them twice); the gradients are jax's."""
    specs = (B4, B4, B4, tj.TensorSpec((2, 1, 5, 5)))

    @tj.function
    def step(q, k, v, m):
        with tj.GradientTape() as tape:
            tape.watch([q, k, v])
            value = tj.sum(tj.square(attention_masked(q, k, v, m)))
        return tape.gradient(value, [q, k, v])

    assert "dot_product_attention" not in str(step.get_concrete_function(*specs).ir)

    def jax_loss(q, k, v, m):
        weights = jax.nn.softmax(q @ jnp.swapaxes(k, -1, -2) * 0.25 + m)
        return jnp.sum(jnp.square(weights @ v))

    args = arrays(specs)
    expected = jax.grad(jax_loss, argnums=(0, 1, 2))(*args)
    for got, want in zip(step(*args), expected, strict=True):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-4, atol=1e-5)


def near_miss_weights_returned(q, k, v):
    weights = tj.nn.softmax(tj.matmul(q, tj.transpose(k, (0, 1, 3, 2))) * 0.3)
    return tj.matmul(weights, v), weights


def near_miss_softmax_axis(q, k, v):
    return tj.nn.softmax(tj.matmul(q, tj.transpose(k, (0, 1, 3, 2))), axis=2) @ v


def near_miss_tensor_scale(q, k, v, scale):
    return tj.nn.softmax(tj.matmul(q, tj.transpose(k, (0, 1, 3, 2))) * scale) @ v


def near_miss_no_transpose(q, k, v):
    return tj.nn.softmax(tj.matmul(q, k)) @ v  # k is used as given: not q k^T


def near_miss_exp_not_softmax(q, k, v):
    return tj.exp(tj.matmul(q, tj.transpose(k, (0, 1, 3, 2)))) @ v


def near_miss_value_dim(q, k, v):
    return tj.nn.softmax(tj.matmul(q, tj.transpose(k, (0, 1, 3, 2)))) @ v  # v's dim is 3


def near_miss_float16(q, k, v):
    q, k, v = (tj.cast(x, "float16") for x in (q, k, v))
    return tj.nn.softmax(tj.matmul(q, tj.transpose(k, (0, 1, 3, 2)))) @ v


SQUARE = tj.TensorSpec((2, 4, 8, 8))
NEAR_MISSES = [
    ("weights_returned", near_miss_weights_returned, (B4, B4, B4)),
    ("softmax_axis", near_miss_softmax_axis, (B4, B4, B4)),
    ("tensor_scale", near_miss_tensor_scale, (B4, B4, B4, tj.TensorSpec(()))),
    ("no_transpose", near_miss_no_transpose, (SQUARE, SQUARE, SQUARE)),
    ("exp_not_softmax", near_miss_exp_not_softmax, (B4, B4, B4)),
    ("value_dim", near_miss_value_dim, (B4, B4, tj.TensorSpec((2, 4, 5, 3)))),
    ("float16", near_miss_float16, (B4, B4, B4)),
]


@pytest.mark.parametrize("name,fn,specs", NEAR_MISSES, ids=[n[0] for n in NEAR_MISSES])
def test_pattern_does_not_fire_on_near_misses(name, fn, specs):
    assert "dot_product_attention" not in op_names(fuse_patterns(traced(fn, *specs)))


# MultiHeadAttention ------------------------------------------------------------------------------
def keras_mha(layer, query, value, key=None, mask=None, causal=False):
    """Keras' MultiHeadAttention equations in float64 numpy, with the layer's weights."""
    key = value if key is None else key

    def project(part, x):
        out = np.einsum("btf,fnd->btnd", x, part.kernel.numpy().astype(np.float64))
        return out + part.bias.numpy() if part.bias is not None else out

    q = project(layer.query, query) / math.sqrt(layer.key_dim)
    k, v = project(layer.key, key), project(layer.value, value)
    scores = np.einsum("bsnd,btnd->bnts", k, q)
    keep = np.ones(scores.shape, bool)
    if mask is not None:
        keep = keep & mask[:, None].astype(bool)
    if causal:
        keep = keep & np.tril(np.ones(scores.shape[-2:], bool))
    scores = np.where(keep, scores, -1e9)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    heads = np.einsum("bnts,bsnd->btnd", weights, v)
    out = np.einsum("btnd,nde->bte", heads, layer.attention_output.kernel.numpy())
    out = out + layer.attention_output.bias.numpy() if layer.use_bias else out
    return out, weights


MHA_CASES = [
    ({}, {}),
    ({"value_dim": 3, "output_shape": 5}, {}),  # the explicit path (value_dim != key_dim)
    ({"use_bias": False}, {"causal": True}),
    ({}, {"mask": True}),
    ({}, {"mask": True, "causal": True, "scores": True}),
]


@pytest.mark.parametrize("options,call", MHA_CASES, ids=[str(i) for i in range(len(MHA_CASES))])
def test_multi_head_attention_matches_keras_equations(options, call):
    dims = {"query_dim": 6, "value_input_dim": 7, "key_input_dim": 8}
    layer = tj.nn.MultiHeadAttention(2, 4, generator=tj.random.Generator(3), **dims, **options)
    query, value, key = rand(3, 5, 6), rand(3, 5, 7, seed=1), rand(3, 5, 8, seed=2)
    mask = np.random.default_rng(0).random((3, 5, 5)) > 0.3 if call.get("mask") else None
    causal, scores = call.get("causal", False), call.get("scores", False)
    expected, weights = keras_mha(layer, query, value, key, mask, causal)

    def run(query, value, key):
        m = None if mask is None else tj.constant(mask)
        return layer(
            query, value, key, attention_mask=m, use_causal_mask=causal,
            return_attention_scores=scores,
        )  # fmt: skip

    for result in (run(query, value, key), tj.function(run)(query, value, key)):
        out = result[0] if scores else result
        np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-5)
        if scores:
            np.testing.assert_allclose(result[1].numpy(), weights, rtol=1e-5, atol=1e-6)
    assert layer.query.kernel.shape == (6, 2, 4) and layer.value.kernel.shape[0] == 7


def test_multi_head_attention_runs_the_heads_as_one_op_and_dropout_only_while_training():
    layer = tj.nn.MultiHeadAttention(
        2, 4, dropout=0.5, query_dim=6, generator=tj.random.Generator(0)
    )
    x = rand(2, 5, 6)
    infer = tj.function(lambda x: layer(x, x))
    assert "dot_product_attention" in str(infer.get_concrete_function(tj.TensorSpec((2, 5, 6))).ir)
    train = tj.function(lambda x: layer(x, x, training=True))
    np.testing.assert_allclose(infer(x).numpy(), keras_mha(layer, x, x)[0], rtol=1e-5, atol=1e-5)
    assert not np.allclose(train(x).numpy(), infer(x).numpy())


def test_multi_head_attention_errors():
    layer = tj.nn.MultiHeadAttention(2, 4, query_dim=6)
    with pytest.raises(tj.errors.ShapeError, match="was built for query dim 6"):
        layer(tj.ones((2, 5, 7)), tj.ones((2, 5, 6)))
    with pytest.raises(tj.errors.ShapeError, match=r"query must be \[batch, seq, dim\]"):
        layer(tj.ones((5, 6)), tj.ones((2, 5, 6)))
    with pytest.raises(ValueError, match="num_heads must be a positive int"):
        tj.nn.MultiHeadAttention(0, 4)


def test_multi_head_attention_trains_in_compiled_steps():
    """Copy the first token to every position: only attention can solve it."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 6, 8)).astype(np.float32)
    y = np.repeat(x[:, :1], 6, axis=1)
    layer = tj.nn.MultiHeadAttention(2, 8, generator=tj.random.Generator(1))
    layer(x[:1], x[:1])  # build
    optimizer = tj.optim.Adam(0.01)

    @tj.function
    def step(x, y):
        with tj.GradientTape() as tape:
            loss = tj.nn.mean_squared_error(layer(x, x), y)
        grads = tape.gradient(loss, layer.trainable_variables)
        optimizer.apply_gradients(zip(grads, layer.trainable_variables, strict=True))
        return loss

    first = float(step(x, y))
    for _ in range(80):
        loss = float(step(x, y))
    assert loss < 0.5 * first
