"""The same MLP twice: from scratch in numpy (forward and backward by hand) and in tracejit.

The course's correspondence exercise. Both networks start from the same weights and see the same
Iris batches. For one batch, each forward activation, the loss and each gradient is computed both
ways and compared; then both train side by side with plain SGD (numpy: the update by hand;
tracejit: a compiled train step with ``tj.optim.SGD``) and must reach the same loss to float32
tolerance.

    numpy (by hand)                          tracejit
    z1 = x @ W1 + b1                         z1 = dense1(x)
    h1 = max(z1, 0)                          h1 = tj.nn.relu(z1)
    z2 = h1 @ W2 + b2                        z2 = dense2(h1)
    loss = mean(logsumexp(z2) - z2[y])       loss = tj.nn.softmax_cross_entropy(z2, y)
    dz2 = (softmax(z2) - onehot(y)) / n      tape.gradient(loss, ...)
    dW2 = h1.T @ dz2, db2 = sum(dz2)
    dh1 = dz2 @ W2.T, dz1 = dh1 * (z1 > 0)
    dW1 = x.T @ dz1,  db1 = sum(dz1)
    W -= lr * dW                             optimizer.apply_gradients(...)

    python examples/scratch_vs_tracejit.py [--epochs N] [--plot curves.png]
"""

from __future__ import annotations

from typing import Any

import common  # examples/common.py: the script's folder is on sys.path
import numpy as np
from sklearn.datasets import load_iris

import tracejit as tj

TOLERANCE = 1e-4  # float32, after a few hundred SGD steps


