"""tracejit in two minutes: eager ops, a compiled function, its IR, and its retracing rules.

The model is a linear (softmax) classifier for all three Iris classes (the data ships with
scikit-learn), trained by a compiled tracejit train step; tracejit then runs its forward pass
eagerly and compiled, prints the IR it traced and compares the two.

    python examples/quickstart.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.datasets import load_iris

import tracejit as tj


def load_data(seed: int = 0) -> tuple[np.ndarray, ...]:
    iris = load_iris()
    x = iris.data.astype(np.float32)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = x[order], iris.target[order].astype(np.int32)
    return x[:100], y[:100], x[100:], y[100:]


def fit(x: np.ndarray, y: np.ndarray, steps: int = 200) -> tuple[tj.Variable, tj.Variable]:
    """Softmax regression trained by a compiled step: forward, tape backward, Adam update."""
    layer = tj.nn.Dense(4, 3, generator=tj.random.Generator(0))
    optimizer = tj.optim.Adam(0.1)

    @tj.function
    def train_step(x, y):
        with tj.GradientTape() as tape:
            loss = tj.nn.softmax_cross_entropy(layer(x), y)
        grads = tape.gradient(loss, layer.trainable_variables)
        optimizer.apply_gradients(zip(grads, layer.trainable_variables))
        return loss

    for _ in range(steps):
        loss = train_step(x, y)
    print(f"trained {steps} compiled steps (1 trace): final loss {float(loss):.3f}")
    return layer.kernel, layer.bias


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], epilog="It takes no options."
    ).parse_args(argv)
    x_train, y_train, x_test, y_test = load_data()
    weights, bias = fit(x_train, y_train)

    def predict(x):
        logits = x @ weights + bias
        return tj.nn.softmax(logits, axis=-1)

    def accuracy(probs, labels):
        return tj.mean(tj.cast(tj.equal(tj.argmax(probs, axis=-1), labels), "float32"))

    # Eager mode: every op runs at once, like numpy.
    eager_probs = predict(tj.constant(x_test))
    print(f"eager:    test accuracy {float(accuracy(eager_probs, y_test)):.3f}")

    # Graph mode: trace once per input signature into tracejit's IR, compile with XLA.
    compiled_predict = tj.function(predict, input_signature=[tj.TensorSpec((None, 4))])
    probs = compiled_predict(x_test)
    print(f"compiled: test accuracy {float(accuracy(probs, y_test)):.3f}")
    np.testing.assert_allclose(probs.numpy(), eager_probs.numpy(), rtol=1e-5, atol=1e-6)

    print("\nThe IR tracejit traced (one SSA node per op, with the line that made it):")
    print(compiled_predict.get_concrete_function().ir)

    for batch in (1, 17, 50):
        compiled_predict(x_test[:batch])
    print(
        f"\nbatches of 1, 17 and 50 rows: still {compiled_predict.trace_count} trace "
        "(input_signature has an unknown batch dimension)"
    )

    batch = tj.constant(x_test[:8])
    timings = {}
    for name, fn in (("eager", predict), ("compiled", compiled_predict)):
        fn(batch)
        start = time.perf_counter()
        for _ in range(300):
            fn(batch)
        timings[name] = (time.perf_counter() - start) / 300 * 1e6
    print(
        f"per call: eager {timings['eager']:.0f} us, compiled {timings['compiled']:.0f} us "
        f"({timings['eager'] / timings['compiled']:.1f}x)"
    )


if __name__ == "__main__":
    main()
