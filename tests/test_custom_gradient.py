"""``tj.custom_gradient``: the custom rule wins however the gradient is computed.

Every path is compared with the eager custom-gradient result and with ``jax.custom_vjp`` (the
reference): an eager tape, a tape inside a ``tj.function``, an eager tape *through* a compiled
call (the call's VJP replays its IR), nested compiled calls, control-flow bodies (cond, scan,
while_loop, AutoGraph ``if``/``for``), ``tj.grad``/``tj.value_and_grad``, optimization passes,
saved functions, higher-order gradients, and variables (``grad_fn(dy, variables=...)``).
"""

from __future__ import annotations

import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tracejit as tj
from tracejit.autodiff.tape import GradientError
from tracejit.ir.verify import verify

RTOL, ATOL = 1e-5, 1e-6  # float32: a few ops' rounding


def close(got: Any, want: Any) -> None:
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=RTOL, atol=ATOL)


# The issue's example ---------------------------------------------------------------------------
@tj.custom_gradient
def clip_grad(x):
    return x * 1.0, lambda dy: tj.clip(dy, -0.5, 0.5)


def test_the_issue_example_through_a_compiled_call() -> None:
    @tj.function
    def f(x):
        return clip_grad(x) * 2.0

    x = tj.Variable(3.0)
    with tj.GradientTape() as t:
        y = f(x)
    assert float(t.gradient(y, x)) == 0.5  # was 2.0: the body's own derivative
    with tj.GradientTape() as t:  # eager gives the same
        y = clip_grad(x) * 2.0
    assert float(t.gradient(y, x)) == 0.5


# A rule that depends on forward values (residuals) and differs from the true derivative ---------
@tj.custom_gradient
def scaled(x, y):
    """sin(x) * y, with the gradient (dz * clip(cos(x) * y), dz * sin(x) / 2)."""
    s = tj.sin(x)

    def grad_fn(dz):
        return dz * tj.clip(tj.cos(x) * y, -0.5, 0.5), dz * s * 0.5

    return s * y, grad_fn


@jax.custom_vjp
def scaled_ref(x, y):
    return jnp.sin(x) * y


def _scaled_fwd(x, y):
    return jnp.sin(x) * y, (x, y, jnp.sin(x))


def _scaled_bwd(residuals, dz):
    x, y, s = residuals
    return dz * jnp.clip(jnp.cos(x) * y, -0.5, 0.5), dz * s * 0.5


scaled_ref.defvjp(_scaled_fwd, _scaled_bwd)

X = np.array([0.3, -1.2, 2.0], np.float32)
Y = np.array([1.5, 0.7, -2.5], np.float32)


def loss(x, y):
    return tj.sum(scaled(x * 2.0, y) ** 2)


def loss_ref(x, y):
    return jnp.sum(scaled_ref(x * 2.0, y) ** 2)


WANT = jax.grad(loss_ref, argnums=(0, 1))(X, Y)


def test_reference_differs_from_the_plain_derivative() -> None:
    plain = jax.grad(lambda x, y: jnp.sum((jnp.sin(x * 2.0) * y) ** 2), argnums=(0, 1))(X, Y)
    assert not np.allclose(plain[0], WANT[0])  # so a test passing cannot be an accident


def _tape_gradient(fn: Any) -> tuple[Any, Any]:
    x, y = tj.constant(X), tj.constant(Y)
    with tj.GradientTape() as tape:
        tape.watch([x, y])
        z = fn(x, y)
    return tuple(tape.gradient(z, [x, y]))


def test_eager_tape() -> None:
    for got, want in zip(_tape_gradient(loss), WANT):
        close(got, want)


def test_tape_inside_a_traced_function() -> None:
    @tj.function
    def grads(x, y):
        with tj.GradientTape() as tape:
            tape.watch([x, y])
            z = loss(x, y)
        return tape.gradient(z, [x, y])

    for got, want in zip(grads(X, Y), WANT):
        close(got, want)


@pytest.mark.parametrize("optimize", [True, False])
def test_eager_tape_through_a_compiled_call(optimize: bool) -> None:
    compiled = tj.function(loss, optimize=optimize)
    for got, want in zip(_tape_gradient(compiled), WANT):
        close(got, want)
    ir = compiled.get_concrete_function(X, Y).ir
    verify(ir)
    assert [n.op.name for n in ir.nodes].count("custom_gradient") == 1


