"""Training: modules, layers, losses, optimizers, compiled train steps, and tapes that
differentiate through compiled calls."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tracejit as tj

RNG = np.random.default_rng(0)
X = RNG.normal(size=(32, 4)).astype(np.float32)
Y = (X[:, 0] + X[:, 1] > 0).astype(np.int32) + (X[:, 2] > 1).astype(np.int32)


def make_model(seed=0):
    g = tj.random.Generator(seed)
    return tj.nn.Sequential(
        [tj.nn.Dense(4, 8, activation="relu", generator=g), tj.nn.Dense(8, 3, generator=g)]
    )


def make_step(model, opt):
    def step(x, y):
        with tj.GradientTape() as tape:
            loss = tj.nn.softmax_cross_entropy(model(x), y)
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    return step


class TestModule:
    def test_collects_variables_in_attribute_order(self):
        model = make_model()
        shapes = [v.shape for v in model.trainable_variables]
        assert shapes == [(4, 8), (8,), (8, 3), (3,)]
        assert len(model.submodules) == 2
        assert model.count_params() == 4 * 8 + 8 + 8 * 3 + 3

    def test_nested_containers_and_frozen(self):
        class Block(tj.Module):
            def __init__(self):
                self.parts = {"a": tj.Variable(1.0), "b": [tj.Variable(2.0), (tj.Variable(3.0),)]}
                self.frozen = tj.Variable(0.0, trainable=False)
                self.shared = self.parts["a"]

        block = Block()
        assert len(block.variables) == 4
        assert len(block.trainable_variables) == 3

    def test_repr_counts_parameters(self):
        text = repr(make_model())
        assert text.startswith("Sequential (67 parameters)")
        assert "kernel: f32[4,8]" in text


class TestLosses:
    def test_softmax_cross_entropy_int_and_one_hot_labels(self):
        logits = RNG.normal(size=(5, 3)).astype(np.float32)
        labels = np.array([0, 2, 1, 1, 0], np.int32)
        log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        expected = -log_probs[np.arange(5), labels]
        np.testing.assert_allclose(
            tj.nn.softmax_cross_entropy(logits, labels, reduction="none").numpy(), expected, rtol=1e-5
        )
        one_hot = np.eye(3, dtype=np.float32)[labels]
        np.testing.assert_allclose(
            float(tj.nn.softmax_cross_entropy(logits, one_hot)), expected.mean(), rtol=1e-5
        )
        np.testing.assert_allclose(
            float(tj.nn.softmax_cross_entropy(logits, labels, reduction="sum")), expected.sum(), rtol=1e-5
        )

    def test_softmax_cross_entropy_is_stable(self):
        loss = tj.nn.softmax_cross_entropy(tj.constant([[1000.0, -1000.0]]), tj.constant([1]))
        np.testing.assert_allclose(float(loss), 2000.0)

    def test_sigmoid_binary_cross_entropy(self):
        logits = np.array([-50.0, -1.0, 0.0, 2.0, 50.0], np.float32)
        labels = np.array([0, 1, 1, 0, 1], np.float32)
        expected = np.logaddexp(0, logits) - logits * labels
        np.testing.assert_allclose(
            tj.nn.sigmoid_binary_cross_entropy(logits, labels, reduction="none").numpy(), expected, rtol=1e-5, atol=1e-6
        )

    def test_mean_squared_error(self):
        assert float(tj.nn.mean_squared_error(tj.constant([1.0, 3.0]), tj.constant([0.0, 0.0]))) == 5.0

    def test_bad_reduction(self):
        with pytest.raises(ValueError, match="reduction must be"):
            tj.nn.mean_squared_error(tj.ones((2,)), tj.ones((2,)), reduction="avg")


class TestOptimizers:
    def _run(self, opt, steps=3):
        w = tj.Variable([1.0, -2.0])
        for _ in range(steps):
            with tj.GradientTape() as tape:
                loss = (w * w * tj.constant([1.0, 3.0])).sum()
            opt.apply_gradients([(tape.gradient(loss, w), w)])
        return w.numpy()

    @staticmethod
    def _grad(w):
        return 2 * w * np.array([1.0, 3.0], np.float32)

    def test_sgd(self):
        w = np.array([1.0, -2.0], np.float32)
        for _ in range(3):
            w = w - 0.1 * self._grad(w)
        np.testing.assert_allclose(self._run(tj.optim.SGD(0.1)), w, rtol=1e-6)

    @pytest.mark.parametrize("nesterov", [False, True])
    def test_sgd_momentum(self, nesterov):
        w, velocity = np.array([1.0, -2.0], np.float32), np.zeros(2, np.float32)
        for _ in range(3):
            g = self._grad(w)
            velocity = 0.9 * velocity - 0.1 * g
            w = w + (0.9 * velocity - 0.1 * g if nesterov else velocity)
        got = self._run(tj.optim.SGD(0.1, momentum=0.9, nesterov=nesterov))
        np.testing.assert_allclose(got, w, rtol=1e-5)

    @pytest.mark.parametrize("decay", [0.0, 0.01])
    def test_adam_and_adamw(self, decay):
        w, m, v = np.array([1.0, -2.0], np.float32), np.zeros(2), np.zeros(2)
        for t in range(1, 4):
            g = self._grad(w)
            m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
            lr_t = 0.1 * np.sqrt(1 - 0.999**t) / (1 - 0.9**t)
            w = w - 0.1 * decay * w
            w = w - lr_t * m / (np.sqrt(v) + 1e-7)
        opt = tj.optim.AdamW(0.1, weight_decay=decay) if decay else tj.optim.Adam(0.1)
        np.testing.assert_allclose(self._run(opt), w, rtol=1e-5)
        assert int(opt.iterations) == 3

    def test_schedule(self):
        seen = []

        def schedule(step):
            seen.append(1)
            return 0.1 / (1.0 + tj.cast(step, "float32"))

        w = np.array([1.0, -2.0], np.float32)
        for t in range(3):
            w = w - 0.1 / (1 + t) * self._grad(w)
        np.testing.assert_allclose(self._run(tj.optim.SGD(schedule)), w, rtol=1e-5)

    def test_minimize(self):
        w = tj.Variable(3.0)
        opt = tj.optim.SGD(0.25)
        loss = opt.minimize(lambda: w * w, [w])
        assert float(loss) == 9.0 and float(w) == 1.5

    def test_no_gradients(self):
        with pytest.raises(ValueError, match="no gradients"):
            tj.optim.SGD(0.1).apply_gradients([(None, tj.Variable(1.0))])


class TestCompiledTraining:
    def test_compiled_step_equals_eager_step(self):
        compiled_model, eager_model = make_model(), make_model()
        compiled = tj.function(make_step(compiled_model, tj.optim.Adam(0.05)))
        eager = make_step(eager_model, tj.optim.Adam(0.05))
        for _ in range(5):
            a = float(compiled(X, Y))
            b = float(eager(tj.constant(X), tj.constant(Y)))
            np.testing.assert_allclose(a, b, rtol=2e-5)
        for v1, v2 in zip(compiled_model.variables, eager_model.variables):
            np.testing.assert_allclose(v1.numpy(), v2.numpy(), rtol=1e-4, atol=1e-6)
        assert compiled.trace_count == 1

    def test_loss_decreases_and_ir_shows_backward_and_updates(self):
        model = make_model()
        step = tj.function(make_step(model, tj.optim.Adam(0.05)))
        losses = [float(step(X, Y)) for _ in range(60)]
        assert losses[-1] < 0.5 * losses[0]
        cf = step.get_concrete_function(X, Y)
        traced = str(cf.ir_unoptimized)
        # 2 forward matmuls, 2 backward per layer; dce drops the unused gradient of the input x
        assert traced.count("= matmul") == 6
        assert str(cf.ir).count("= matmul") == 3
        assert str(cf.ir).count("= dense[activation=") == 2  # pattern fusion of the forward
        assert str(cf.ir).count("assign %s") == 4 * 3 + 1  # 4 params + 8 Adam slots + iterations

    def test_slots_created_on_first_trace_survive_retrace(self):
        model = make_model()
        step = tj.function(make_step(model, tj.optim.Adam(0.01)))
        step(X, Y)
        step(X[:16], Y[:16])  # new shape: retrace, no new variables
        assert step.trace_count == 2

    def test_dropout_masks_differ_between_compiled_calls(self):
        layer = tj.nn.Dropout(0.5, generator=tj.random.Generator(1))
        f = tj.function(lambda x: layer(x, training=True))
        a, b = f(tj.ones((64,))).numpy(), f(tj.ones((64,))).numpy()
        assert set(np.unique(a)) <= {0.0, 2.0} and not np.array_equal(a, b)
        np.testing.assert_array_equal(layer(tj.ones((3,))).numpy(), 1.0)  # not training


class TestTapeThroughCompiledCalls:
    def test_eager_tape_through_compiled_function(self):
        def body(x, w):
            return (tj.tanh(x @ w) ** 2).sum()

        compiled = tj.function(body)
        x, w = tj.constant(X[:4]), tj.constant(RNG.normal(size=(4, 2)).astype(np.float32))
        with tj.GradientTape(persistent=True) as tape:
            tape.watch([x, w])
            through = compiled(x, w)
            direct = body(x, w)
        g_through = tape.gradient(through, [x, w])
        g_direct = tape.gradient(direct, [x, w])
        for a, b in zip(g_through, g_direct):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)
        reference = jax.grad(lambda a, b: (jnp.tanh(a @ b) ** 2).sum(), argnums=(0, 1))(x.value, w.value)
        np.testing.assert_allclose(g_through[1].numpy(), np.asarray(reference[1]), rtol=1e-5)
        vjp = compiled.get_concrete_function(x, w).backward_function()
        assert vjp.trace_count == 1  # the backward graph was traced and compiled once

    def test_eager_tape_reaches_variables_read_inside_compiled_function(self):
        v = tj.Variable([1.0, 2.0])
        scaled = tj.function(lambda x: (x * v * v).sum())
        with tj.GradientTape() as tape:
            y = scaled(tj.constant([3.0, 4.0]))
        np.testing.assert_allclose(tape.gradient(y, v).numpy(), [6.0, 16.0])

    def test_compiled_calling_compiled_differentiates_through(self):
        inner = tj.function(lambda x: tj.exp(x) * x)

        @tj.function
        def outer(x):
            with tj.GradientTape() as tape:
                tape.watch(x)
                y = inner(x).sum()
            return tape.gradient(y, x)

        x = tj.constant([0.0, 1.0])
        np.testing.assert_allclose(outer(x).numpy(), np.exp([0.0, 1.0]) * (1 + np.array([0.0, 1.0])), rtol=1e-6)

    def test_eager_training_loop_calling_compiled_forward(self):
        model = make_model()
        forward = tj.function(lambda x: model(x))
        opt = tj.optim.SGD(0.1)
        first = None
        for _ in range(20):
            with tj.GradientTape() as tape:
                loss = tj.nn.softmax_cross_entropy(forward(X), Y)
            grads = tape.gradient(loss, model.trainable_variables)
            opt.apply_gradients(zip(grads, model.trainable_variables))
            first = first if first is not None else float(loss)
        assert float(loss) < first
        assert forward.trace_count == 1
