"""tracejit and jax/numpy, both ways: tensors jax and numpy accept (zero-copy where it can be),
tracejit's own error for a numpy/jax call on a symbolic tensor, and ``cf.to_jax()``."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tracejit as tj
from tracejit.errors import ForeignFunctionError, TracerConversionError

X = np.array([[0.5, -1.0, 2.0], [3.0, 0.25, -0.75]], np.float32)
TOL = {"rtol": 1e-6, "atol": 1e-6}


def close(got: Any, want: Any, **tolerance: float) -> None:
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), **(tolerance or TOL))


# 1. Eager tensors that jax accepts --------------------------------------------------------------
def test_jnp_functions_take_eager_tensors() -> None:
    t = tj.constant(X)
    for fn in (jnp.sin, jnp.exp, jnp.tanh):
        out = fn(t)
        assert isinstance(out, jax.Array)
        close(out, fn(X))
    close(jnp.mean(t, axis=0), X.mean(axis=0))
    close(jnp.concatenate([t, t]), np.concatenate([X, X]))
    close(jnp.einsum("ij,kj->ik", t, t), X @ X.T)


def test_jnp_asarray_shares_the_buffer() -> None:
    t = tj.constant(X)
    shared = jnp.asarray(t)
    assert shared is t.value
    assert shared.unsafe_buffer_pointer() == t.value.unsafe_buffer_pointer()
    v = tj.Variable(X)
    assert jnp.asarray(v).unsafe_buffer_pointer() == v.value().value.unsafe_buffer_pointer()
    assert v.exposed  # handed to jax: the next compiled call must not donate it


def test_jax_jit_grad_vmap_take_eager_tensors() -> None:
    t = tj.constant(X)

    def loss(a: Any) -> Any:
        return jnp.sum(jnp.sin(a) * a)

    close(jax.jit(loss)(t), loss(X))
    grad = jax.grad(loss)(t)
    # jax gives the gradient the structure of its argument: a tracejit tensor.
    assert isinstance(grad, tj.Tensor)
    close(grad, np.cos(X) * X + np.sin(X))
    close(jax.vmap(jnp.sum)(t), X.sum(axis=1))
    # A jit-compiled function returning its argument gives a tensor back, too.
    assert isinstance(jax.jit(lambda a: a * 2)(t), tj.Tensor)


def test_jax_sees_a_variable_as_its_value() -> None:
    v = tj.Variable(X)
    close(jnp.sin(v), np.sin(X))
    close(jax.jit(lambda a: a + 1.0)(v), X + 1.0)
    grad = jax.grad(lambda a: jnp.sum(a * a))(v)
    assert isinstance(grad, tj.Tensor) and not isinstance(grad, tj.Variable)
    close(grad, 2 * X)


def test_jax_array_operators_keep_tracejit_tensors_and_tapes() -> None:
    # ``jax_array * t`` must stay a tracejit op, or a tape would silently lose it.
    t = tj.constant(X)
    scale = jnp.full((3,), 2.0, jnp.float32)
    with tj.GradientTape() as tape:
        tape.watch(t)
        y = tj.sum(scale * t) + tj.sum(scale + t)
    assert isinstance(scale * t, tj.Tensor) and isinstance(scale < t, tj.Tensor)
    close(tape.gradient(y, t), np.full_like(X, 3.0))


def test_tracejit_tree_walks_keep_tensors_whole() -> None:
    t = tj.constant(X)
    v = tj.Variable(X)
    # jax sees into tensors now; tracejit's tapes and tj.grad still treat them as leaves.
    assert jax.tree_util.tree_leaves({"t": t})[0] is t.value
    with tj.GradientTape() as tape:
        tape.watch({"t": t, "pair": [t]})
        y = tj.sum(t * v)
    grads = tape.gradient(y, {"t": t, "v": v})
    close(grads["t"], X)
    close(grads["v"], X)
    close(tj.grad(lambda p: tj.sum(p["a"] ** 2))({"a": t})["a"], 2 * X)
    # A tree_map over tensors gives tensors back.
    mapped = jax.tree_util.tree_map(lambda a: a * 2, {"t": t})
    assert isinstance(mapped["t"], tj.Tensor)
    close(mapped["t"], 2 * X)


def test_tracejit_ops_inside_jax_jit_keep_working() -> None:
    # A tensor passed through jax.jit reaches the function as a tensor (holding jax's tracer).
    t = tj.constant(X)
    close(jax.jit(lambda a: tj.sum(tj.exp(a)).value)(t), np.exp(X).sum(), rtol=1e-5)


# 1b. Eager numpy calls --------------------------------------------------------------------------
def test_numpy_functions_on_eager_tensors_return_numpy() -> None:
    t = tj.constant(X)
    for got, want in [
        (np.sin(t), np.sin(X)),
        (np.mean(t), X.mean()),
        (np.concatenate([t, t]), np.concatenate([X, X])),
        (np.linalg.norm(t), np.linalg.norm(X)),
        (np.add.reduce(t, axis=0), X.sum(axis=0)),
        (np.where(t > 0, t, 0.0), np.where(X > 0, X, 0.0)),
    ]:
        assert isinstance(got, (np.ndarray, np.generic)), type(got)
        close(got, want)
    v = tj.Variable(X)
    assert isinstance(np.sin(v), np.ndarray)
    close(np.mean(v, axis=1), X.mean(axis=1))


def test_numpy_operators_stay_tracejit_ops() -> None:
    t = tj.constant(X)
    for result in (np.ones(3, np.float32) + t, X * t, np.float32(2.0) * t, X @ t.T, X < t):
        assert isinstance(result, tj.Tensor)
    close(X - t, np.zeros_like(X))
    buffer = np.zeros_like(X)
    buffer += t  # numpy's in-place operator writes into the numpy array, as numpy does
    close(buffer, X)


def test_array_copy_semantics_of_numpy_2() -> None:
    t = tj.constant(X)
    shared = np.asarray(t, copy=False)  # the host is the device here: no copy is needed
    assert shared.ctypes.data == t.value.unsafe_buffer_pointer()
    fresh = np.array(t, copy=True)
    assert fresh.ctypes.data != t.value.unsafe_buffer_pointer() and fresh.flags.writeable
    fresh[0, 0] = 100.0
    assert float(t[0, 0]) == 0.5
    assert np.asarray(t, dtype=np.float64).dtype == np.float64
    with pytest.raises(ValueError, match=r"float32 to float64 needs a copy"):
        np.asarray(t, dtype=np.float64, copy=False)
    v = tj.Variable(X)
    assert np.asarray(v, copy=False).ctypes.data == v.value().value.unsafe_buffer_pointer()


# 2. Inside tracing: tracejit's own error, naming the op to use ------------------------------
@pytest.mark.parametrize(
    ("call", "written", "fix"),
    [
        (lambda x: np.sin(x), "np.sin", "use tj.sin(x)"),
        (lambda x: np.mean(x, axis=0), "np.mean", "use tj.mean(x)"),
        (lambda x: np.concatenate([x, x]), "np.concatenate", "use tj.concatenate(x)"),
        (lambda x: np.arctan2(x, x), "np.arctan2", "use tj.atan2(x)"),
        (lambda x: np.add.reduce(x), "np.add.reduce", "use tj.sum(x)"),
        (lambda x: np.median(x), "np.median", "tracejit has no op named median"),
        (lambda x: jnp.sin(x), "jnp.sin", "use tj.sin(x)"),
        (lambda x: jnp.mean(x), "jnp.mean", "use tj.mean(x)"),
        (lambda x: jnp.concatenate([x, x]), "jnp.concatenate", "use tj.concatenate(x)"),
        (lambda x: jnp.asarray(x), "jnp.asarray", "use tj.asarray(x)"),
        (lambda x: jax.nn.softmax(x), "jax.nn.softmax", "use tj.nn.softmax(x)"),
        (lambda x: jnp.median(x), "jnp.median", "tj.jax_function(jnp.median)(x)"),
        (lambda x: jnp.linalg.norm(x), "jnp.linalg.norm", "tj.jax_function(jnp.linalg.norm)"),
    ],
)
def test_numpy_and_jax_calls_on_symbolic_tensors_name_the_fix(
    call: Any, written: str, fix: str
) -> None:
    @tj.function
    def f(x: Any) -> Any:
        return call(x)

    with pytest.raises(ForeignFunctionError) as info:
        f(tj.constant(X))
    message = str(info.value)
    assert message.startswith(f"{written}() got a symbolic tensor"), message
    assert info.value.function == written
    assert fix in message, message
    # ...at the user's line: the lambda in this file.
    assert info.value.loc is not None and info.value.loc.file == __file__
    assert "return call(x)" in message or "lambda x" in message


def test_a_jitted_user_function_on_a_symbolic_tensor_points_at_jax_function() -> None:
    @jax.jit
    def shifted(a: Any) -> Any:
        return a + 1.0

    @tj.function
    def f(x: Any) -> Any:
        return shifted(x) * 2.0

    with pytest.raises(ForeignFunctionError, match=r"tj.jax_function\(shifted\)") as info:
        f(tj.constant(X))
    assert info.value.loc is not None and info.value.loc.line > 0
    assert "return shifted(x) * 2.0" in str(info.value)


def test_variables_inside_tracing_get_the_same_errors() -> None:
    v = tj.Variable(X)

    @tj.function
    def uses_numpy() -> Any:
        return np.sin(v)

    @tj.function
    def uses_jnp() -> Any:
        return jnp.sin(v)

    @tj.function
    def converts() -> Any:
        return np.asarray(v)

    with pytest.raises(ForeignFunctionError, match=r"np.sin\(\) .* use tj.sin\(x\)"):
        uses_numpy()
    with pytest.raises(ForeignFunctionError, match=r"jnp.sin\(\) .* use tj.sin\(x\)"):
        uses_jnp()
    with pytest.raises(TracerConversionError, match=r"variable '.*' inside a tj.function"):
        converts()


def test_operators_with_arrays_still_trace() -> None:
    @tj.function
    def f(x: Any) -> Any:
        return np.ones(3, np.float32) * x + jnp.ones(3) - np.float32(1.0) + np.add(x, 1.0)

    close(f(tj.constant(X)), 2 * X + 1.0)
    # tree_map over symbolic tensors (jax-style code in a tj.function) stays symbolic.
    g = tj.function(lambda p: jax.tree_util.tree_map(lambda a: tj.exp(a), p))
    close(g({"a": tj.constant(X)})["a"], np.exp(X), rtol=1e-6)
    w = tj.Variable(X)
    h = tj.function(lambda: jax.tree_util.tree_map(lambda a: a * 2.0, {"w": w}))
    close(h()["w"], 2 * X)


# 3. cf.to_jax(): compiled functions as pure jax functions ----------------------------------------
def _model() -> tuple[tj.Variable, tj.Variable, Any]:
    w = tj.Variable(np.array([[0.5, -0.25], [1.0, 0.75], [-0.5, 0.1]], np.float32), name="w")
    b = tj.Variable(np.array([0.1, -0.2], np.float32), name="b")

    @tj.function
    def forward(x: Any) -> Any:
        return tj.sum(tj.tanh(x @ w + b) ** 2)

    return w, b, forward


def test_to_jax_jit_equals_the_compiled_call() -> None:
    _, _, forward = _model()
    fn, state = forward.to_jax(tj.constant(X))
    assert fn.state_names == ("w", "b")
    new_state, out = jax.jit(fn)(state, X)
    close(out, forward(tj.constant(X)))
    for old, new in zip(state, new_state):  # nothing assigned: the state comes back unchanged
        close(new, old)


def test_to_jax_grad_equals_tj_grad() -> None:
    w, b, forward = _model()
    fn, state = forward.get_concrete_function(tj.constant(X)).to_jax()
    jax_grads = jax.grad(lambda s: fn(s, X)[1])(state)
    with tj.GradientTape() as tape:
        loss = forward(tj.constant(X))
    tj_grads = tape.gradient(loss, [w, b])
    for got, want in zip(jax_grads, tj_grads):
        close(got, want, rtol=1e-5, atol=1e-6)
    x_grad = jax.grad(lambda x: fn(state, x)[1])(jnp.asarray(X))
    close(x_grad, tj.grad(lambda x: forward(x))(tj.constant(X)), rtol=1e-5, atol=1e-6)


def test_to_jax_vmap_equals_a_loop() -> None:
    w = tj.Variable(np.array([[1.0, 2.0], [-1.0, 0.5], [0.25, 0.0]], np.float32))

    @tj.function
    def predict(x: Any) -> Any:
        return {"logits": x @ w, "norm": tj.sqrt(tj.sum(x * x))}

    fn, state = predict.to_jax(tj.zeros((3,)))
    batch = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    _, batched = jax.vmap(fn, in_axes=(None, 0))(state, batch)
    for i, row in enumerate(batch):
        one = predict(tj.constant(row))
        close(batched["logits"][i], one["logits"])
        close(batched["norm"][i], one["norm"])


def test_to_jax_scan_over_a_train_step_equals_compiled_steps() -> None:
    data = np.random.default_rng(1).normal(size=(6, 4, 3)).astype(np.float32)
    targets = np.random.default_rng(2).normal(size=(6, 4, 2)).astype(np.float32)

    def make() -> tuple[Any, list[tj.Variable]]:
        w = tj.Variable(np.full((3, 2), 0.1, np.float32), name="w")
        b = tj.Variable(np.zeros((2,), np.float32), name="b")
        opt = tj.optim.SGD(0.1, momentum=0.9)

        @tj.function
        def step(x: Any, y: Any) -> Any:
            with tj.GradientTape() as tape:
                loss = tj.mean((x @ w + b - y) ** 2)
            opt.apply_gradients(zip(tape.gradient(loss, [w, b]), [w, b]))
            return loss

        return step, [w, b]

    step, params = make()
    fn, state = step.to_jax(data[0], targets[0])
    assert len(state) > 2  # the optimizer's momentum slots and step count are state too

    def body(carry: Any, batch: Any) -> Any:
        return fn(carry, *batch)

    final, losses = jax.jit(lambda s: jax.lax.scan(body, s, (data, targets)))(state)
    want = [float(step(data[i], targets[i])) for i in range(len(data))]
    close(losses, want, rtol=1e-5, atol=1e-6)
    by_name = dict(zip(fn.state_names, final))
    for variable in params:
        close(by_name[variable.name], variable.numpy(), rtol=1e-5, atol=1e-6)


def test_to_jax_does_not_touch_the_variables_and_checks_state() -> None:
    counter = tj.Variable(0, name="counter")

    @tj.function
    def tick(x: Any) -> Any:
        counter.assign_add(1)
        return x + tj.cast(counter, tj.float32)

    fn, state = tick.to_jax(tj.constant(1.0))
    new_state, out = fn(state, jnp.float32(1.0))
    assert int(new_state[0]) == 1 and float(out) == 2.0
    assert int(counter.numpy()) == 0
    assert new_state[0].dtype == jnp.int32 and not new_state[0].weak_type
    with pytest.raises(ValueError, match=r"state must be a tuple of 1 arrays.*counter"):
        fn((), jnp.float32(1.0))
    with pytest.raises(ValueError, match=r"state of variable 'counter' must be i32\[\]"):
        fn((jnp.zeros((2,), jnp.int32),), jnp.float32(1.0))
    with pytest.raises(TypeError, match=r"argument 'x'"):
        fn(state, jnp.zeros((3,)))


def test_to_jax_grad_uses_custom_gradient_rules() -> None:
    # jax differentiates the lowered graph; a tj.custom_gradient node must give the user's rule
    # (here: a clipped gradient), not the derivative of its forward body.
    @tj.custom_gradient
    def clipped(x: Any) -> Any:
        def rule(dy: Any) -> Any:
            return tj.clip(dy, -0.5, 0.5)

        return x * 1.0, rule

    f = tj.function(lambda x: tj.sum(clipped(x) * 3.0) + tj.sum(x * x))
    x = tj.constant([1.0, -2.0])
    fn, state = f.to_jax(x)
    want = tj.grad(f)(x)
    close(want, [0.5 + 2.0, 0.5 - 4.0])
    close(jax.grad(lambda a: fn(state, a)[1])(jnp.asarray([1.0, -2.0])), want)
    close(jax.jit(jax.grad(lambda a: fn(state, a)[1]))(jnp.asarray([1.0, -2.0])), want)