def test_nested_compiled_calls() -> None:
    inner = tj.function(lambda x, y: scaled(x * 2.0, y))
    outer = tj.function(lambda x, y: tj.sum(inner(x, y) ** 2))
    for got, want in zip(_tape_gradient(outer), WANT):
        close(got, want)

    @tj.function
    def grads(x, y):  # a tape inside the outer function, the custom rule two calls down
        with tj.GradientTape() as tape:
            tape.watch([x, y])
            z = outer(x, y)
        return tape.gradient(z, [x, y])

    for got, want in zip(grads(X, Y), WANT):
        close(got, want)


def test_grad_and_value_and_grad() -> None:
    want_value = loss_ref(X, Y)
    for fn in (tj.grad(loss, argnums=(0, 1)), tj.function(tj.grad(loss, argnums=(0, 1)))):
        for got, want in zip(fn(tj.constant(X), tj.constant(Y)), WANT):
            close(got, want)
    compiled = tj.function(loss)
    value, got = tj.value_and_grad(compiled, argnums=(0, 1))(tj.constant(X), tj.constant(Y))
    close(value, want_value)
    for g, want in zip(got, WANT):
        close(g, want)


def test_passes_keep_the_op_and_its_bodies() -> None:
    """CSE/DCE/fold/simplify/fusion run inside both bodies and never drop the rule."""

    @tj.custom_gradient
    def noisy(x):
        e = tj.exp(x) + tj.exp(x)  # a duplicate for CSE, fusible elementwise ops
        return e * 1.0 + 0.0, lambda dy: (dy * e * 0.0 + dy * 3.0) * 1.0

    f = tj.function(lambda x: tj.sum(noisy(x) * tj.constant(2.0) * tj.constant(1.0)))
    x = tj.constant(X)
    with tj.GradientTape() as tape:
        tape.watch(x)
        y = f(x)
    close(tape.gradient(y, x), np.full(3, 6.0))
    cf = f.get_concrete_function(x)
    verify(cf.ir)
    (node,) = [n for n in cf.ir.nodes if n.op.name == "custom_gradient"]
    assert len(node.params["body"].nodes) < len(cf.ir_unoptimized.nodes[0].params["body"].nodes)
    close(f(x), np.sum(2 * np.exp(X) * 2.0))


def test_the_ir_prints_both_bodies() -> None:
    f = tj.function(lambda x: clip_grad(x) * 2.0)
    text = f.get_concrete_function(tj.TensorSpec(())).ir_unoptimized.format(source=False)
    assert "custom_gradient[body={clip_grad}, grad={clip_grad_grad}, grad_of=(0,)" in text
    assert "    body:\n" in text and "    grad:\n" in text
    assert "clip %" in text.split("grad:")[1]


# Control flow ----------------------------------------------------------------------------------
def _check_cases(fn: Any, ref: Any, x: np.ndarray) -> None:
    """fn's gradient: eager tape, tape in a trace, eager tape through the compiled call."""
    want = jax.grad(ref)(x)

    def eager(v: Any) -> Any:
        t = tj.constant(v) if isinstance(v, np.ndarray) else v
        with tj.GradientTape() as tape:
            tape.watch(t)
            y = fn(t)
        return tape.gradient(y, t)

    close(eager(x), want)
    close(_through(tj.function(fn), x), want)
    close(tj.function(eager)(x), want)
    close(tj.function(tj.grad(fn))(x), want)


def _through(compiled: Any, x: np.ndarray) -> Any:
    t = tj.constant(x)
    with tj.GradientTape() as tape:
        tape.watch(t)
        y = compiled(t)
    return tape.gradient(y, t)


def _clip_ref(dy: Any) -> Any:
    return jnp.clip(dy, -0.5, 0.5)


@jax.custom_vjp
def clip_grad_ref(x):
    return x * 1.0


clip_grad_ref.defvjp(lambda x: (x * 1.0, None), lambda _, dy: (_clip_ref(dy),))


def test_inside_cond_branches() -> None:
    def fn(x):
        return tj.cond(tj.sum(x) > 0, lambda v: tj.sum(clip_grad(v) * 3.0), lambda v: tj.sum(v), x)

    def ref(x):
        return jax.lax.cond(jnp.sum(x) > 0, lambda v: jnp.sum(clip_grad_ref(v) * 3.0), jnp.sum, x)

    _check_cases(fn, ref, np.array([1.0, 2.0], np.float32))


