"""SimpleRNN, LSTM, GRU and Bidirectional against numpy implementations of Keras' equations with
the layers' own weights, eagerly and compiled; masks, states, directions; gradients train."""

from __future__ import annotations

import numpy as np
import pytest

import tracejit as tj

RTOL, ATOL = 1e-5, 1e-5


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def weights(layer):
    bias = None if layer.bias is None else layer.bias.numpy().astype(np.float64)
    return (
        layer.kernel.numpy().astype(np.float64),
        layer.recurrent_kernel.numpy().astype(np.float64),
        bias,
    )


def simple_rnn_step(layer, x, states):
    w, u, b = weights(layer)
    return (np.tanh(x @ w + states[0] @ u + (0 if b is None else b)),)


def lstm_step(layer, x, states):
    w, u, b = weights(layer)
    h, c = states
    z = x @ w + h @ u + (0 if b is None else b)
    i, f, g, o = np.split(z, 4, axis=-1)  # Keras' gate order
    c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
    return sigmoid(o) * np.tanh(c), c


def gru_step(layer, x, states):
    w, u, b = weights(layer)
    (h,) = states
    n = layer.units
    if layer.reset_after:
        b_in, b_rec = (b[0], b[1]) if b is not None else (0, 0)
        x_z, x_r, x_h = np.split(x @ w + b_in, 3, axis=-1)
        h_z, h_r, h_h = np.split(h @ u + b_rec, 3, axis=-1)
        z, r = sigmoid(x_z + h_z), sigmoid(x_r + h_r)
        candidate = np.tanh(x_h + r * h_h)
    else:
        x_z, x_r, x_h = np.split(x @ w + (0 if b is None else b), 3, axis=-1)
        z = sigmoid(x_z + h @ u[:, :n])
        r = sigmoid(x_r + h @ u[:, n : 2 * n])
        candidate = np.tanh(x_h + (r * h) @ u[:, 2 * n :])
    return (z * h + (1 - z) * candidate,)


STEPS = {"SimpleRNN": simple_rnn_step, "LSTM": lstm_step, "GRU": gru_step}


def reference(layer, x, mask=None, initial=None):
    """Keras' RNN loop: masked steps carry the states and repeat the previous output."""
    x = x.astype(np.float64)
    batch, time, _ = x.shape
    count = 2 if isinstance(layer, tj.nn.LSTM) else 1
    states = initial or tuple(np.zeros((batch, layer.units)) for _ in range(count))
    order = range(time - 1, -1, -1) if layer.go_backwards else range(time)
    outputs = []
    for t in order:
        new = STEPS[type(layer).__name__](layer, x[:, t], states)
        if mask is not None:
            keep = mask[:, t, None]
            new = tuple(np.where(keep, n, s) for n, s in zip(new, states, strict=True))
            out = np.where(keep, new[0], 0.0) if layer.zero_output_for_mask else new[0]
        else:
            out = new[0]
        states = new
        outputs.append(out)
    output = np.stack(outputs, 1) if layer.return_sequences else states[0]
    return [output, *states] if layer.return_state else output


def check(actual, expected):
    if isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected)
        for a, e in zip(actual, expected, strict=True):
            check(a, e)
        return
    np.testing.assert_allclose(np.asarray(actual), expected, rtol=RTOL, atol=ATOL)


def make(kind, *sizes, **options):
    return getattr(tj.nn, kind)(*sizes, generator=tj.random.Generator(7), **options)


