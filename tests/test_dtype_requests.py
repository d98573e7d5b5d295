"""Dtypes the backend cannot give (issue 11 section 2): a requested 64-bit dtype while jax's
64-bit mode is off warns once per call site, as jax does; data no jax array can hold (float128,
object, strings, datetimes, records) gets a clear error that names the argument."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import pytest

import tracejit as tj
from tracejit.errors import DtypeError, DtypeWarning, OpTypeError, TracejitError

pytestmark = pytest.mark.skipif(
    jax.config.jax_enable_x64, reason="these cases are about 64-bit mode being off"
)

REQUESTS: dict[str, Callable[[], Any]] = {
    "constant": lambda: tj.constant([1.0], dtype=tj.float64),
    "constant_numpy": lambda: tj.constant(np.ones(2), dtype="float64"),
    "zeros": lambda: tj.zeros((2,), dtype="float64"),
    "ones": lambda: tj.ones((2,), dtype=np.float64),
    "full": lambda: tj.full((2,), 3, dtype="int64"),
    "arange": lambda: tj.arange(3, dtype="int64"),
    "eye": lambda: tj.eye(2, dtype="float64"),
    "cast": lambda: tj.cast(tj.ones((2,)), "float64"),
    "astype": lambda: tj.ones((2,)).astype("uint64"),
    "variable": lambda: tj.Variable([1.0, 2.0], dtype="float64"),
    "traced_cast": lambda: tj.function(lambda x: tj.cast(x, "float64"))(tj.ones((2,))),
}
NARROWED = {"float64": "float32", "int64": "int32", "uint64": "uint32"}


@pytest.mark.parametrize("case", sorted(REQUESTS))
def test_a_64_bit_request_warns_and_says_how_to_enable_it(case: str) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = REQUESTS[case]()
    messages = [w for w in caught if issubclass(w.category, DtypeWarning)]
    assert messages, f"{case}: no DtypeWarning"
    text = str(messages[0].message)
    requested = re.search(r"dtype (\w+) was requested", text).group(1)
    assert str(result.dtype) == NARROWED[requested]  # the value jax gives, not a silent surprise
    assert 'jax.config.update("jax_enable_x64", True)' in text
    assert messages[0].filename == __file__  # it points at the user's line, not tracejit's


def test_the_warning_is_shown_once_per_call_site() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # Python's own rule: once per (message, line)
        for _ in range(3):
            tj.zeros((2,), dtype="float64")
        tj.zeros((2,), dtype="float64")  # a second call site
    lines = [w.lineno for w in caught if issubclass(w.category, DtypeWarning)]
    assert len(lines) == 2 and lines[0] != lines[1]


def test_a_dtype_the_backend_gives_does_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tj.constant([1.0], dtype="float32")
        tj.zeros((2,), dtype=tj.int32)
        tj.cast(tj.ones((2,)), "bfloat16")
        tj.constant(np.ones(2))  # float64 *data* (not a request) follows jax: float32, no warning
        tj.zeros((2,), dtype=float)  # Python's float means the default float, as in jax


def test_with_64_bit_mode_on_the_request_is_honoured_without_a_warning() -> None:
    script = textwrap.dedent(
        """
        import warnings
        warnings.simplefilter("error")
        import tracejit as tj
        print(tj.constant([1.0], dtype="float64").dtype, tj.zeros(2, dtype="int64").dtype)
        """
    )
    env = dict(os.environ, JAX_ENABLE_X64="1", JAX_PLATFORMS="cpu")
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["float64", "int64"]


UNHOLDABLE: dict[str, np.ndarray] = {
    "float128": np.ones(2, np.longdouble),
    "complex256": np.ones(2, np.clongdouble),
    "object": np.array([object(), object()]),
    "string": np.array(["a", "b"]),
    "bytes": np.array([b"a", b"b"]),
    "datetime": np.array(["2020-01-01", "2020-01-02"], "datetime64[D]"),
    "record": np.zeros(2, dtype=[("a", "f4")]),
}
if np.dtype(np.longdouble) == np.dtype(np.float64):  # platforms without an extended float
    del UNHOLDABLE["float128"], UNHOLDABLE["complex256"]


def _traced_op(x: np.ndarray) -> Any:
    return tj.function(lambda y: tj.add(y, x))(tj.ones((2,)))


PATHS: dict[str, tuple[Callable[[np.ndarray], Any], type, str]] = {
    "constant": (tj.constant, DtypeError, "tj.constant"),
    "variable": (tj.Variable, DtypeError, "tj.constant"),
    "eager_op": (lambda x: tj.add(x, 1.0), OpTypeError, "add: argument 0"),
    "traced_op": (_traced_op, OpTypeError, "add: argument 1"),
    "function_argument": (tj.function(lambda data: data * 2), DtypeError, "argument 'data'"),
}


@pytest.mark.parametrize("path", sorted(PATHS))
@pytest.mark.parametrize("kind", sorted(UNHOLDABLE))
def test_data_no_jax_array_can_hold_gets_a_clear_error(kind: str, path: str) -> None:
    value = UNHOLDABLE[kind]
    call, error, names = PATHS[path]
    with pytest.raises(error) as info:
        call(value)
    assert isinstance(info.value, TracejitError) and isinstance(info.value, TypeError)
    message = str(info.value)
    assert names in message
    assert f"dtype {value.dtype} cannot be held by a tensor" in message
