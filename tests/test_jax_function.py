"""``tj.jax_function``: jax functions as one tracejit op (``jax_call``), eagerly and traced.

jax itself is the oracle: values against calling the function on numpy inputs, gradients against
``jax.grad``/``jax.vjp`` of the same jax program. The per-op table (tests/opinfo_jax_call.py)
adds the generic eager/traced/inference/gradient checks.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tracejit as tj
from tracejit.errors import OpError, OpTypeError

RNG = np.random.default_rng(15)
X = RNG.standard_normal((3, 4)).astype(np.float32)
Y = RNG.standard_normal((4,)).astype(np.float32)

logsumexp = tj.jax_function(jax.scipy.special.logsumexp)


@tj.jax_function
def mixed(x, pair, *, scale):
    """A pytree in (a tuple), a pytree out (a dict holding a tuple), a static keyword."""
    a, b = pair
    return {"prod": (jnp.tanh(x) * a, jnp.sum(b) * scale), "count": jnp.argmax(x, axis=-1)}


def reference_mixed(x, pair, *, scale):
    return mixed.fn(jnp.asarray(x), tuple(jnp.asarray(p) for p in pair), scale=scale)


def nodes(concrete, op="jax_call"):
    return [n for n in concrete.ir.nodes if n.op.name == op]


def close(actual, expected, rtol=1e-5, atol=1e-6):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=rtol, atol=atol)


# Values: eager, traced, reference ----------------------------------------------------------------
def test_eager_runs_the_function_and_returns_tensors():
    out = logsumexp(tj.constant(X), axis=1)
    assert isinstance(out, tj.Tensor) and out.dtype == np.float32
    close(out, jax.scipy.special.logsumexp(X, axis=1))


def test_eager_and_traced_match_jax_with_pytrees_in_and_out():
    expected = reference_mixed(X, (Y, X), scale=2.0)
    eager = mixed(tj.constant(X), (tj.constant(Y), tj.constant(X)), scale=2.0)
    traced_fn = tj.function(lambda x, y: mixed(x, (y, x), scale=2.0))
    traced = traced_fn(tj.constant(X), tj.constant(Y))
    for got in (eager, traced):
        assert set(got) == {"prod", "count"} and isinstance(got["prod"], tuple)
        close(got["prod"][0], expected["prod"][0])
        close(got["prod"][1], expected["prod"][1])
        assert got["count"].dtype == np.int32
        np.testing.assert_array_equal(got["count"].numpy(), expected["count"])


def test_traced_is_one_node_named_after_the_function():
    f = tj.function(lambda x: logsumexp(x, axis=1) * 2.0)
    concrete = f.get_concrete_function(tj.constant(X))
    (node,) = nodes(concrete)
    text = str(concrete.ir)
    assert "jax_call[fn=logsumexp(axis=1)]" in text, text
    assert node.outputs[0].aval == tj.AVal((3,), np.dtype(np.float32))


def test_unknown_dims_become_symbolic_for_eval_shape():
    f = tj.function(lambda x: logsumexp(x, axis=1))
    concrete = f.get_concrete_function(tj.TensorSpec([None, 4]))
    assert concrete.output_avals[0].shape == (None,)
    close(concrete(tj.constant(X)), jax.scipy.special.logsumexp(X, axis=1))


def test_library_functions_from_jax_nn_and_jax_scipy():
    softmax = tj.jax_function(jax.nn.softmax)
    erfc = tj.jax_function(jax.scipy.special.erfc)
    f = tj.function(lambda x: softmax(x, axis=-1) + erfc(x))
    close(f(tj.constant(X)), jax.nn.softmax(X, axis=-1) + jax.scipy.special.erfc(X))


def test_python_number_and_numpy_operands():
    axpy = tj.jax_function(lambda a, x, y: a * x + y, name="axpy")
    close(axpy(2.0, tj.constant(Y), Y), 2.0 * Y + Y)
    f = tj.function(lambda x: axpy(3.0, x, Y))
    close(f(tj.constant(Y)), 3.0 * Y + Y)
    assert "jax_call[fn=axpy]" in str(f.get_concrete_function(tj.constant(Y)).ir)


# Gradients vs jax.grad ---------------------------------------------------------------------------
def loss_jax(x, y):
    out = mixed.fn(x, (y, x), scale=3.0)
    return jnp.sum(out["prod"][0] ** 2) + out["prod"][1] ** 2


def loss_tj(x, y):
    out = mixed(x, (y, x), scale=3.0)
    return tj.sum(out["prod"][0] ** 2) + out["prod"][1] ** 2


EXPECTED = jax.grad(loss_jax, argnums=(0, 1))(X, Y)


def test_eager_tape_gradients_match_jax_grad():
    x, y = tj.constant(X), tj.constant(Y)
    with tj.GradientTape() as tape:
        tape.watch([x, y])
        loss = loss_tj(x, y)
    gx, gy = tape.gradient(loss, [x, y])
    close(gx, EXPECTED[0], rtol=1e-5, atol=1e-5)
    close(gy, EXPECTED[1], rtol=1e-5, atol=1e-5)


def test_tape_inside_function_matches_jax_grad_and_the_vjp_is_one_node():
    @tj.function
    def step(x, y):
        with tj.GradientTape() as tape:
            tape.watch([x, y])
            loss = loss_tj(x, y)
        return tape.gradient(loss, [x, y])

    for spec in ([tj.constant(X), tj.constant(Y)], [tj.TensorSpec([None, 4]), tj.constant(Y)]):
        concrete = step.get_concrete_function(*spec)
        gx, gy = concrete(tj.constant(X), tj.constant(Y))
        close(gx, EXPECTED[0], rtol=1e-5, atol=1e-5)
        close(gy, EXPECTED[1], rtol=1e-5, atol=1e-5)
        names = [str(n.params["fn"]) for n in nodes(concrete)]
        assert names == ["mixed(scale=3.0)", "vjp(mixed(scale=3.0))"], names


def test_tape_through_a_compiled_call_matches_jax_grad():
    compiled = tj.function(loss_tj)
    x, y = tj.constant(X), tj.constant(Y)
    with tj.GradientTape() as tape:
        tape.watch([x, y])
        loss = compiled(x, y)
    gx, gy = tape.gradient(loss, [x, y])
    close(gx, EXPECTED[0], rtol=1e-5, atol=1e-5)
    close(gy, EXPECTED[1], rtol=1e-5, atol=1e-5)


def test_tj_grad_matches_jax_grad():
    gx, gy = tj.grad(loss_tj, argnums=(0, 1))(tj.constant(X), tj.constant(Y))
    close(gx, EXPECTED[0], rtol=1e-5, atol=1e-5)
    close(gy, EXPECTED[1], rtol=1e-5, atol=1e-5)


def test_second_order_gradients_match_jax():
    def inner_jax(x):
        return jnp.sum(jax.grad(lambda a: jnp.sum(jax.scipy.special.logsumexp(a, 1) ** 2))(x) ** 2)

    x = tj.constant(X)
    with tj.GradientTape() as outer:
        outer.watch(x)
        with tj.GradientTape() as inner:
            inner.watch(x)
            loss = tj.sum(logsumexp(x, axis=1) ** 2)
        g = inner.gradient(loss, x)
        z = tj.sum(g * g)
    close(outer.gradient(z, x), jax.grad(inner_jax)(X), rtol=1e-4, atol=1e-5)


def test_integer_inputs_and_outputs_take_no_gradient():
    @tj.jax_function
    def scaled(x, n):
        return x * n, n + 1

    x, n = tj.constant(Y), tj.constant(3)
    with tj.GradientTape(persistent=True) as tape:
        tape.watch([x, n])
        a, b = scaled(x, n)
        loss = tj.sum(a)
    gx, gn = tape.gradient(loss, [x, n])
    close(gx, np.full(4, 3.0, np.float32))
    assert gn is None
    assert tape.gradient(b, x) is None


# Passes: CSE, DCE, folding -----------------------------------------------------------------------
def test_cse_merges_two_identical_calls_but_not_different_kwargs():
    f = tj.function(lambda x: logsumexp(x, axis=1) + logsumexp(x, axis=1))
    assert len(nodes(f.get_concrete_function(tj.constant(X)))) == 1
    g = tj.function(lambda x: logsumexp(x, axis=1) + logsumexp(x, axis=0)[:3])
    assert len(nodes(g.get_concrete_function(tj.constant(X)))) == 2


def test_dce_removes_an_unused_call():
    f = tj.function(lambda x: (logsumexp(x, axis=1), x + 1.0)[1])
    assert nodes(f.get_concrete_function(tj.constant(X))) == []


def test_folding_only_when_marked_foldable():
    plain = tj.jax_function(jnp.cos)
    foldable = tj.jax_function(jnp.cos, foldable=True)
    f = tj.function(lambda x: x + plain(tj.constant(Y)))
    g = tj.function(lambda x: x + foldable(tj.constant(Y)))
    assert len(nodes(f.get_concrete_function(tj.constant(Y)))) == 1
    concrete = g.get_concrete_function(tj.constant(Y))
    assert nodes(concrete, "jax_call_foldable") == []
    close(g(tj.constant(Y)), Y + np.cos(Y))


# Saving and exporting ----------------------------------------------------------------------------
def test_saving_refuses_with_the_function_name_and_line(tmp_path):
    f = tj.function(lambda x: logsumexp(x, axis=1), input_signature=[tj.TensorSpec([None, 4])])
    with pytest.raises(TypeError) as info:
        tj.saved.save(f, str(tmp_path / "model"))
    message = str(info.value)
    assert "jax function logsumexp(axis=1)" in message
    assert "test_jax_function.py" in message and "tj.saved.export" in message
    assert not (tmp_path / "model").exists()


def test_export_carries_the_function():
    f = tj.function(lambda x: logsumexp(x, axis=1))
    blob = tj.saved.export(f.get_concrete_function(tj.constant(X)))
    (out,), _ = jax.export.deserialize(blob).call(X, {})
    close(out, jax.scipy.special.logsumexp(X, axis=1))


# Errors ------------------------------------------------------------------------------------------
def test_non_array_output_is_a_clear_error_at_the_users_line():
    bad = tj.jax_function(lambda x: (x, "done"), name="bad")
    with pytest.raises(OpError) as info:
        bad(tj.constant(Y))
    message = str(info.value)
    assert "bad failed on inputs f32[4]" in message and "not a valid JAX type" in message
    assert "test_jax_function.py" in message
    f = tj.function(lambda x: bad(x))
    with pytest.raises(OpError, match="bad failed on inputs f32"):
        f(tj.constant(Y))


def test_errors_inside_the_function_name_it_and_the_inputs():
    mismatch = tj.jax_function(lambda a, b: a @ b, name="matmul_jax")
    with pytest.raises(OpError, match=r"matmul_jax failed on inputs f32\[4\], f32\[3,4\]"):
        mismatch(tj.constant(Y), tj.constant(X))


def test_bad_arguments_are_clear_errors():
    with pytest.raises(OpTypeError, match="positional argument leaf 1 is a str"):
        logsumexp(tj.constant(X), "rows")
    with pytest.raises(OpTypeError, match="keyword argument b=.* not hashable"):
        logsumexp(tj.constant(X), b=[1.0, 2.0])
    with pytest.raises(OpTypeError, match="keyword argument b holds a tensor"):
        logsumexp(tj.constant(X), b=tj.constant(X))
    with pytest.raises(TypeError, match="needs a callable"):
        tj.jax_function(3)


def test_decorator_forms_keep_the_name():
    @tj.jax_function(name="my_op")
    def f(x):
        return x * 2

    assert repr(f) == "<tj.jax_function my_op>" and f.__name__ == "f"
    g = tj.function(lambda x: f(x))
    assert "jax_call[fn=my_op]" in str(g.get_concrete_function(tj.constant(Y)).ir)


def test_variables_as_arguments_are_read_and_differentiated():
    total_sin = tj.jax_function(lambda a: jnp.sum(jnp.sin(a)), name="total_sin")
    w = tj.Variable([1.0, 2.0])

    def gradient():
        with tj.GradientTape() as tape:
            y = total_sin(w)
        return tape.gradient(y, w)

    close(gradient(), np.cos([1.0, 2.0]))
    close(tj.function(gradient)(), np.cos([1.0, 2.0]))
