"""Eager tensors: construction, dtype rules, conversions and interop with numpy and jax."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

import tracejit as tj


@pytest.mark.parametrize(
    ("value", "dtype"),
    [
        (3.0, np.float32),
        ([1.5, 2.5], np.float32),
        (np.float64(2.0), np.float32),
        (np.ones(2), np.float32),  # float64 arrays are canonicalized as jax does
        (3, np.int32),
        ([1, 2], np.int32),
        (True, np.bool_),
        (np.ones(2, np.float16), np.float16),
        (jnp.ones(2, jnp.bfloat16), jnp.bfloat16),
    ],
)
def test_constant_dtypes_never_float64(value, dtype):
    t = tj.constant(value)
    assert t.dtype == np.dtype(dtype)
    assert not t.aval.weak


def test_constant_with_dtype_and_copy_semantics():
    t = tj.constant([1, 2], dtype="float32")
    assert t.dtype == np.float32
    assert tj.constant(t) is not t
    np.testing.assert_array_equal(tj.constant(t).numpy(), t.numpy())


def test_constant_rejects_objects():
    with pytest.raises(TypeError, match="cannot make a tensor"):
        tj.constant({"a": 1})


def test_convert_to_tensor_passes_tensors_through():
    t = tj.constant([1.0])
    assert tj.convert_to_tensor(t) is t
    assert tj.convert_to_tensor([1, 2]).dtype == np.int32
    assert tj.convert_to_tensor(t, "int32").dtype == np.int32


def test_python_conversions_and_len():
    t = tj.constant([[1.0, 2.0], [3.0, 4.0]])
    assert len(t) == 2
    assert float(t[1, 0]) == 3.0 and int(t[1, 1]) == 4 and bool(t[0, 0])
    assert t[0, 1].item() == 2.0
    assert [row.shape for row in t] == [(2,), (2,)]
    assert f"{t.sum():.1f}" == "10.0"


def test_properties():
    t = tj.ones((2, 3), dtype="int32")
    assert t.shape == (2, 3) and t.ndim == 2 and t.size == 6 and t.dtype == np.int32
    assert t.T.shape == (3, 2)


def test_repr_and_str():
    t = tj.constant([1.0, 2.0])
    assert repr(t) == "tj.Tensor([1., 2.], shape=(2,), dtype=float32)"
    assert str(t) == "[1. 2.]"


def test_numpy_interop():
    t = tj.constant([1.0, 2.0])
    assert isinstance(np.ones(2, np.float32) + t, tj.Tensor)  # numpy defers to tracejit
    np.testing.assert_array_equal(np.asarray(t), [1.0, 2.0])
    assert np.asarray(t, dtype=np.int32).dtype == np.int32
    assert isinstance(t.numpy(), np.ndarray)


def test_jax_interop():
    t = tj.constant([1.0, 2.0])
    out = jnp.sin(t.value)  # the underlying jax array
    np.testing.assert_allclose(np.asarray(out), np.sin([1.0, 2.0]), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(jnp.asarray(np.asarray(t))), [1.0, 2.0])
    assert isinstance(tj.add(jnp.ones(2), t), tj.Tensor)


def test_tensors_are_unhashable_like_arrays():
    with pytest.raises(TypeError):
        hash(tj.constant(1.0))


def test_python_scalars_are_weak_in_ops():
    half = tj.constant([1.0, 2.0], dtype="float16")
    assert (half * 2.0).dtype == np.float16
    assert (tj.constant([1, 2]) * 2.5).dtype == np.float32
    assert (tj.constant([1, 2]) / 2).dtype == np.float32
    assert tj.add(1.0, 2.0).dtype == np.float32


def test_import_does_not_start_jax_backends():
    """Users must be able to set XLA flags or call jax.distributed.initialize after importing."""
    import subprocess
    import sys

    code = (
        "import tracejit\n"
        "from jax._src import xla_bridge\n"
        "check = getattr(xla_bridge, 'backends_are_initialized', None)\n"
        "assert check is None or not check()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
