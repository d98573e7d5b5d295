"""Plumbing shared by the training examples: arguments, seeded batching, the epoch loop with a
tqdm bar, a metric history that plots itself, and the compiled-vs-eager timing.

Each example builds its model and a ``tj.function`` train step, then hands them to ``fit`` and
``report``. Nothing here is specific to a data set.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from tqdm import tqdm

import tracejit as tj

Metrics = dict[str, float]


# Arguments ---------------------------------------------------------------------------------------
def make_parser(
    description: str, *, epochs: int | None, batch_size: int, learning_rate: float | None
) -> argparse.ArgumentParser:
    """The flags every example takes; examples add their own (``--data``, ``--model``...)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--epochs", type=int, default=epochs, help="passes over the training set")
    parser.add_argument("--batch-size", type=int, default=batch_size, help="training batch size")
    parser.add_argument("--lr", type=float, default=learning_rate, help="learning rate")
    parser.add_argument("--seed", type=int, default=0, help="seeds the split, init and shuffling")
    parser.add_argument(
        "--plot",
        metavar="PNG",
        type=plot_path,
        help="save loss and metric curves to this file (its folder is created if missing)",
    )
    parser.add_argument(
        "--eager",
        action="store_true",
        help="after training, also run the same train step eagerly and print the speed-up",
    )
    parser.add_argument(
        "--eager-steps", type=int, default=20, help="batches timed each way with --eager"
    )
    parser.add_argument("--print-ir", action="store_true", help="print the train step's IR")
    parser.add_argument("--no-progress", action="store_true", help="hide the tqdm progress bar")
    return parser


