"""Issue 11 section 3: plain-data operands are converted at the door (no VJP sees a Python
list), and numpy's reduction functions work on tensors eagerly."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import tracejit as tj

A = [[1.0, 2.0], [3.0, 4.0]]
B = [[1.0, 0.0], [0.0, 2.0]]


@pytest.mark.parametrize("raw", [B, np.array(B, np.float32)], ids=["list", "numpy"])
@pytest.mark.parametrize("side", ["left", "right"])
def test_matmul_gradient_with_plain_data_operand(raw: Any, side: str) -> None:
    x = tj.Variable(A)
    with tj.GradientTape() as tape:
        y = tj.matmul(x, raw) if side == "right" else tj.matmul(raw, x)
        loss = tj.sum(y * y)
    b, a = np.array(B, np.float32), np.array(A, np.float32)
    expected = 2 * (a @ b) @ b.T if side == "right" else b.T @ (2 * (b @ a))
    np.testing.assert_allclose(tape.gradient(loss, x).numpy(), expected, rtol=1e-6)


def test_matmul_gradient_with_list_inside_function() -> None:
    @tj.function
    def f(x: Any) -> Any:
        with tj.GradientTape() as tape:
            tape.watch(x)
            loss = tj.sum(tj.matmul(x, B))
        return tape.gradient(loss, x)

    expected = np.ones((2, 2), np.float32) @ np.array(B, np.float32).T
    np.testing.assert_allclose(f(tj.constant(A)).numpy(), expected)


X = np.array([[1.0, -2.0, 3.0], [4.0, 5.0, -6.0]], np.float32)


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min", "prod", "argmax", "argmin"])
@pytest.mark.parametrize("kwargs", [{}, {"axis": 1}, {"axis": 0, "keepdims": True}])
def test_numpy_reductions_on_tensors(name: str, kwargs: dict[str, Any]) -> None:
    fn = getattr(np, name)
    result = fn(tj.constant(X), **kwargs)
    np.testing.assert_allclose(np.asarray(result), fn(X, **kwargs), rtol=1e-6)


@pytest.mark.parametrize("name", ["any", "all"])
def test_numpy_logical_reductions_on_tensors(name: str) -> None:
    fn = getattr(np, name)
    assert bool(fn(tj.constant(X > 0))) == bool(fn(X > 0))


def test_numpy_dtype_keyword() -> None:
    x = tj.constant([1, 2, 4])
    total = np.sum(x, dtype=np.float32)
    assert total.dtype == np.float32 and float(total) == 7.0
    mean = np.mean(x, dtype=np.float32)
    assert mean.dtype == np.float32 and np.isclose(float(mean), 7.0 / 3.0)


def test_numpy_out_keyword_is_refused_clearly() -> None:
    # The methods refuse numpy-only keywords (tensors are immutable)...
    with pytest.raises(TypeError, match=r"Tensor.sum: out= is not supported"):
        tj.constant(X).sum(out=np.zeros(()))
    with pytest.raises(TypeError, match=r"Tensor.max: unsupported keyword\(s\) initial="):
        tj.constant(X).max(initial=0.0)
    # ...while numpy's own functions compute in numpy (a numpy result, as on TF2 tensors).
    out = np.zeros((), np.float32)
    np.sum(tj.constant(X), out=out)
    assert float(out) == float(X.sum())
    assert float(np.max(tj.constant(X), initial=10.0)) == 10.0


def test_numpy_mean_of_variable() -> None:
    assert float(np.mean(tj.Variable([1.0, 3.0]))) == 2.0