def test_inside_scan_and_while_bodies() -> None:
    def scan_fn(x):
        carry, _ = tj.scan(lambda c, _: (clip_grad(c) * 2.0, None), x, None, length=3)
        return tj.sum(carry)

    def scan_ref(x):
        carry, _ = jax.lax.scan(lambda c, _: (clip_grad_ref(c) * 2.0, None), x, None, length=3)
        return jnp.sum(carry)

    _check_cases(scan_fn, scan_ref, np.array([0.5, -1.0], np.float32))

    def while_fn(x):
        (out,) = tj.while_loop(
            lambda v: tj.sum(v) < 100.0, lambda v: (clip_grad(v) * 2.0,), (x,), maximum_iterations=4
        )
        return tj.sum(out)

    _check_cases(while_fn, _four_doublings_ref, np.ones(2, np.float32))


def _four_doublings_ref(x):
    carry, _ = jax.lax.scan(lambda c, _: (clip_grad_ref(c) * 2.0, None), x, None, length=4)
    return jnp.sum(carry)


def test_inside_autograph_if_and_for() -> None:
    @tj.function
    def branchy(x):
        if tj.sum(x) > 0:
            y = clip_grad(x) * 4.0
        else:
            y = x
        for _ in tj.range(2):
            y = clip_grad(y) * 2.0
        return tj.sum(y)

    def ref(x):
        y = clip_grad_ref(x) * 4.0
        for _ in range(2):
            y = clip_grad_ref(y) * 2.0
        return jnp.sum(y)

    x = np.array([1.0, 2.0], np.float32)
    ir = str(branchy.get_concrete_function(x).ir)
    assert "cond[" in ir and "custom_gradient[" in ir
    close(_through(branchy, x), jax.grad(ref)(x))

    @tj.function
    def inside(x):
        with tj.GradientTape() as tape:
            tape.watch(x)
            y = branchy(x)
        return tape.gradient(y, x)

    close(inside(x), jax.grad(ref)(x))


# Higher order ----------------------------------------------------------------------------------
@tj.custom_gradient
def cube(x):
    """x**3 with the (deliberately scaled) gradient 6 x**2 dy: its derivative is 12 x."""
    return x**3, lambda dy: dy * 6.0 * x * x


@jax.custom_vjp
def cube_ref(x):
    return x**3


cube_ref.defvjp(lambda x: (x**3, x), lambda x, dy: (dy * 6.0 * x * x,))


def test_second_order_differentiates_the_gradient_function() -> None:
    x = np.array([0.5, -2.0], np.float32)
    want = jax.grad(lambda v: jnp.sum(jax.grad(lambda u: jnp.sum(cube_ref(u)))(v)))(x)

    def second(v: Any) -> Any:
        with tj.GradientTape() as outer:
            outer.watch(v)
            with tj.GradientTape() as inner:
                inner.watch(v)
                y = tj.sum(cube(v))
            g = tj.sum(inner.gradient(y, v))
        return outer.gradient(g, v)

    close(second(tj.constant(x)), want)
    close(tj.function(second)(x), want)


@tj.custom_gradient
def softplus_residual(x):
    """The gradient closes over a value the body computed (a residual): its second
    derivative flows back through the forward body."""
    e = tj.exp(x)
    return tj.log1p(e), lambda dy: dy * e / (1.0 + e)


def test_second_order_through_a_residual() -> None:
    x = np.array([0.3, -1.0], np.float32)
    sig = jax.nn.sigmoid(x)
    want = sig * (1 - sig)

    def second(v: Any) -> Any:
        with tj.GradientTape() as outer:
            outer.watch(v)
            with tj.GradientTape() as inner:
                inner.watch(v)
                y = tj.sum(softplus_residual(v))
            g = tj.sum(inner.gradient(y, v))
        return outer.gradient(g, v)

    close(second(tj.constant(x)), want)
    close(tj.function(second)(x), want)


# Variables (grad_fn(dy, variables=...), as TF) -------------------------------------------------
def _make_scale() -> tuple[tj.Variable, Any]:
    w = tj.Variable([2.0, -1.0, 0.5])

    @tj.custom_gradient
    def scale(x):
        def grad_fn(dy, variables=None):
            assert variables is not None and variables[0] is w
            return dy * 10.0, [tj.sum(dy * x, axis=0) * 0.5]

        return x * w, grad_fn

    return w, scale


