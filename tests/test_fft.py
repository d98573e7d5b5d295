"""Focused tests of tracejit.fft (values, dtypes and gradients are checked by the OpInfo rows in
tests/opinfo_fft.py): the frequency helpers, round trips, traced agreement with unknown batch
dims, and the located errors."""

from __future__ import annotations

import numpy as np
import pytest

import tracejit as tj
from tracejit.errors import OpError, OpTypeError, ShapeError

RNG = np.random.default_rng(7)


def test_all_14_functions_are_there() -> None:
    names = """fft ifft fftn ifftn rfft irfft rfftn irfftn hfft ihfft fftfreq rfftfreq fftshift
    ifftshift""".split()
    assert len(names) == 14 and all(callable(getattr(tj.fft, n)) for n in names)


@pytest.mark.parametrize("n", [1, 4, 5])
@pytest.mark.parametrize("d", [1.0, 0.25])
def test_frequencies_match_numpy(n: int, d: float) -> None:
    got = tj.fft.fftfreq(n, d=d)
    assert got.dtype == tj.float32
    np.testing.assert_allclose(got.numpy(), np.fft.fftfreq(n, d), rtol=1e-6)
    np.testing.assert_allclose(tj.fft.rfftfreq(n, d=d).numpy(), np.fft.rfftfreq(n, d), rtol=1e-6)
    shifted = tj.fft.fftshift(got)
    np.testing.assert_allclose(shifted.numpy(), np.fft.fftshift(np.fft.fftfreq(n, d)), rtol=1e-6)
    np.testing.assert_allclose(tj.fft.ifftshift(shifted).numpy(), got.numpy())


def test_round_trips() -> None:
    x = RNG.standard_normal((3, 6)).astype(np.float32)
    z = (x + 1j * RNG.standard_normal((3, 6))).astype(np.complex64)
    np.testing.assert_allclose(tj.fft.ifft(tj.fft.fft(tj.constant(z))).numpy(), z, atol=1e-5)
    np.testing.assert_allclose(tj.fft.irfft(tj.fft.rfft(tj.constant(x))).numpy(), x, atol=1e-5)
    back = tj.fft.irfftn(tj.fft.rfftn(tj.constant(x)), s=(3, 6))
    np.testing.assert_allclose(back.numpy(), x, atol=1e-5)
    np.testing.assert_allclose(tj.fft.hfft(tj.fft.ihfft(tj.constant(x)), n=6).numpy(), x, atol=1e-5)


def test_traced_with_unknown_batch_dim_matches_eager() -> None:
    x = RNG.standard_normal((4, 8)).astype(np.float32)

    @tj.function(input_signature=[tj.TensorSpec((None, 8))])
    def power(signal):  # noqa: ANN001, ANN202
        spectrum = tj.fft.rfft(signal, norm="ortho")
        return tj.real(spectrum * tj.conj(spectrum))

    np.testing.assert_allclose(
        power(tj.constant(x)).numpy(),
        np.abs(np.fft.rfft(x, norm="ortho")) ** 2,
        rtol=1e-4,
        atol=1e-5,
    )


def test_errors_are_clear_and_located() -> None:
    with pytest.raises(OpTypeError, match="rfft.*real tensor") as info:
        tj.fft.rfft(tj.constant([1 + 1j, 2j]))
    assert "test_fft.py" in str(info.value)
    with pytest.raises(OpError, match="norm must be"):
        tj.fft.fft(tj.ones((4,)), norm="sideways")
    with pytest.raises(ShapeError, match="at least 1"):
        tj.fft.fft(tj.ones((4,)), n=0)
    f = tj.function(lambda x: tj.fft.fft(x), input_signature=[tj.TensorSpec((None,))])
    with pytest.raises(ShapeError, match="unknown while tracing; pass n="):
        f.get_concrete_function()
