"""tj.nn.initializers: the statistics of each draw against Keras' documented formulas (fans of
dense and conv kernels), orthogonality, the name/callable lookup, seeds, and use by layers."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tracejit as tj
from tracejit.nn import initializers as init

# Keras' formulas: name -> (scale, mode, distribution)
FAMILY = {
    "glorot_uniform": (1.0, "fan_avg", "uniform"),
    "glorot_normal": (1.0, "fan_avg", "truncated_normal"),
    "he_uniform": (2.0, "fan_in", "uniform"),
    "he_normal": (2.0, "fan_in", "truncated_normal"),
    "lecun_uniform": (1.0, "fan_in", "uniform"),
    "lecun_normal": (1.0, "fan_in", "truncated_normal"),
}
DENSE, CONV = (300, 200), (3, 3, 40, 60)  # fans (300, 200) and (360, 540)


def _expected_variance(shape: tuple[int, ...], scale: float, mode: str) -> float:
    if len(shape) == 2:
        fan_in, fan_out = shape
    else:  # Keras: receptive field (the window) times the in / out channels
        window = math.prod(shape[:-2])
        fan_in, fan_out = shape[-2] * window, shape[-1] * window
    n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
    return scale / n


@pytest.mark.parametrize("shape", [DENSE, CONV], ids=["dense", "conv"])
@pytest.mark.parametrize("name", sorted(FAMILY))
def test_variance_scaling_family_matches_keras_formulas(name, shape):
    scale, mode, distribution = FAMILY[name]
    drawn = init.get(name)(shape, generator=tj.random.Generator(1)).numpy()
    assert drawn.shape == shape and drawn.dtype == np.float32
    sample = drawn.astype(np.float64)
    variance = _expected_variance(shape, scale, mode)
    # The sample variance of n draws has a relative standard error near sqrt(2 / n) (< 0.4%).
    np.testing.assert_allclose(sample.var(), variance, rtol=0.03)
    assert abs(sample.mean()) < 4 * math.sqrt(variance / sample.size)
    if distribution == "uniform":  # U(-l, l), l = sqrt(3 * variance)
        limit = math.sqrt(3 * variance)
        assert np.abs(sample).max() <= limit
        assert np.abs(sample).max() > 0.99 * limit
    else:  # truncated at two (pre-truncation) standard deviations
        stddev = math.sqrt(variance) / 0.87962566103423978
        assert np.abs(sample).max() <= 2 * stddev * (1 + 1e-6)
        assert np.abs(sample).max() > 1.95 * stddev


def test_compute_fans_as_keras():
    assert init.compute_fans(()) == (1, 1)
    assert init.compute_fans((7,)) == (7, 7)
    assert init.compute_fans((4, 3)) == (4, 3)
    assert init.compute_fans((5, 4, 3)) == (20, 15)  # a 1-D conv kernel [w, in, out]
    assert init.compute_fans((3, 3, 16, 32)) == (144, 288)


def test_variance_scaling_modes_and_distributions():
    shape = (200, 300)
    for mode, n in [("fan_in", 200), ("fan_out", 300), ("fan_avg", 250)]:
        for distribution in ["uniform", "untruncated_normal", "truncated_normal"]:
            draw = init.VarianceScaling(3.0, mode, distribution)
            sample = draw(shape, generator=tj.random.Generator(2)).numpy()
            np.testing.assert_allclose(sample.var(), 3.0 / n, rtol=0.03)
    with pytest.raises(ValueError, match="mode must be one of fan_in, fan_out, fan_avg"):
        init.VarianceScaling(mode="fan")
    with pytest.raises(ValueError, match="distribution must be one of"):
        init.VarianceScaling(distribution="cauchy")
    with pytest.raises(ValueError, match="scale must be positive"):
        init.VarianceScaling(scale=0.0)


@pytest.mark.parametrize(
    "shape", [(6, 6), (40, 10), (10, 40), (3, 3, 4, 8), (2, 2, 2, 32)], ids=str
)
def test_orthogonal_is_orthogonal(shape):
    q = init.Orthogonal(gain=1.0)(shape, generator=tj.random.Generator(3)).numpy()
    assert q.shape == shape
    flat = q.reshape(-1, shape[-1]).astype(np.float64)
    rows, cols = flat.shape
    gram = flat.T @ flat if rows >= cols else flat @ flat.T
    np.testing.assert_allclose(gram, np.eye(min(rows, cols)), atol=1e-5)


def test_orthogonal_gain_and_errors():
    q = init.Orthogonal(gain=2.0)((8, 8), generator=tj.random.Generator(0)).numpy()
    np.testing.assert_allclose(q.T @ q, 4.0 * np.eye(8), atol=1e-5)
    with pytest.raises(ValueError, match="at least 2 dims"):
        init.Orthogonal()((5,))


def test_constant_initializers_and_dtypes():
    assert init.get("zeros")((2, 3)).numpy().tolist() == [[0.0] * 3] * 2
    ones = init.get("ones")((2,), dtype="int32")
    assert ones.dtype == "int32" and ones.numpy().tolist() == [1, 1]
    np.testing.assert_array_equal(init.Constant(0.5)((3,)).numpy(), np.full(3, 0.5, np.float32))
    np.testing.assert_array_equal(init.Identity(3.0)((2, 3)).numpy(), 3 * np.eye(2, 3))
    with pytest.raises(TypeError, match="HeNormal draws random floats; it cannot fill a int32"):
        init.get("he_normal")((2, 2), dtype="int32")


def test_random_initializers_keep_keras_defaults():
    g = tj.random.Generator(4)
    normal = init.RandomNormal()((100_000,), generator=g).numpy()
    np.testing.assert_allclose([normal.mean(), normal.std()], [0.0, 0.05], atol=1e-3)
    uniform = init.RandomUniform()((100_000,), generator=g).numpy()
    assert -0.05 <= uniform.min() and uniform.max() < 0.05
    np.testing.assert_allclose(uniform.var(), 0.1**2 / 12, rtol=0.03)
    cut = init.TruncatedNormal(mean=1.0, stddev=0.1)((100_000,), generator=g).numpy()
    assert 0.8 <= cut.min() and cut.max() <= 1.2
    # a normal cut at two standard deviations keeps 0.8796^2 of the variance
    np.testing.assert_allclose(cut.std(), 0.1 * 0.87962566, rtol=0.02)


def test_get_by_snake_or_camel_name_class_instance_or_callable():
    assert isinstance(init.get("he_normal"), init.HeNormal)
    assert isinstance(init.get("HeNormal"), init.HeNormal)
    assert isinstance(init.get("truncated_normal"), init.TruncatedNormal)
    assert isinstance(init.get(init.Orthogonal), init.Orthogonal)
    given = init.Constant(2.0)
    assert init.get(given) is given
    assert init.glorot_uniform is init.GlorotUniform and init.zeros is init.Zeros

    def halves(shape, dtype=None):
        return np.full(shape, 0.5)

    np.testing.assert_array_equal(init.get(halves)((2,)).numpy(), [0.5, 0.5])

    def three(shape, dtype=None):
        return np.zeros(3)

    with pytest.raises(ValueError, match=r"initializer three returned shape \(3,\) for a variable "
                       r"of shape \(2,\)"):  # fmt: skip
        init.get(three)((2,))
    with pytest.raises(ValueError, match=r"unknown initializer 'he_normall'; known: .*he_normal"):
        init.get("he_normall")
    with pytest.raises(TypeError, match="an initializer is a name, an Initializer or a callable"):
        init.get(3)


def test_seeded_initializers_reproduce_and_generators_advance():
    a = init.GlorotUniform(seed=7)((4, 4)).numpy()
    b = init.GlorotUniform(seed=7)((4, 4)).numpy()
    np.testing.assert_array_equal(a, b)
    again = init.GlorotUniform(seed=7)
    first, second = again((4, 4)).numpy(), again((4, 4)).numpy()
    assert not np.array_equal(first, second)  # one seeded stream, not the same draw twice
    g1, g2 = tj.random.Generator(5), tj.random.Generator(5)
    np.testing.assert_array_equal(
        init.get("he_uniform")((3, 3), generator=g1).numpy(),
        init.get("he_uniform")((3, 3), generator=g2).numpy(),
    )


def test_initializer_called_while_tracing_is_concrete():
    drawn = []
    generator = tj.random.Generator(0)

    @tj.function
    def f(x):
        value = init.get("he_normal")((3, 2), generator=generator)
        drawn.append(value)
        return x + 1.0

    f(tj.ones(()))
    assert all(isinstance(v.numpy(), np.ndarray) for v in drawn)  # no symbolic tensor
    # the generator advanced eagerly (as Variable initializers do): the draws differ
    assert not np.array_equal(drawn[0].numpy(), init.get("he_normal")((3, 2), generator=generator))


def test_layers_take_initializers_by_name_or_callable():
    layer = tj.nn.Dense(
        256, 128, kernel_initializer="he_normal", bias_initializer=init.Constant(0.1),
        generator=tj.random.Generator(8),
    )  # fmt: skip
    np.testing.assert_allclose(layer.kernel.numpy().var(), 2.0 / 256, rtol=0.05)
    np.testing.assert_array_equal(layer.bias.numpy(), np.full(128, 0.1, np.float32))
    conv = tj.nn.Conv2D(16, 3, kernel_initializer=lambda shape, dtype: np.ones(shape) * 0.25)
    conv(tj.ones((1, 4, 4, 2)))
    np.testing.assert_array_equal(conv.kernel.numpy(), np.full((3, 3, 2, 16), 0.25, np.float32))
    with pytest.raises(ValueError, match="unknown initializer 'nope'"):
        tj.nn.Dense(2, 2, kernel_initializer="nope")


def test_default_dense_init_is_glorot_uniform_of_the_layer_generator():
    layer = tj.nn.Dense(30, 20, generator=tj.random.Generator(9))
    limit = math.sqrt(6 / 50)
    expected = tj.random.Generator(9).uniform((30, 20), -limit, limit).numpy()
    np.testing.assert_array_equal(layer.kernel.numpy(), expected)