def test_variables_get_the_custom_gradient_on_every_path() -> None:
    x = np.array([[1.0, 2.0, 3.0], [0.5, 0.5, 0.5]], np.float32)
    want_x, want_w = np.full(x.shape, 10.0), x.sum(axis=0) * 0.5
    w, scale = _make_scale()

    def run(fn: Any) -> tuple[Any, Any]:
        t = tj.constant(x)
        with tj.GradientTape() as tape:
            tape.watch(t)
            y = tj.sum(fn(t))
        return tuple(tape.gradient(y, [t, w]))

    for fn in (scale, tj.function(lambda t: scale(t))):  # eager, through the compiled call
        gx, gw = run(fn)
        close(gx, want_x)
        close(gw, want_w)

    @tj.function
    def step(t):  # a tape inside the trace
        with tj.GradientTape() as tape:
            y = tj.sum(scale(t))
        return tape.gradient(y, w)

    close(step(x), want_w)


def test_variables_need_a_variables_argument() -> None:
    w = tj.Variable(2.0)

    @tj.custom_gradient
    def uses_w(x):
        return x * w, lambda dy: dy

    with pytest.raises(GradientError, match="must accept a keyword argument 'variables'"):
        uses_w(tj.constant(1.0))
    with pytest.raises(GradientError, match="must accept a keyword argument 'variables'"):
        tj.function(uses_w)(tj.constant(1.0))
    # A variable passed as an argument is an input, not one of the variables.
    with tj.GradientTape() as tape:
        y = tj.custom_gradient(lambda v: (v * 3.0, lambda dy: dy * 0.25))(w)
    assert float(tape.gradient(y, w)) == 0.25


# Errors ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("traced", [False, True])
def test_bad_gradient_functions_are_refused(traced: bool) -> None:
    @tj.custom_gradient
    def two_grads(x):
        return x * 2.0, lambda dy: (dy, dy)

    @tj.custom_gradient
    def wrong_shape(x):
        return tj.sum(x), lambda dy: dy

    @tj.custom_gradient
    def no_pair(x):
        return x * 2.0

    def gradient(fn: Any) -> Any:
        x = tj.constant([1.0, 2.0])
        call = tj.function(fn) if traced else fn
        with tj.GradientTape() as tape:
            tape.watch(x)
            y = call(x)
        return tape.gradient(y, x)

    with pytest.raises(GradientError, match="returned 2 gradients for 1 inputs"):
        gradient(two_grads)
    with pytest.raises(GradientError, match=r"gradient of shape \(\) for input 0 of shape \(2,\)"):
        gradient(wrong_shape)
    with pytest.raises(GradientError, match="must return \\(outputs, grad_fn\\)"):
        gradient(no_pair)


# Saved functions -------------------------------------------------------------------------------
def test_saved_functions_keep_the_op(tmp_path: Any) -> None:
    f = tj.function(loss, input_signature=[tj.TensorSpec((3,)), tj.TensorSpec((3,))])
    loaded = tj.saved.load(tj.saved.save(f, str(tmp_path / "f")))
    (function,) = loaded.signatures.values()
    (concrete,) = function.concrete_functions()
    assert any(n.op.name == "custom_gradient" for n in concrete.ir.nodes)
    close(function(X, Y), loss_ref(X, Y))


# Property test: random programs with a custom-gradient op --------------------------------------
UNARY = [
    (tj.sin, jnp.sin),
    (tj.tanh, jnp.tanh),
    (lambda v: v * v, lambda v: v * v),
    (lambda v: tj.exp(-tj.abs(v)), lambda v: jnp.exp(-jnp.abs(v))),
]
BINARY = [(tj.add, jnp.add), (tj.multiply, jnp.multiply), (tj.subtract, jnp.subtract)]


@tj.custom_gradient
def damped(x, y):
    """x * y with the gradient (dz * tanh(y), dz * x * 0.5)."""
    return x * y, lambda dz: (dz * tj.tanh(y), dz * x * 0.5)


@jax.custom_vjp
def damped_ref(x, y):
    return x * y


damped_ref.defvjp(
    lambda x, y: (x * y, (x, y)), lambda r, dz: (dz * jnp.tanh(r[1]), dz * r[0] * 0.5)
)