def plot_path(path: str) -> str:
    """``--plot``'s check, at parse time: create the file's folder now, so a bad path fails
    before training rather than after it."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as err:
        raise argparse.ArgumentTypeError(f"cannot create the folder for {path!r}: {err}") from None
    if not os.access(folder, os.W_OK):
        raise argparse.ArgumentTypeError(f"cannot write into {folder!r}")
    return path


# Data --------------------------------------------------------------------------------------------
def batch_indices(
    n: int, batch_size: int, rng: np.random.Generator, drop_remainder: bool = True
) -> list[np.ndarray]:
    """Row indices of one shuffled epoch. The ragged last batch is dropped by default: every
    training batch then has the same shape, so the train step is traced and compiled once (the
    epoch's shuffle puts the dropped rows into other batches next time)."""
    batch_size = min(batch_size, n)
    order = rng.permutation(n)
    stop = n - n % batch_size if drop_remainder else n
    return [order[start : start + batch_size] for start in range(0, stop, batch_size)]


def split_indices(
    labels: np.ndarray, fractions: Sequence[float], seed: int, stratify: bool = True
) -> list[np.ndarray]:
    """Split ``range(len(labels))`` into parts of the given fractions (summing to 1), shuffled
    with ``seed``; stratified: each part keeps the class proportions of ``labels``."""
    rng = np.random.default_rng(seed)
    groups = (
        [np.flatnonzero(labels == c) for c in np.unique(labels)]
        if stratify
        else [np.arange(len(labels))]
    )
    bounds = np.cumsum(fractions)[:-1]
    parts: list[list[np.ndarray]] = [[] for _ in fractions]
    for group in groups:
        group = rng.permutation(group)
        cuts = np.round(bounds * len(group)).astype(int)
        for part, piece in zip(parts, np.split(group, cuts), strict=True):
            part.append(piece)
    return [rng.permutation(np.concatenate(part)) for part in parts]


def predict_in_batches(
    predict: Callable[[np.ndarray], Any], x: np.ndarray, batch_size: int
) -> np.ndarray:
    """``predict`` over ``x`` in chunks of ``batch_size`` rows. A short last chunk is padded to
    the full size so that a compiled ``predict`` sees one shape (one trace) for any data set."""
    if len(x) <= batch_size:
        return np.asarray(predict(x))
    outputs = []
    for start in range(0, len(x), batch_size):
        chunk = x[start : start + batch_size]
        rows = len(chunk)
        if rows < batch_size:
            padding = np.zeros((batch_size - rows, *chunk.shape[1:]), chunk.dtype)
            chunk = np.concatenate([chunk, padding])
        outputs.append(np.asarray(predict(chunk))[:rows])
    return np.concatenate(outputs)


# Metrics (numpy: evaluation runs outside the train step) -----------------------------------------
def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean softmax cross-entropy of integer ``labels``, computed stably."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return float(-log_probs[np.arange(len(labels)), labels].mean())


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((logits.argmax(axis=-1) == labels).mean())


def classifier_metrics(
    predict: Callable[[np.ndarray], Any],
    splits: dict[str, tuple[np.ndarray, np.ndarray]],
    batch_size: int = 1000,
) -> Metrics:
    """``{split}_loss`` and ``{split}_accuracy`` for each named ``(x, labels)`` split."""
    metrics: Metrics = {}
    for name, (x, labels) in splits.items():
        logits = predict_in_batches(predict, x, batch_size)
        metrics[f"{name}_loss"] = cross_entropy(logits, labels)
        metrics[f"{name}_accuracy"] = accuracy(logits, labels)
    return metrics


# History -----------------------------------------------------------------------------------------
class History:
    """Metrics per epoch: ``history["val_loss"]`` is the list over epochs."""

    def __init__(self) -> None:
        self.epochs: list[Metrics] = []

    def append(self, metrics: Metrics) -> None:
        self.epochs.append(dict(metrics))

    def __getitem__(self, name: str) -> list[float]:
        return [epoch[name] for epoch in self.epochs if name in epoch]

    @property
    def last(self) -> Metrics:
        return self.epochs[-1] if self.epochs else {}

    def panels(self) -> dict[str, dict[str, str]]:
        """The default plot: one panel per metric the splits share (``loss`` for ``train_loss``
        and ``val_loss``), one curve per split."""
        found: dict[str, dict[str, str]] = {}
        for key in self.epochs[0] if self.epochs else {}:
            split, _, name = key.partition("_")
            if name and split in ("train", "val"):
                found.setdefault(name.replace("_", " "), {})[split] = key
        return found

    def plot(self, path: str, title: str, panels: dict[str, dict[str, str]] | None = None) -> None:
        """Curves over epochs saved to ``path``: ``panels`` maps each panel's title to its curves
        (label -> metric name); by default, train and validation curves per metric."""
        import matplotlib

        matplotlib.use("Agg")  # files only: no display needed
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator

        panels = panels or self.panels()
        fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.8), squeeze=False)
        epochs = [epoch["epoch"] for epoch in self.epochs]
        for ax, (name, curves) in zip(axes[0], panels.items(), strict=True):
            for (label, key), style in zip(curves.items(), ("-", "--", ":", "-."), strict=False):
                ax.plot(epochs, self[key], style, marker="o", markersize=3, label=label)
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_ylabel(name)
            ax.grid(alpha=0.3)
            ax.legend()
        fig.suptitle(title)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        print(f"saved {path}")


def format_value(key: str, value: float) -> str:
    """One format per kind of metric, in every example: accuracies with 3 decimals, the rest
    with 4 significant digits."""
    return f"{value:.3f}" if key.endswith("accuracy") else f"{value:.4g}"


def format_metrics(metrics: Metrics) -> str:
    parts = []
    for key, value in metrics.items():
        if key in ("epoch", "seconds"):
            continue
        parts.append(f"{key.replace('_', ' ')} {format_value(key, value)}")
    return "  ".join(parts)


