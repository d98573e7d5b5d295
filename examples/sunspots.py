"""Yearly sunspot numbers: an LSTM forecaster against the naive last-value forecast.

Data: the yearly mean sunspot numbers 1700-2008 that ship with statsmodels
(``statsmodels.api.datasets.sunspots``, no download). Each example is a window of the previous
``--window`` years (scaled by the training years' standard deviation) and its target the next
year's number. Split by time, never shuffled across it: windows ending before 1920 train,
1920-1969 validate, 1970-2008 test.

The model: a 32-unit LSTM over the window, its last output through a linear layer, trained on
mean squared error by a compiled train step. The baseline predicts that next year equals this
year. Both are scored by RMSE in sunspot numbers on the test years.

    python examples/sunspots.py                      # test RMSE of the LSTM and the baseline
    python examples/sunspots.py --plot sunspots.png  # curves, and the forecast beside them
"""

from __future__ import annotations

from typing import Any

import common  # examples/common.py: the script's folder is on sys.path
import numpy as np

import tracejit as tj

SPLIT_YEARS = (1920, 1970)  # first target year of validation, of test


def load_series() -> tuple[np.ndarray, np.ndarray]:
    """``(years, sunspot numbers)``, 1700-2008."""
    import statsmodels.api as sm

    frame = sm.datasets.sunspots.load_pandas().data
    return frame["YEAR"].to_numpy(int), frame["SUNACTIVITY"].to_numpy(np.float32)


def make_windows(
    values: np.ndarray, years: np.ndarray, window: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``x [n, window, 1]`` (the years before each target), ``y [n, 1]``, target years ``[n]``."""
    starts = np.arange(len(values) - window)
    x = values[starts[:, None] + np.arange(window)][..., None]
    return x, values[starts + window][:, None], years[starts + window]


def load_data(window: int) -> dict[str, Any]:
    years, values = load_series()
    scale = float(values[years < SPLIT_YEARS[0]].std())
    x, y, target_years = make_windows(values / scale, years, window)
    splits: dict[str, Any] = {"scale": scale}
    bounds = {"train": (None, SPLIT_YEARS[0]), "val": SPLIT_YEARS, "test": (SPLIT_YEARS[1], None)}
    for name, (low, high) in bounds.items():
        keep = np.ones(len(y), bool)
        if low is not None:
            keep &= target_years >= low
        if high is not None:
            keep &= target_years < high
        splits[name] = (x[keep], y[keep])
        splits[f"{name}_years"] = target_years[keep]
    return splits


class Forecaster(tj.Module):
    """An LSTM over the window; its last output to one number (next year, scaled)."""

    def __init__(self, units: int, seed: int) -> None:
        super().__init__("forecaster")
        generator = tj.random.Generator(seed)
        self.lstm = tj.nn.LSTM(1, units, generator=generator)
        self.head = tj.nn.Dense(units, 1, generator=generator)

    def __call__(self, x: Any) -> Any:
        return self.head(self.lstm(x))


def rmse(predictions: np.ndarray, targets: np.ndarray, scale: float) -> float:
    return float(np.sqrt(np.mean((predictions - targets) ** 2))) * scale


def parse_args(argv: list[str] | None) -> Any:
    parser = common.make_parser(
        __doc__.splitlines()[0], epochs=150, batch_size=32, learning_rate=3e-3
    )
    parser.add_argument("--window", type=int, default=20, help="years the model sees")
    parser.add_argument("--units", type=int, default=32, help="LSTM units")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    clock = common.Stopwatch()
    data = load_data(args.window)
    scale = data["scale"]
    print(
        f"statsmodels' yearly sunspots: {len(data['train'][1])} train, {len(data['val'][1])} val,"
        f" {len(data['test'][1])} test windows of {args.window} years"
    )
    model = Forecaster(args.units, args.seed)
    print(f"model: LSTM({args.units}) + Dense(1), {model.count_params():,} parameters")
    optimizer = tj.optim.Adam(args.lr)

    @tj.function
    def train_step(x, y):
        with tj.GradientTape() as tape:
            loss = tj.nn.mean_squared_error(model(x), y)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    @tj.function
    def predict(x):
        return model(x)

    def forecast(split: str) -> np.ndarray:
        return common.predict_in_batches(predict, data[split][0], 64)

    def evaluate() -> dict[str, float]:
        return {f"{s}_rmse": rmse(forecast(s), data[s][1], scale) for s in ("train", "val")}

    if args.print_ir:
        common.print_ir(train_step, data["train"], args.batch_size)
    history = common.fit(
        train_step,
        data["train"],
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        evaluate=evaluate,
        desc="sunspots",
        progress=not args.no_progress,
    )
    x_test, y_test = data["test"]
    predictions = forecast("test")
    results: dict[str, Any] = {
        **history.last,
        "test_rmse": rmse(predictions, y_test, scale),
        "baseline_rmse": rmse(x_test[:, -1], y_test, scale),  # next year = this year
    }
    results["beats_baseline"] = results["test_rmse"] < results["baseline_rmse"]
    print(
        f"test RMSE {results['test_rmse']:.2f} sunspots (LSTM) vs {results['baseline_rmse']:.2f}"
        f" (last value){'' if results['beats_baseline'] else '  -- NOT better than the baseline'}"
    )
    results.update(common.report(args, history, train_step, data["train"], "Sunspots LSTM"))
    if args.plot:
        plot_forecast(args.plot, data, predictions, scale)
    results["wall_seconds"] = clock.seconds
    print(f"done in {results['wall_seconds']:.1f} s")
    return results


def plot_forecast(path: str, data: dict[str, Any], predictions: np.ndarray, scale: float) -> None:
    """The test years: the actual numbers, the LSTM's and the baseline's forecasts, saved
    beside the curves as ``<name>-forecast.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x_test, y_test = data["test"]
    years = data["test_years"]
    fig, ax = plt.subplots(figsize=(8, 3.8))
    ax.plot(years, y_test[:, 0] * scale, "-", marker="o", markersize=3, label="actual")
    ax.plot(years, predictions[:, 0] * scale, "--", label="LSTM")
    ax.plot(years, x_test[:, -1, 0] * scale, ":", label="last value")
    ax.set_xlabel("year")
    ax.set_ylabel("sunspot number")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.suptitle("Sunspots: one-year-ahead forecasts on the test years")
    fig.tight_layout()
    target = path[: -len(".png")] + "-forecast.png" if path.endswith(".png") else path + "-forecast"
    fig.savefig(target, dpi=100)
    plt.close(fig)
    print(f"saved {target}")


if __name__ == "__main__":
    main()