@st.composite
def programs(draw: Any) -> list[tuple[str, int, int]]:
    """Steps over two inputs: unary and binary elementwise ops, calls of the custom-gradient
    op (at least one) and of ``clip_grad``; each step names its operands by index."""
    n = draw(st.integers(1, 8))
    steps = [
        (draw(st.sampled_from(["unary", "binary", "custom", "clip"])), draw(st.integers(0, 99)),
         draw(st.integers(0, 99)))
        for _ in range(n)
    ]  # fmt: skip
    at = draw(st.integers(0, len(steps)))
    return (
        steps[:at] + [("custom", draw(st.integers(0, 99)), draw(st.integers(0, 99)))] + steps[at:]
    )


def build(steps: list[tuple[str, int, int]], lib: str) -> Any:
    pick = 0 if lib == "tj" else 1
    custom = damped if lib == "tj" else damped_ref
    clip = clip_grad if lib == "tj" else clip_grad_ref
    total = tj.sum if lib == "tj" else jnp.sum

    def program(x: Any, y: Any) -> Any:
        values = [x, y]
        for kind, a, b in steps:
            p, q = values[a % len(values)], values[b % len(values)]
            if kind == "unary":
                values.append(UNARY[b % len(UNARY)][pick](p))
            elif kind == "binary":
                values.append(BINARY[a % len(BINARY)][pick](p, q))
            elif kind == "custom":
                values.append(custom(p, q))
            else:
                values.append(clip(p) * 3.0)
        return total(values[-1]) + total(values[len(values) // 2])

    return program


@settings(
    max_examples=int(os.environ.get("TRACEJIT_PROPERTY_EXAMPLES", "200")) // 4,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(programs(), st.sampled_from([(3,), (2, 2)]))
def test_random_programs_with_custom_gradients_match_jax_custom_vjp(
    steps: list[tuple[str, int, int]], shape: tuple[int, ...]
) -> None:
    rng = np.random.default_rng(len(steps))
    x = rng.uniform(-1, 1, shape).astype(np.float32)
    y = rng.uniform(-1, 1, shape).astype(np.float32)
    want = jax.grad(build(steps, "jax"), argnums=(0, 1))(x, y)
    program = build(steps, "tj")
    eager = _tape_gradient_at(program, x, y)
    through = _tape_gradient_at(tj.function(program), x, y)  # the through-call path, every run
    through_plain = _tape_gradient_at(tj.function(program, optimize=False), x, y)
    for got in (eager, through, through_plain):
        for g, w in zip(got, want):
            np.testing.assert_allclose(np.asarray(g), w, rtol=1e-4, atol=1e-5)


def _tape_gradient_at(fn: Any, x: np.ndarray, y: np.ndarray) -> tuple[Any, Any]:
    tx, ty = tj.constant(x), tj.constant(y)
    with tj.GradientTape() as tape:
        tape.watch([tx, ty])
        z = fn(tx, ty)
    gx, gy = tape.gradient(z, [tx, ty], unconnected_gradients="zero")
    return gx, gy


def test_a_tape_differentiates_through_a_loaded_function(tmp_path: Any) -> None:
    """A loaded function called under a tape is recorded like a tj.function call (it was not
    recorded at all: its gradients were silently None), and its custom rule is used."""
    f = tj.function(loss, input_signature=[tj.TensorSpec((3,)), tj.TensorSpec((3,))])
    (function,) = tj.saved.load(tj.saved.save(f, str(tmp_path / "f"))).signatures.values()
    for got, want in zip(_tape_gradient(function), WANT):
        close(got, want)
    w = tj.Variable([1.0, 2.0, 3.0])
    g = tj.function(lambda x: tj.sum(scaled(x, w)), input_signature=[tj.TensorSpec((3,))])
    loaded = tj.saved.load(tj.saved.save(g, str(tmp_path / "g")))
    (restored,) = loaded.variables.values()
    with tj.GradientTape() as tape:
        y = next(iter(loaded.signatures.values()))(tj.constant(X))
    want_w = jax.grad(lambda v: jnp.sum(scaled_ref(X, v)))(np.array([1.0, 2.0, 3.0], np.float32))
    close(tape.gradient(y, restored), want_w)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda p: p.update(grad_of={"tuple": [{"int": 4}]}), "grad_of names operand 4"),
        (lambda p: p.update(n_outputs={"int": 3}), "do not fit a body"),
        (lambda p: p["grad"]["graph"]["inputs"].append({"aval": "f32[3]", "id": "99"}), "inputs"),
    ],
    ids=["grad_of", "n_outputs", "grad_inputs"],
)
def test_hostile_saved_custom_gradient_nodes_are_refused(
    tmp_path: Any, edit: Any, message: str
) -> None:
    """The node's rule checks its params against its bodies, so a rewritten file (checksums
    recomputed, as an attacker would) is refused with FormatError."""
    import json

    from tracejit.saved import files

    f = tj.function(lambda x: clip_grad(x) + 1.0, input_signature=[tj.TensorSpec((3,))])
    directory = tj.saved.save(f, str(tmp_path / "f"))
    path = os.path.join(directory, "program.json")
    program = json.load(open(path))
    (signature,) = next(iter(program["functions"].values()))["signatures"]
    (node,) = [n for n in signature["graph"]["nodes"] if n["op"] == "custom_gradient"]
    edit(node["params"])
    json.dump(program, open(path, "w"))
    manifest_path = os.path.join(directory, "saved.json")
    manifest = json.load(open(manifest_path))
    manifest["program"]["sha256"] = files.sha256_file(path)
    json.dump(manifest, open(manifest_path, "w"))
    with pytest.raises(tj.saved.FormatError, match=message):
        tj.saved.load(directory)