# Training ----------------------------------------------------------------------------------------
def fit(
    step: Callable[..., Any],
    arrays: Sequence[np.ndarray],
    *,
    epochs: int,
    batch_size: int,
    seed: int,
    evaluate: Callable[[], Metrics],
    desc: str = "train",
    progress: bool = True,
) -> History:
    """Run ``step(*batch)`` over shuffled batches of ``arrays`` for ``epochs`` epochs, then
    ``evaluate()`` after each; print one line of metrics per epoch below a tqdm bar."""
    rng = np.random.default_rng(seed)
    history = History()
    bar = None
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        losses = [
            step(*(a[rows] for a in arrays))
            for rows in batch_indices(len(arrays[0]), batch_size, rng)
        ]
        step_loss = float(np.mean([float(loss) for loss in losses]))  # waits for the last step
        metrics = {"epoch": epoch, "step_loss": step_loss, **evaluate()}
        metrics["seconds"] = time.perf_counter() - start
        history.append(metrics)
        tqdm.write(
            f"epoch {epoch:3d}/{epochs}  {format_metrics(metrics)}  ({metrics['seconds']:.2f} s)"
        )
        if bar is None:
            # Made after the first epoch, which includes tracing and compiling, so the rate and
            # the ETA measure training only. disable=None: no bar when stderr is not a terminal
            # (a log file would get carriage-return fragments).
            bar = tqdm(
                total=epochs,
                initial=epoch,
                desc=desc,
                unit="epoch",
                disable=None if progress else True,
                leave=False,
            )
        else:
            bar.update()
        shown = {k: format_value(k, v) for k, v in metrics.items() if k.startswith("val_")}
        bar.set_postfix(shown)
    if bar is not None:
        bar.close()
    return history


def print_ir(step: tj.Function[..., Any], arrays: Sequence[np.ndarray], batch_size: int) -> None:
    """The IR of ``step`` traced for one training batch."""
    batch = [a[: min(batch_size, len(a))] for a in arrays]
    print(step.get_concrete_function(*batch).ir)


@contextlib.contextmanager
def functions_run_eagerly() -> Iterator[None]:
    """Run every ``tj.function`` body as plain Python (no tracing, no XLA) inside the block."""
    before = tj.config.functions_run_eagerly()
    tj.config.run_functions_eagerly(True)
    try:
        yield
    finally:
        tj.config.run_functions_eagerly(before)


def _time_steps(step: Callable[..., Any], batches: Sequence[Sequence[np.ndarray]]) -> float:
    """Seconds per step over ``batches``, after one untimed warm-up step (which traces and
    compiles a tj.function, and lets jax cache its per-op kernels when eager)."""
    float(step(*batches[0]))
    start = time.perf_counter()
    loss = None
    for batch in batches:
        loss = step(*batch)
    float(loss)  # the steps run asynchronously: wait for the last one
    return (time.perf_counter() - start) / len(batches)


def compare_eager(
    step: Callable[..., Any], arrays: Sequence[np.ndarray], batch_size: int, steps: int, seed: int
) -> Metrics:
    """Time ``steps`` train steps compiled, then the same steps eagerly; print the speed-up.

    The steps train the model further, so call this after the final evaluation."""
    rng = np.random.default_rng(seed)
    rows = batch_indices(len(arrays[0]), batch_size, rng)
    rows = (rows * math.ceil(steps / len(rows)))[:steps]
    batches = [[a[r] for a in arrays] for r in rows]
    compiled = _time_steps(step, batches)
    with functions_run_eagerly():
        eager = _time_steps(step, batches)
    speedup = eager / compiled
    print(
        f"compiled step: {compiled * 1e3:.3f} ms, eager step: {eager * 1e3:.3f} ms, "
        f"speed-up {speedup:.1f}x  ({len(batches)} steps of batch {len(rows[0])} each way)"
    )
    return {"compiled_step_ms": compiled * 1e3, "eager_step_ms": eager * 1e3, "speedup": speedup}


def report(
    args: argparse.Namespace,
    history: History,
    step: Callable[..., Any],
    arrays: Sequence[np.ndarray],
    title: str,
    panels: dict[str, dict[str, str]] | None = None,
) -> Metrics:
    """The options that run after training: ``--plot`` (see ``History.plot``) and ``--eager``."""
    extra: Metrics = {}
    if args.plot:
        history.plot(args.plot, title, panels)
    if args.eager:
        extra = compare_eager(step, arrays, args.batch_size, args.eager_steps, args.seed)
    return extra


class Stopwatch:
    """Wall time since construction, for the examples' final line."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.start
