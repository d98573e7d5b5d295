"""tracejit in two minutes: eager ops, a compiled function, its IR, and its retracing rules.

The model is a linear classifier for all three Iris classes (the data ships with scikit-learn),
fitted in closed form by least squares with numpy; tracejit runs its forward pass eagerly and
compiled, prints the IR it traced and compares the two.

    python examples/quickstart.py
"""

from __future__ import annotations

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


def fit_least_squares(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weights and bias mapping features to one-hot targets (numpy, closed form)."""
    design = np.concatenate([x, np.ones((len(x), 1), np.float32)], axis=1)
    targets = np.eye(3, dtype=np.float32)[y]
    solution, *_ = np.linalg.lstsq(design, targets, rcond=None)
    return solution[:-1].astype(np.float32), solution[-1].astype(np.float32)


def main() -> None:
    x_train, y_train, x_test, y_test = load_data()
    w, b = fit_least_squares(x_train, y_train)
    weights, bias = tj.constant(w), tj.constant(b)

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