def test_run_functions_eagerly_and_nested_custom_gradients() -> None:
    """A custom gradient inside another's body, and one inside a gradient function (TF's
    pattern for custom second derivatives), on the eager and traced paths."""

    @tj.custom_gradient
    def outer(x):
        return clip_grad(x) * 3.0, lambda dy: dy * 0.25  # the inner rule is hidden

    @tj.custom_gradient
    def square(x):
        def grad_fn(dy):
            @tj.custom_gradient
            def first(v):
                return 2.0 * v, lambda ddy: ddy * 7.0  # a custom second derivative

            return dy * first(x)

        return x * x, grad_fn

    def first_and_second(v: Any) -> tuple[Any, Any]:
        with tj.GradientTape() as outer_tape:
            outer_tape.watch(v)
            with tj.GradientTape() as inner:
                inner.watch(v)
                y = tj.sum(square(v)) + tj.sum(outer(v))
            g = inner.gradient(y, v)
            total = tj.sum(g)
        return g, outer_tape.gradient(total, v)

    x = np.array([1.5, -2.0], np.float32)
    want = (2 * x + 0.25, np.full(2, 7.0))
    for got in (first_and_second(tj.constant(x)), tj.function(first_and_second)(x)):
        close(got[0], want[0])
        close(got[1], want[1])
    tj.config.run_functions_eagerly(True)
    try:
        close(_through(tj.function(lambda v: tj.sum(clip_grad(v) * 2.0)), x), np.full(2, 0.5))
    finally:
        tj.config.run_functions_eagerly(False)


def test_gradient_functions_closing_over_outer_values() -> None:
    """grad_fn may use values of the enclosing trace and eager tensors (captured into the
    forward body, then passed to the gradient body as residuals)."""
    offset = tj.constant(0.5)

    @tj.function
    def f(x, s):
        @tj.custom_gradient
        def g(v):
            return v * 2.0, lambda dy: dy * s + offset

        return tj.sum(g(x))

    x, s = tj.constant(X), tj.constant(3.0)
    with tj.GradientTape() as tape:
        tape.watch([x, s])
        y = f(x, s)
    dx, ds = tape.gradient(y, [x, s])
    close(dx, np.full(3, 3.5))
    assert ds is None  # s reaches y only through the rule, as eagerly (and in TF)


def test_autograph_converts_custom_gradient_bodies() -> None:
    """Inside a tj.function (AutoGraph on), tensor `if`s in the body and in grad_fn become
    cond nodes, as anywhere else in user code."""

    @tj.custom_gradient
    def relu_like(x):
        if tj.sum(x) > 0:
            y = x
        else:
            y = x * 0.0

        def grad_fn(dy):
            if tj.sum(dy) > 100.0:
                g = dy * 0.0
            else:
                g = dy * 0.5
            return g

        return y, grad_fn

    f = tj.function(lambda x: tj.sum(relu_like(x) * 4.0))
    for value, want in ((X, np.full(3, 2.0)), (-np.abs(X), np.full(3, 2.0))):
        close(_through(f, value), want)
    assert "cond[" in str(f.get_concrete_function(X).ir)
    close(f(X), 4.0 * X.sum())
    plain = tj.function(lambda x: tj.sum(relu_like(x)), autograph=False)
    with pytest.raises(tj.errors.TracerConversionError):
        plain(X)  # without AutoGraph the body is plain Python, as any function's
