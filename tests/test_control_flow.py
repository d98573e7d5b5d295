"""Control-flow ops: cond, switch, while_loop, fori_loop, scan — eager vs traced, nested graphs
in the IR, errors naming branches/loop variables, variables in bodies, and gradients."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tracejit as tj
from tracejit.autodiff.tape import GradientError
from tracejit.errors import OpError


def both(fn, *args):
    """(eager result, compiled result, IR text) of ``fn`` on ``args``."""
    compiled = tj.function(fn)
    out_compiled = compiled(*args)
    out_eager = fn(*[tj.constant(a) if isinstance(a, np.ndarray) else a for a in args])
    return out_eager, out_compiled, str(compiled.get_concrete_function(*args).ir)


def flat(x):
    return [np.asarray(t) for t in jax.tree_util.tree_leaves(x)]


def assert_same(a, b):
    for u, v in zip(flat(a), flat(b)):
        np.testing.assert_allclose(u, v, rtol=1e-6)


def collatz_steps(n):
    def body(n, steps):
        return tj.where(n % 2 == 0, n // 2, 3 * n + 1), steps + 1

    return tj.while_loop(lambda n, steps: n != 1, body, (n, tj.constant(0)))[1]


def newton_sqrt(a):
    def body(x):
        return ((x + a / x) / 2.0,)

    return tj.while_loop(lambda x: tj.abs(x * x - a) > 1e-4, body, (a,))[0]


def test_cond_both_branches_one_node():
    def f(x):
        return tj.cond(x.sum() > 0, lambda v: v * 2, lambda v: -v, x)

    for x in (np.array([1.0, 2.0], np.float32), np.array([-1.0, -2.0], np.float32)):
        eager, compiled, ir = both(f, x)
        assert_same(eager, compiled)
    assert ir.count("= cond[") == 1 and "true_body:" in ir and "false_body:" in ir


def test_cond_captures_outer_values_and_returns_pytrees():
    scale = tj.constant(3.0)

    def f(x, y):
        return tj.cond(x > y, lambda: {"a": x * scale, "b": (y, x)}, lambda: {"a": y, "b": (x, y)})

    for args in ((np.float32(2), np.float32(1)), (np.float32(1), np.float32(2))):
        eager, compiled, _ = both(f, *args)
        assert_same(eager, compiled)


def test_switch():
    def f(i, x):
        return tj.switch(i, [lambda v: v + 1, lambda v: v * 10, lambda v: -v], x)

    x = np.array([1.0, 2.0], np.float32)
    for i in (0, 1, 2, 7):
        eager, compiled, ir = both(f, np.int32(i), x)
        assert_same(eager, compiled)
    assert "= switch[" in ir and "branches[2]:" in ir


def test_collatz_and_newton_loops():
    eager, compiled, ir = both(collatz_steps, np.int32(27))
    assert int(compiled) == int(eager) == 111
    assert ir.count("= while_loop[") == 1 and "cond_body:" in ir and "body:" in ir
    eager, compiled, _ = both(newton_sqrt, np.float32(2.0))
    np.testing.assert_allclose(float(compiled), np.sqrt(2.0), rtol=1e-4)


def test_while_loop_maximum_iterations():
    f = tj.function(lambda x: tj.while_loop(lambda x: x < 1e9, lambda x: (x * 2,), (x,), maximum_iterations=5)[0])
    assert float(f(tj.constant(1.0))) == 32.0


def test_fori_loop_python_and_tensor_bounds():
    body = lambda i, total: total + i * i  # noqa: E731
    assert int(tj.fori_loop(0, 5, body, tj.constant(0))) == 30
    assert int(tj.function(lambda: tj.fori_loop(0, 5, body, tj.constant(0)))()) == 30
    f = tj.function(lambda n: tj.fori_loop(tj.constant(0), n, body, tj.constant(0)))
    assert int(f(tj.constant(5))) == 30
    assert "= while_loop[" in str(f.get_concrete_function(tj.constant(5)).ir)


def test_scan_matches_jax():
    def cumulative(xs):
        return tj.scan(lambda c, x: (c + x, c * x), tj.constant(0.0), xs)

    xs = np.array([1.0, 2.0, 3.0, 4.0], np.float32)
    eager, compiled, ir = both(cumulative, xs)
    assert_same(eager, compiled)
    expected = jax.lax.scan(lambda c, x: (c + x, c * x), 0.0, xs)
    assert_same(compiled, expected)
    assert ir.count("= scan[") == 1
    reverse = tj.function(lambda xs: tj.scan(lambda c, x: (c + x, c), tj.constant(0.0), xs, reverse=True))
    assert_same(reverse(xs), jax.lax.scan(lambda c, x: (c + x, c), 0.0, xs, reverse=True))


def test_for_over_rows_with_scan_and_unknown_length():
    f = tj.function(lambda m: tj.scan(lambda c, row: (c + row.sum(), None), tj.constant(0.0), m)[0])
    cf = f.get_concrete_function(tj.TensorSpec((None, 3)))
    assert "length=none" in str(cf.ir)
    assert float(f(np.ones((4, 3), np.float32))) == 12.0


def test_branch_mismatch_errors_name_branches_and_line():
    x = tj.TensorSpec((3,))
    with pytest.raises(OpError, match=r"output 0 is f32\[3\] in the true branch but f32\[\] in the false branch; both must have the same shape and dtype\n  at test_control_flow.py:\d+"):
        tj.function(lambda v: tj.cond(v.sum() > 0, lambda: v, lambda: v.sum())).get_concrete_function(x)
    with pytest.raises(OpError, match=r"the true branch returns \(tensor, tensor\) but the false branch returns tensor"):
        tj.function(lambda v: tj.cond(v.sum() > 0, lambda: (v, v), lambda: v)).get_concrete_function(x)


def test_loop_variable_that_changes_shape_is_an_error():
    def grow(x):
        return tj.while_loop(lambda x: x.sum() < 10, lambda x: (tj.concatenate([x, x]),), (x,))

    with pytest.raises(OpError, match=r"loop variable 0 enters the loop as f32\[2\] but the body makes it f32\[4\].*shape_invariants"):
        tj.function(grow).get_concrete_function(tj.TensorSpec((2,)))
    with pytest.raises(OpError, match="dtype|i32"):
        tj.function(lambda n: tj.while_loop(lambda n: n < 3, lambda n: (n * 1.5,), (n,))).get_concrete_function(tj.constant(1))


def test_variables_read_and_assigned_in_bodies():
    total = tj.Variable(0.0)

    @tj.function
    def accumulate(xs, flag):
        def body(i):
            total.assign_add(xs[i])
            return (i + 1,)

        tj.while_loop(lambda i: i < xs.shape[0], body, (tj.constant(0),))
        tj.cond(flag, lambda: total.assign(total * 10.0), lambda: total)
        return total.value()

    assert float(accumulate(np.array([1.0, 2.0, 3.0], np.float32), tj.constant(False))) == 6.0
    assert float(accumulate(np.array([1.0, 2.0, 3.0], np.float32), tj.constant(True))) == 120.0
    assert float(total) == 120.0


def test_gradient_through_cond():
    @tj.function
    def grad(x):
        with tj.GradientTape() as tape:
            tape.watch(x)
            y = tj.cond(x.sum() > 0, lambda: (x**2).sum(), lambda: (x**3).sum())
        return tape.gradient(y, x)

    np.testing.assert_allclose(grad(tj.constant([1.0, 2.0])).numpy(), [2.0, 4.0])
    np.testing.assert_allclose(grad(tj.constant([-1.0, -2.0])).numpy(), [3.0, 12.0])


def test_gradient_through_scan_rnn_matches_jax():
    w = tj.Variable(np.array([[0.5, -0.2], [0.1, 0.4]], np.float32))
    xs = np.random.default_rng(0).normal(size=(6, 2)).astype(np.float32)

    def loss(xs):
        h, _ = tj.scan(lambda h, x: (tj.tanh(h @ w + x), None), tj.zeros((2,)), xs)
        return (h**2).sum()

    @tj.function
    def grad(xs):
        with tj.GradientTape() as tape:
            value = loss(xs)
        return tape.gradient(value, w)

    def jax_loss(wv):
        h, _ = jax.lax.scan(lambda h, x: (jnp.tanh(h @ wv + x), None), jnp.zeros(2), xs)
        return (h**2).sum()

    expected = np.asarray(jax.grad(jax_loss)(jnp.asarray(w.numpy())))
    np.testing.assert_allclose(grad(xs).numpy(), expected, rtol=1e-5, atol=1e-6)
    with tj.GradientTape() as tape:
        value = loss(tj.constant(xs))
    np.testing.assert_allclose(tape.gradient(value, w).numpy(), expected, rtol=1e-5, atol=1e-6)
    assert str(grad.get_concrete_function(xs).ir).count("= scan[") >= 2  # forward + backward


def test_gradient_through_while_needs_maximum_iterations():
    def run(x, bound):
        with tj.GradientTape() as tape:
            tape.watch(x)
            (y,) = tj.while_loop(lambda y: y < 100.0, lambda y: (y * 2.0,), (x,), maximum_iterations=bound)
        return y, tape.gradient(y, x)

    y, g = tj.function(lambda x: run(x, 10))(tj.constant(3.0))
    assert (float(y), float(g)) == (192.0, 64.0)
    with pytest.raises(GradientError, match="maximum_iterations"):
        tj.function(lambda x: run(x, None))(tj.constant(3.0))


def test_training_loop_inside_one_function_stops_early():
    w = tj.Variable(5.0)

    @tj.function
    def fit(target):
        def body(step):
            with tj.GradientTape() as tape:
                loss = (w - target) ** 2
            w.assign_sub(0.2 * tape.gradient(loss, w))
            return (step + 1,)

        (steps,) = tj.while_loop(lambda step: ((w - target) ** 2 > 1e-6) & (step < 1000), body, (tj.constant(0),))
        return steps

    steps = int(fit(tj.constant(1.0)))
    assert 0 < steps < 1000
    assert abs(float(w) - 1.0) < 1e-3


def test_loop_invariant_work_is_hoisted_out_of_loops():
    @tj.function
    def f(x, m):
        def body(i, acc):
            k = tj.exp(m @ m)  # depends only on the captured m: computed once, before the loop
            return i + 1, tj.tanh(acc @ k)
        return tj.while_loop(lambda i, acc: i < 5, body, (tj.constant(0), x))[1]

    x, m = np.ones((2, 3), np.float32), np.eye(3, dtype=np.float32) * 0.1
    cf = f.get_concrete_function(x, m)
    outer = [n.op.name for n in cf.ir.nodes]
    assert outer.index("matmul") < outer.index("while_loop") and "exp" in outer
    body = next(n for n in cf.ir.nodes if n.op.name == "while_loop").params["body"]
    assert [n.op.name for n in body.nodes].count("matmul") == 1  # only acc @ k is left inside
    plain = tj.function(f.python_function, optimize=False)
    np.testing.assert_allclose(f(x, m).numpy(), plain(x, m).numpy(), rtol=1e-6)