# From scratch in numpy ------------------------------------------------------------------------
class NumpyMLP:
    """Two affine layers with a relu between, softmax cross-entropy, SGD: all by hand."""

    def __init__(self, params: dict[str, np.ndarray]) -> None:
        self.params = {name: value.astype(np.float32).copy() for name, value in params.items()}

    def forward(self, x: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
        p = self.params
        z1 = x @ p["W1"] + p["b1"]
        h1 = np.maximum(z1, 0)
        z2 = h1 @ p["W2"] + p["b2"]
        shifted = z2 - z2.max(axis=1, keepdims=True)  # softmax without overflow
        probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
        loss = -np.log(probs[np.arange(len(labels)), labels]).mean()
        return {"x": x, "labels": labels, "z1": z1, "h1": h1, "z2": z2, "probs": probs,
                "loss": np.float32(loss)}  # fmt: skip

    def backward(self, cache: dict[str, Any]) -> dict[str, np.ndarray]:
        """Gradients of the mean loss: the activations' (``dz2``...) and the parameters'."""
        p, x, labels = self.params, cache["x"], cache["labels"]
        onehot = np.eye(p["W2"].shape[1], dtype=np.float32)[labels]
        dz2 = (cache["probs"] - onehot) / len(labels)  # softmax + cross-entropy, combined
        dh1 = dz2 @ p["W2"].T
        dz1 = dh1 * (cache["z1"] > 0)  # relu passes the gradient where it was active
        return {"z2": dz2, "h1": dh1, "z1": dz1, "W2": cache["h1"].T @ dz2, "b2": dz2.sum(axis=0),
                "W1": x.T @ dz1, "b1": dz1.sum(axis=0)}  # fmt: skip

    def sgd_step(self, x: np.ndarray, labels: np.ndarray, lr: float) -> np.float32:
        cache = self.forward(x, labels)
        grads = self.backward(cache)
        for name in self.params:
            self.params[name] -= np.float32(lr) * grads[name]
        return cache["loss"]


# The same network in tracejit -----------------------------------------------------------------
class TracejitMLP(tj.Module):
    """``dense2(relu(dense1(x)))``, keeping the activations for the comparison."""

    def __init__(self, hidden: int, generator: tj.random.Generator) -> None:
        self.dense1 = tj.nn.Dense(4, hidden, generator=generator)
        self.dense2 = tj.nn.Dense(hidden, 3, generator=generator)

    def activations(self, x: Any) -> dict[str, Any]:
        z1 = self.dense1(x)
        h1 = tj.nn.relu(z1)
        return {"z1": z1, "h1": h1, "z2": self.dense2(h1)}

    def __call__(self, x: Any) -> Any:
        return self.activations(x)["z2"]

    def params(self) -> dict[str, np.ndarray]:
        """The weights under the numpy model's names."""
        return {"W1": self.dense1.kernel.numpy(), "b1": self.dense1.bias.numpy(),
                "W2": self.dense2.kernel.numpy(), "b2": self.dense2.bias.numpy()}  # fmt: skip


def max_diff(a: Any, b: Any) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def compare_one_batch(
    numpy_model: NumpyMLP, model: TracejitMLP, x: np.ndarray, y: np.ndarray
) -> float:
    """Print each step of the correspondence; return the largest difference seen."""
    cache = numpy_model.forward(x, y)
    grads = numpy_model.backward(cache)
    with tj.GradientTape() as tape:
        acts = model.activations(tj.constant(x))
        loss = tj.nn.softmax_cross_entropy(acts["z2"], tj.constant(y))
    sources = [acts["z2"], acts["h1"], acts["z1"], model.dense2.kernel, model.dense2.bias,
               model.dense1.kernel, model.dense1.bias]  # fmt: skip
    tj_grads = dict(zip(["z2", "h1", "z1", "W2", "b2", "W1", "b1"], tape.gradient(loss, sources),
                        strict=True))  # fmt: skip
    rows = [
        ("forward", "z1 = x @ W1 + b1", cache["z1"], acts["z1"]),
        ("forward", "h1 = relu(z1)", cache["h1"], acts["h1"]),
        ("forward", "z2 = h1 @ W2 + b2", cache["z2"], acts["z2"]),
        ("loss", "mean cross-entropy", cache["loss"], loss),
        ("backward", "dL/dz2 = (softmax - onehot) / n", grads["z2"], tj_grads["z2"]),
        ("backward", "dL/dW2 = h1.T @ dz2", grads["W2"], tj_grads["W2"]),
        ("backward", "dL/db2 = sum(dz2)", grads["b2"], tj_grads["b2"]),
        ("backward", "dL/dh1 = dz2 @ W2.T", grads["h1"], tj_grads["h1"]),
        ("backward", "dL/dz1 = dh1 * (z1 > 0)", grads["z1"], tj_grads["z1"]),
        ("backward", "dL/dW1 = x.T @ dz1", grads["W1"], tj_grads["W1"]),
        ("backward", "dL/db1 = sum(dz1)", grads["b1"], tj_grads["b1"]),
    ]
    print(f"one batch of {len(x)}: numpy by hand vs tracejit (eager, GradientTape)")
    print(f"  {'':9s}{'quantity':34s}{'shape':>10s}  max |numpy - tracejit|")
    worst = 0.0
    for stage, what, ours, theirs in rows:
        diff = max_diff(ours, theirs)
        worst = max(worst, diff)
        shape = "x".join(map(str, np.shape(ours))) or "scalar"
        print(f"  {stage:9s}{what:34s}{shape:>10s}  {diff:.2e}")
    return worst


def load_data(seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    iris = load_iris()
    x, y = iris.data.astype(np.float32), iris.target.astype(np.int32)
    train, val = common.split_indices(y, [0.8, 0.2], seed)
    x = (x - x[train].mean(axis=0)) / x[train].std(axis=0)
    return {"train": (x[train], y[train]), "val": (x[val], y[val])}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.make_parser(
        __doc__.splitlines()[0], epochs=25, batch_size=20, learning_rate=0.1
    )
    parser.add_argument("--hidden", type=int, default=16, help="hidden units")
    args = parser.parse_args(argv)
    clock = common.Stopwatch()
    data = load_data(args.seed)
    x_train, y_train = data["train"]

    model = TracejitMLP(args.hidden, tj.random.Generator(args.seed))
    numpy_model = NumpyMLP(model.params())  # the same initial weights
    agreement = compare_one_batch(
        numpy_model, model, x_train[: args.batch_size], y_train[: args.batch_size]
    )

    optimizer = tj.optim.SGD(args.lr)

    @tj.function
    def train_step(x, y):
        with tj.GradientTape() as tape:
            loss = tj.nn.softmax_cross_entropy(model(x), y)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    @tj.function
    def predict(x):
        return model(x)

    if args.print_ir:
        common.print_ir(train_step, data["train"], args.batch_size)

    loss_diffs: list[float] = []

    def both_steps(x: np.ndarray, y: np.ndarray) -> float:
        """One SGD step of each network on the same batch."""
        numpy_loss = numpy_model.sgd_step(x, y, args.lr)
        tracejit_loss = float(train_step(x, y))
        loss_diffs.append(abs(float(numpy_loss) - tracejit_loss))
        if len(loss_diffs) <= 3:
            print(
                f"  step {len(loss_diffs)}: loss numpy {numpy_loss:.7f}, tracejit "
                f"{tracejit_loss:.7f}, |difference| {loss_diffs[-1]:.1e}"
            )
        return tracejit_loss

    def evaluate() -> common.Metrics:
        metrics = common.classifier_metrics(predict, data)
        for name, (x, y) in data.items():
            logits = numpy_model.forward(x, y)["z2"]
            metrics[f"{name}_numpy_loss"] = common.cross_entropy(logits, y)
        metrics["param_diff"] = max(
            max_diff(numpy_model.params[k], v) for k, v in model.params().items()
        )
        return metrics

    print(f"\ntraining both with SGD (lr {args.lr}), the same batches:")
    history = common.fit(
        both_steps,
        data["train"],
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        evaluate=evaluate,
        desc="numpy & tracejit",
        progress=not args.no_progress,
    )
    last = history.last
    results: dict[str, Any] = {
        **last,
        "forward_backward_max_diff": agreement,
        "max_step_loss_diff": max(loss_diffs),
        "steps": len(loss_diffs),
    }
    same = results["max_step_loss_diff"] < TOLERANCE and last["param_diff"] < TOLERANCE
    print(
        f"after {len(loss_diffs)} steps: train loss numpy {last['train_numpy_loss']:.6f}, "
        f"tracejit {last['train_loss']:.6f}; largest per-step loss difference "
        f"{results['max_step_loss_diff']:.1e}, largest weight difference {last['param_diff']:.1e}"
        f" -> {'the same to float32 tolerance' if same else 'DIFFERENT'} (tolerance {TOLERANCE})"
    )
    results["agree"] = same and agreement < TOLERANCE
    panels = {
        f"{split} loss": {"numpy": f"{prefix}_numpy_loss", "tracejit": f"{prefix}_loss"}
        for split, prefix in (("training", "train"), ("validation", "val"))
    }
    panels["largest weight difference"] = {"numpy vs tracejit": "param_diff"}
    title = "numpy from scratch vs tracejit (SGD, same data and initial weights)"
    results.update(common.report(args, history, train_step, data["train"], title, panels))
    results["wall_seconds"] = clock.seconds
    return results


if __name__ == "__main__":
    main()
