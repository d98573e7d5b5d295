"""Iris: a small MLP classifying all three species, trained with a compiled train step.

The data (150 flowers, 4 measurements) ships with scikit-learn. Split stratified 60/20/20 into
train, validation and test; standardize with the training statistics; train with Adam.

    python examples/iris.py                      # trains, prints the test accuracy
    python examples/iris.py --plot iris.png      # loss and accuracy curves
    python examples/iris.py --print-ir --eager   # the train step's IR; compiled vs eager timing
"""

from __future__ import annotations

from typing import Any

import common  # examples/common.py: the script's folder is on sys.path
import numpy as np
from sklearn.datasets import load_iris

import tracejit as tj

TARGET_ACCURACY = 0.90


def load_data(seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Standardized (x, label) splits ``train``, ``val``, ``test``."""
    iris = load_iris()
    x, y = iris.data.astype(np.float32), iris.target.astype(np.int32)
    train, val, test = common.split_indices(y, [0.6, 0.2, 0.2], seed)
    mean, std = x[train].mean(axis=0), x[train].std(axis=0)
    x = (x - mean) / std
    return {"train": (x[train], y[train]), "val": (x[val], y[val]), "test": (x[test], y[test])}


def build_model(seed: int, hidden: int = 32) -> tj.nn.Sequential:
    generator = tj.random.Generator(seed)
    return tj.nn.Sequential(
        [
            tj.nn.Dense(4, hidden, activation="relu", generator=generator),
            tj.nn.Dense(hidden, 3, generator=generator),
        ]
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.make_parser(
        __doc__.splitlines()[0], epochs=40, batch_size=16, learning_rate=0.01
    )
    args = parser.parse_args(argv)
    clock = common.Stopwatch()
    data = load_data(args.seed)
    x_train, y_train = data["train"]
    print(f"iris: {len(x_train)} train, {len(data['val'][0])} val, {len(data['test'][0])} test")

    model = build_model(args.seed)
    optimizer = tj.optim.Adam(args.lr)

    @tj.function
    def train_step(x, y):
        with tj.GradientTape() as tape:
            loss = tj.nn.softmax_cross_entropy(model(x, training=True), y)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    @tj.function
    def predict(x):
        return model(x)

    if args.print_ir:
        common.print_ir(train_step, data["train"], args.batch_size)

    history = common.fit(
        train_step,
        data["train"],
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        evaluate=lambda: common.classifier_metrics(
            predict, {"train": data["train"], "val": data["val"]}
        ),
        desc="iris",
        progress=not args.no_progress,
    )
    test = common.classifier_metrics(predict, {"test": data["test"]})
    verdict = "OK" if test["test_accuracy"] >= TARGET_ACCURACY else "BELOW TARGET"
    accuracy = common.format_value("test_accuracy", test["test_accuracy"])
    print(f"test accuracy {accuracy} (target >= {TARGET_ACCURACY}: {verdict})")
    results: dict[str, Any] = {**history.last, **test}
    results.update(common.report(args, history, train_step, data["train"], "Iris MLP"))
    results["wall_seconds"] = clock.seconds
    print(f"done in {results['wall_seconds']:.1f} s")
    return results


if __name__ == "__main__":
    main()