def inputs(shape=(3, 6, 4), seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


CASES = [
    ("SimpleRNN", {}),
    ("LSTM", {}),
    ("GRU", {}),
    ("GRU", {"reset_after": False}),
    ("LSTM", {"return_sequences": True, "return_state": True}),
    ("GRU", {"return_sequences": True, "go_backwards": True}),
    ("SimpleRNN", {"return_state": True, "go_backwards": True}),
    ("LSTM", {"use_bias": False, "return_sequences": True}),
]


@pytest.mark.parametrize("kind,options", CASES, ids=[f"{k}-{sorted(o)}" for k, o in CASES])
def test_layer_matches_keras_equations_eager_and_compiled(kind, options):
    layer = make(kind, 4, 5, **options)
    x = inputs()
    expected = reference(layer, x)
    check(layer(tj.constant(x)), expected)
    check(tj.function(lambda x: layer(x))(x), expected)


@pytest.mark.parametrize("kind", ["SimpleRNN", "LSTM", "GRU"])
@pytest.mark.parametrize("zero_output", [False, True])
def test_masks_carry_states_through_padded_steps(kind, zero_output):
    layer = make(kind, 4, 3, return_sequences=True, zero_output_for_mask=zero_output)
    x = inputs()
    mask = np.array([[1, 1, 1, 1, 0, 0], [1, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]], bool)
    expected = reference(layer, x, mask)
    check(layer(tj.constant(x), mask=tj.constant(mask)), expected)
    check(tj.function(lambda x, m: layer(x, mask=m))(x, mask), expected)
    last = make(kind, 4, 3)
    last.kernel.assign(layer.kernel)
    last.recurrent_kernel.assign(layer.recurrent_kernel)
    last.bias.assign(layer.bias)
    # The last output of a sequence padded at the end is its last real step's.
    check(tj.function(lambda x, m: last(x, mask=m))(x, mask)[0], expected[0, 3])


def test_initial_state_and_lazy_building():
    layer = tj.nn.LSTM(5, return_state=True, generator=tj.random.Generator(1))
    assert layer.kernel is None
    x = inputs()
    h0, c0 = inputs((3, 5), 1), inputs((3, 5), 2)
    out = tj.function(lambda x, h, c: layer(x, initial_state=[h, c]))(x, h0, c0)
    assert layer.kernel.shape == (4, 20) and layer.recurrent_kernel.shape == (5, 20)
    np.testing.assert_array_equal(layer.bias.numpy()[5:10], 1.0)  # unit_forget_bias
    check(out, reference(layer, x, initial=(h0.astype(np.float64), c0.astype(np.float64))))


def test_recurrent_kernel_is_orthogonal():
    u = make("GRU", 4, 6).recurrent_kernel.numpy()  # [6, 18]: orthonormal rows
    np.testing.assert_allclose(u @ u.T, np.eye(6), atol=1e-5)


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
def test_bidirectional(merge_mode):
    forward = make("LSTM", 4, 3, return_sequences=True)
    bi = tj.nn.Bidirectional(forward, merge_mode=merge_mode)
    assert bi.backward_layer.go_backwards and not forward.go_backwards
    x = inputs()
    f = reference(forward, x)
    b = reference(bi.backward_layer, x)[:, ::-1]
    merged = {
        "concat": lambda: np.concatenate([f, b], -1),
        "sum": lambda: f + b,
        "mul": lambda: f * b,
        "ave": lambda: (f + b) / 2,
        None: lambda: [f, b],
    }[merge_mode]()
    check(tj.function(lambda x: bi(x))(x), merged)
    names = {v.name for v in bi.trainable_variables}
    assert len(names) == 6  # two layers' kernel, recurrent kernel, bias


def test_bidirectional_return_state():
    bi = tj.nn.Bidirectional(make("GRU", 4, 3, return_state=True))
    out, h_forward, h_backward = bi(tj.constant(inputs()))
    assert out.shape == (3, 6) and h_forward.shape == h_backward.shape == (3, 3)
    np.testing.assert_allclose(out.numpy(), np.concatenate([h_forward, h_backward], -1))


def test_errors_name_the_layer_and_sizes():
    layer = make("LSTM", 4, 3)
    with pytest.raises(tj.errors.ShapeError, match=r"lstm\S*: was built for 4 input features"):
        layer(tj.ones((2, 5, 6)))
    with pytest.raises(tj.errors.ShapeError, match=r"expects inputs \[batch, time, features\]"):
        layer(tj.ones((2, 4)))
    with pytest.raises(ValueError, match="its units"):
        tj.nn.GRU(0)
    with pytest.raises(TypeError, match="wraps a SimpleRNN, LSTM or GRU"):
        tj.nn.Bidirectional(tj.nn.Dense(2, 2))
    with pytest.raises(ValueError, match="initial_state needs 2 tensors"):
        layer(tj.ones((2, 5, 4)), initial_state=[tj.zeros((2, 3))])


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_compiled_training_reduces_the_loss(kind):
    """A sequence-sum regression: gradients flow through the scan into every variable."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 8, 2)).astype(np.float32)
    y = x.sum(axis=(1, 2))[:, None].astype(np.float32) / 4
    rnn, head = make(kind, 2, 8), tj.nn.Dense(8, 1, generator=tj.random.Generator(2))
    variables = rnn.trainable_variables + head.trainable_variables
    optimizer = tj.optim.Adam(0.02)

    @tj.function
    def step(x, y):
        with tj.GradientTape() as tape:
            loss = tj.nn.mean_squared_error(head(rnn(x)), y)
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables, strict=True))
        return loss, grads

    first, grads = step(x, y)
    assert all(g is not None and float(tj.sum(tj.abs(g))) > 0 for g in grads)
    for _ in range(60):
        loss, _ = step(x, y)
    assert float(loss) < 0.3 * float(first)


def test_eager_gradient_matches_compiled():
    layer = make("GRU", 4, 3, return_sequences=True)
    x = inputs()

    def loss():
        return tj.sum(tj.square(layer(tj.constant(x))))

    with tj.GradientTape() as tape:
        value = loss()
    eager = tape.gradient(value, layer.trainable_variables)

    @tj.function
    def compiled():
        with tj.GradientTape() as tape:
            value = loss()
        return tape.gradient(value, layer.trainable_variables)

    for e, c in zip(eager, compiled(), strict=True):
        np.testing.assert_allclose(e.numpy(), c.numpy(), rtol=1e-4, atol=1e-5)
