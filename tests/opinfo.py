"""The per-op sample table: one ``OpInfo`` row per registered op (more when one op has several
public functions, e.g. ``zeros``/``ones``/``full`` all bind the ``full`` op).

Each row gives the public callable, a ``samples(rng)`` function returning ``(args, kwargs)`` pairs
of numpy inputs (broadcasting cases, Python scalar operands, int and float dtypes, axes and
keepdims variants), a numpy reference ``ref`` for values and a jax.numpy reference ``jax_ref`` for
dtypes (jax's promotion rules are tracejit's), both with the public callable's calling convention.

Tolerance rule (``tolerance``): results are compared in their own dtype, to ~10x the rounding
error of a few float ops: float16/bfloat16 rtol 1e-2 / atol 1e-3, float32/complex64 rtol 1e-5 /
atol 1e-6, integers and bools exactly. A row may loosen (never tighten) float tolerances with
``rtol``/``atol`` when the op accumulates rounding error (matmul, reductions, softplus...).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import opinfo_array_api
import opinfo_array_api2
import opinfo_attention
import opinfo_bitwise
import opinfo_conv
import opinfo_custom_gradient
import opinfo_debug
import opinfo_distribute
import opinfo_extra
import opinfo_fft
import opinfo_functions
import opinfo_indexing
import opinfo_jax_call
import opinfo_linalg
import opinfo_nn2
import opinfo_norm
import opinfo_py_function

import tracejit as tj
from tracejit.ops.indexing import index_add, slice_add
from tracejit.ops.like import broadcast_like, reshape_like, split_like, sum_like
from tracejit.ops.nn import erf

Sample = tuple[tuple[Any, ...], dict[str, Any]]
Samples = Callable[[np.random.Generator], list[Sample]]


@dataclass(frozen=True)
class OpInfo:
    """One row of the table: how to call an op, what to call it on, what it should give."""

    name: str  # the registry name of the op the callable binds
    fn: Callable[..., Any]
    samples: Samples
    ref: Callable[..., Any]  # numpy reference: the value oracle
    jax_ref: Callable[..., Any] | None = None  # jax.numpy reference: the dtype oracle (None: ref)
    rtol: float | None = None
    atol: float | None = None
    domain: str = ""  # constraints the samples respect (e.g. "positive inputs")
    variant: str = ""  # tells apart several rows of one op
    # Samples for which tracing with an unknown first dim makes no sense (True: all of them).
    skip_unknown: bool | Callable[[tuple[Any, ...], dict[str, Any]], bool] = False
    # Gradient tests (tests/test_gradients.py): the jax-differentiable reference when it is not
    # ``jax_ref`` (or ``ref``), and the reason a differentiable op's row is left out of them.
    grad_ref: Callable[..., Any] | None = None
    skip_gradients: str = ""

    @property
    def id(self) -> str:
        return f"{self.name}[{self.variant}]" if self.variant else self.name

    def sample_list(self) -> list[Sample]:
        """The row's samples, from a generator seeded by the row's id (stable across runs)."""
        return self.samples(np.random.default_rng(zlib.crc32(self.id.encode())))

    def tolerance(self, dtype: np.dtype) -> tuple[float, float]:
        return tolerance(dtype, self.rtol, self.atol)


def tolerance(
    dtype: np.dtype, rtol: float | None = None, atol: float | None = None
) -> tuple[float, float]:
    """``(rtol, atol)`` for comparing results of ``dtype`` (see the module docstring)."""
    dtype = np.dtype(dtype)
    if dtype in (np.dtype(np.float16), np.dtype(jnp.bfloat16)):
        base = (1e-2, 1e-3)
    elif dtype.kind in "fc":
        base = (1e-5, 1e-6)
    else:
        return 0.0, 0.0
    return max(base[0], rtol or 0.0), max(base[1], atol or 0.0)


# Sample plumbing ---------------------------------------------------------------------------------
def split_arrays(args: Any) -> tuple[list[np.ndarray], Callable[[Any], tuple[Any, ...]]]:
    """The numpy arrays inside ``args`` (nested in lists/tuples), and a function rebuilding
    ``args`` with replacements for them (same container types: a list index stays a list)."""
    arrays: list[np.ndarray] = []

    def strip(node: Any) -> Any:
        if isinstance(node, np.ndarray):
            arrays.append(node)
            return _Slot(len(arrays) - 1)
        if isinstance(node, (list, tuple)):
            return type(node)(strip(item) for item in node)
        return node

    skeleton = strip(tuple(args))

    def rebuild(replacements: Any) -> tuple[Any, ...]:
        def fill(node: Any) -> Any:
            if isinstance(node, _Slot):
                return replacements[node.position]
            if isinstance(node, (list, tuple)):
                return type(node)(fill(item) for item in node)
            return node

        return fill(skeleton)

    return arrays, rebuild


class _Slot:
    def __init__(self, position: int) -> None:
        self.position = position


def leaves(result: Any) -> list[Any]:
    """Flat list of the tensors in an op's result (a tensor, or a tuple of them for split)."""
    return list(result) if isinstance(result, (tuple, list)) else [result]


# Sample makers -----------------------------------------------------------------------------------
def f32(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def f16(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float16)


def pos(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.uniform(0.5, 2.0, shape).astype(np.float32)


def i32(rng: np.random.Generator, *shape: int, low: int = -5, high: int = 6) -> np.ndarray:
    return rng.integers(low, high, shape).astype(np.int32)


def nonzero_i32(rng: np.random.Generator, *shape: int) -> np.ndarray:
    values = i32(rng, *shape)
    return np.where(values == 0, 3, values).astype(np.int32)


def bools(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.random(shape) < 0.5


# Elementwise -------------------------------------------------------------------------------------
def _binary_samples(kind: str) -> Samples:
    def samples(rng: np.random.Generator) -> list[Sample]:
        if kind == "int_nonzero":  # integer division and modulo: no zero divisors
            return [
                ((i32(rng, 3, 4), nonzero_i32(rng, 3, 4)), {}),
                ((i32(rng, 2, 1, 3), nonzero_i32(rng, 4, 1)), {}),
                ((f32(rng, 5), 0.75), {}),
                ((i32(rng, 4), 3), {}),
            ]
        if kind == "bool":
            return [((bools(rng, 3, 4), bools(rng, 3, 4)), {}), ((bools(rng, 2, 3), True), {})]
        if kind == "power":
            return [
                ((pos(rng, 3, 4), f32(rng, 3, 4)), {}),
                ((pos(rng, 2, 1, 3), f32(rng, 4, 1)), {}),
                ((i32(rng, 5, low=0), i32(rng, 5, low=0, high=4)), {}),
                ((pos(rng, 4), 2), {}),
            ]
        first = pos if kind == "divide" else f32
        second = pos if kind == "divide" else f32
        return [
            ((first(rng, 3, 4), second(rng, 3, 4)), {}),
            ((first(rng, 2, 1, 3), second(rng, 4, 1)), {}),  # broadcasting
            ((first(rng, 5), 2.5), {}),  # a weak Python float
            ((i32(rng, 4), nonzero_i32(rng, 2, 4)), {}),  # ints
            ((i32(rng, 3), 2.5), {}),  # int tensor with a Python float -> float32
            ((f16(rng, 3), 2.0), {}),  # float16 stays float16
        ]

    return samples


def _unary_samples(kind: str) -> Samples:
    def samples(rng: np.random.Generator) -> list[Sample]:
        if kind == "positive":
            return [((pos(rng, 3, 4),), {}), ((pos(rng, 5),), {}), ((pos(rng),), {})]
        if kind == "bool":
            return [((bools(rng, 3, 4),), {}), ((bools(rng, 2),), {})]
        rows: list[Sample] = [
            ((f32(rng, 3, 4),), {}),
            ((f32(rng, 2, 3, 2),), {}),
            ((f32(rng),), {}),
        ]
        if kind == "numeric":
            rows.append(((i32(rng, 6),), {}))
        return rows

    return samples


def _binary(name: str, np_fn: Any, jnp_fn: Any, kind: str = "numeric", **extra: Any) -> OpInfo:
    return OpInfo(name, getattr(tj, name), _binary_samples(kind), np_fn, jnp_fn, **extra)


def _unary(name: str, np_fn: Any, jnp_fn: Any, kind: str = "float", **extra: Any) -> OpInfo:
    return OpInfo(name, getattr(tj, name), _unary_samples(kind), np_fn, jnp_fn, **extra)


def _clip_samples(rng: np.random.Generator) -> list[Sample]:
    return [
        ((f32(rng, 3, 4), -0.5, 0.5), {}),
        ((f32(rng, 2, 3), f32(rng, 3) - 1.0, f32(rng, 2, 1) + 1.0), {}),
        ((i32(rng, 6), -2, 3), {}),
    ]


def _where_samples(rng: np.random.Generator) -> list[Sample]:
    return [
        ((bools(rng, 3, 4), f32(rng, 3, 4), f32(rng, 3, 4)), {}),
        ((bools(rng, 2, 1), f32(rng, 3), 0.0), {}),
        ((bools(rng, 5), i32(rng, 5), i32(rng, 5)), {}),
    ]


def _cast_samples(rng: np.random.Generator) -> list[Sample]:
    return [
        ((f32(rng, 3, 4) * 10,), {"dtype": "int32"}),
        ((i32(rng, 5),), {"dtype": "float16"}),
        ((f32(rng, 4),), {"dtype": "bool"}),
        ((bools(rng, 2, 2),), {"dtype": "float32"}),
    ]


def _rsqrt_ref(x: Any) -> Any:
    return 1 / jnp.sqrt(jnp.asarray(x))


ELEMENTWISE = [
    _binary("add", np.add, jnp.add),
    _binary("subtract", np.subtract, jnp.subtract),
    _binary("multiply", np.multiply, jnp.multiply),
    _binary("divide", np.true_divide, jnp.true_divide, "divide", domain="no zero divisors"),
    _binary(
        "floor_divide", np.floor_divide, jnp.floor_divide, "int_nonzero", domain="no zero divisors"
    ),
    _binary("mod", np.mod, jnp.mod, "int_nonzero", domain="no zero divisors"),
    _binary("power", np.power, jnp.power, "power", rtol=1e-4, domain="positive float bases"),
    _binary("maximum", np.maximum, jnp.maximum),
    _binary("minimum", np.minimum, jnp.minimum),
    _unary("negative", np.negative, jnp.negative, "numeric"),
    _unary("exp", np.exp, jnp.exp),
    _unary("log", np.log, jnp.log, "positive", domain="positive inputs"),
    _unary("log1p", np.log1p, jnp.log1p, "positive", domain="positive inputs"),
    _unary("sqrt", np.sqrt, jnp.sqrt, "positive", domain="positive inputs"),
    _unary("rsqrt", lambda x: 1 / np.sqrt(x), _rsqrt_ref, "positive", domain="positive inputs"),
    _unary("square", np.square, jnp.square, "numeric"),
    _unary("abs", np.abs, jnp.abs, "numeric"),
    _unary("sign", np.sign, jnp.sign, "numeric"),
    _unary("tanh", np.tanh, jnp.tanh),
    _unary("stop_gradient", np.asarray, jax.lax.stop_gradient, "numeric"),
    _unary("sin", np.sin, jnp.sin),
    _unary("cos", np.cos, jnp.cos),
    OpInfo("clip", tj.clip, _clip_samples, np.clip, jnp.clip),
    OpInfo("where", tj.where, _where_samples, np.where, jnp.where),
    _binary("equal", np.equal, jnp.equal),
    _binary("not_equal", np.not_equal, jnp.not_equal),
    _binary("less", np.less, jnp.less),
    _binary("less_equal", np.less_equal, jnp.less_equal),
    _binary("greater", np.greater, jnp.greater),
    _binary("greater_equal", np.greater_equal, jnp.greater_equal),
    _binary("logical_and", np.logical_and, jnp.logical_and, "bool"),
    _binary("logical_or", np.logical_or, jnp.logical_or, "bool"),
    _unary("logical_not", np.logical_not, jnp.logical_not, "bool"),
    OpInfo(
        "cast",
        tj.cast,
        _cast_samples,
        lambda x, dtype: np.asarray(x).astype(dtype),
        lambda x, dtype: jnp.asarray(x).astype(dtype),
    ),
]


# Shape ops ---------------------------------------------------------------------------------------
def _transpose_samples(rng: np.random.Generator) -> list[Sample]:
    return [
        ((f32(rng, 3, 4),), {}),
        ((f32(rng, 2, 3, 4),), {"axes": (1, 0, 2)}),
        ((i32(rng, 2, 3, 4),), {"axes": (-1, 0, 1)}),
    ]


def _reshape_samples(rng: np.random.Generator) -> list[Sample]:
    return [
        ((f32(rng, 3, 4), (4, 3)), {}),
        ((f32(rng, 12), (2, -1, 3)), {}),
        ((i32(rng, 2, 3, 2), (-1,)), {}),
        ((f32(rng, 6), 6), {}),
    ]


def _broadcast_to_samples(rng: np.random.Generator) -> list[Sample]:
    return [
        ((f32(rng, 1, 4), (3, 4)), {}),
        ((f32(rng, 3), (2, 3)), {}),
        ((i32(rng, 3, 1), (2, 3, 5)), {}),
    ]


def _expand_dims_samples(rng: np.random.Generator) -> list[Sample]:
    return [
        ((f32(rng, 3, 4), 0), {}),
        ((f32(rng, 3, 4), -1), {}),
        ((i32(rng, 3, 4), (0, 3)), {}),
    ]


def _squeeze_samples(rng: np.random.Generator) -> list[Sample]:
    return [
        ((f32(rng, 3, 1, 4), 1), {}),
        ((f32(rng, 2, 1, 1), (1, -1)), {}),
        ((f32(rng, 1, 3, 1),), {}),
    ]


def _concatenate_samples(rng: np.random.Generator) -> list[Sample]:
    return [
        (([f32(rng, 2, 3), f32(rng, 4, 3)],), {}),
        (([f32(rng, 2, 3), f32(rng, 2, 1), f32(rng, 2, 2)],), {"axis": 1}),
        (([i32(rng, 3), f32(rng, 2)],), {}),  # mixed dtypes promote
        (([f32(rng, 2, 2, 3), f32(rng, 2, 2, 3)],), {"axis": -1}),
    ]


def _stack_samples(rng: np.random.Generator) -> list[Sample]:
    return [
        (([f32(rng, 2, 3), f32(rng, 2, 3)],), {}),
        (([f32(rng, 3), f32(rng, 3), f32(rng, 3)],), {"axis": 1}),
        (([i32(rng, 2, 2), i32(rng, 2, 2)],), {"axis": -1}),
    ]


def _split_samples(rng: np.random.Generator) -> list[Sample]:
    return [
        ((f32(rng, 6, 4), 3), {}),
        ((f32(rng, 5, 4), [1, 3]), {}),
        ((i32(rng, 4, 6), 2), {"axis": 1}),
    ]


def _split_ref(x: Any, how: Any, axis: int = 0) -> tuple[Any, ...]:
    return tuple(np.split(x, how, axis=axis))


def _jnp_split_ref(x: Any, how: Any, axis: int = 0) -> tuple[Any, ...]:
    return tuple(jnp.split(x, how, axis=axis))


def _take_samples(rng: np.random.Generator) -> list[Sample]:
    return [
        ((f32(rng, 4, 5), i32(rng, 3, low=-4, high=4)), {"axis": 0}),
        ((f32(rng, 4, 5), i32(rng, 2, 2, low=0, high=5)), {"axis": 1}),
        ((i32(rng, 3, 4), i32(rng, 5, low=0, high=12)), {}),
    ]


def _getitem_samples(rng: np.random.Generator) -> list[Sample]:
    index = np.array([0, 2, 1], dtype=np.int32)
    return [
        ((f32(rng, 4, 5), (1, slice(None, None, -1))), {}),
        ((f32(rng, 3, 4, 5), (Ellipsis, slice(1, 3))), {}),
        ((f32(rng, 4, 3), (slice(None, None, -2), None)), {}),
        ((f32(rng, 5), -1), {}),
        ((f32(rng, 3, 4, 5), (slice(None), np.array([[0, 2], [1, 1]], np.int32), -1)), {}),
        ((f32(rng, 4, 3), ([3, 0, -1],)), {}),
        ((i32(rng, 3, 4), (None, Ellipsis, index)), {}),
        ((f32(rng, 6, 2), (slice(-2, 1, -2), 0)), {}),
    ]


def _getitem(x: Any, index: Any) -> Any:
    return x[index]


def _jnp_getitem(x: Any, index: Any) -> Any:
    if isinstance(index, tuple):  # jax wants arrays, not lists, as array indices
        index = tuple(np.asarray(i) if isinstance(i, list) else i for i in index)
    return jnp.asarray(x)[index]


def _np_getitem(x: Any, index: Any) -> Any:
    return np.asarray(x)[index]


def _index_add_samples(rng: np.random.Generator) -> list[Sample]:
    return [
        ((f32(rng, 4, 5), i32(rng, 6, low=-4, high=4), f32(rng, 6, 5)), {"axis": 0}),  # repeats
        ((f32(rng, 4, 5), i32(rng, 2, 2, low=0, high=5), f32(rng, 4, 2, 2)), {"axis": 1}),
        ((f32(rng, 3, 4), i32(rng, 5, low=0, high=12), f32(rng, 5)), {}),  # flattened
        ((f32(rng, 4, 3), i32(rng, 2, low=0, high=4), f32(rng, 3)), {"axis": 0}),  # broadcast
        ((i32(rng, 3, 2), i32(rng, 2, low=0, high=3), 7), {"axis": 0}),
    ]


def _np_index_add(x: Any, indices: Any, updates: Any, axis: int | None = None) -> Any:
    x = np.asarray(x)
    out = np.array(x, np.result_type(x, updates)).reshape(-1 if axis is None else x.shape)
    np.add.at(out, (slice(None),) * (axis or 0) + (np.asarray(indices),), updates)
    return out.reshape(x.shape)


def _jnp_index_add(x: Any, indices: Any, updates: Any, axis: int | None = None) -> Any:
    x = jnp.asarray(x)
    flat = x.reshape(-1) if axis is None else x
    out = flat.at[(slice(None),) * (axis or 0) + (jnp.asarray(indices),)].add(updates)
    return out.reshape(x.shape)


def _slice_add_samples(rng: np.random.Generator) -> list[Sample]:
    return [
        ((f32(rng, 4, 5), (1, slice(None, None, -1)), f32(rng, 5)), {}),
        ((f32(rng, 3, 4, 5), (Ellipsis, slice(1, 3)), f32(rng, 3, 4, 2)), {}),
        ((f32(rng, 4, 3), (slice(None, None, -2), None), f32(rng, 2, 1, 3)), {}),
        ((f32(rng, 6, 2), (slice(-2, 1, -2), 0), 1.5), {}),  # a broadcast Python float
        ((i32(rng, 3, 4), (slice(1, None), 2), i32(rng, 2)), {}),
    ]


def _np_slice_add(x: Any, index: Any, updates: Any) -> Any:
    out = np.array(x, np.result_type(np.asarray(x), updates))
    out[index] += updates
    return out


def _jnp_slice_add(x: Any, index: Any, updates: Any) -> Any:
    return jnp.asarray(x).at[index].add(updates)


def _reshape_like_samples(rng: np.random.Generator) -> list[Sample]:
    return [
        ((f32(rng, 3, 4), f32(rng, 2, 6)), {}),
        ((f32(rng, 12), i32(rng, 2, 3, 2)), {}),
        ((i32(rng, 2, 3), f32(rng, 6)), {}),
    ]


def _broadcast_like_samples(rng: np.random.Generator) -> list[Sample]:
    return [
        ((f32(rng, 3, 1), f32(rng, 3, 4)), {}),
        ((f32(rng, 4), f32(rng, 2, 3, 4)), {}),
        ((f32(rng, 2, 1, 3), i32(rng, 4, 3)), {}),
    ]


def _sum_like_samples(rng: np.random.Generator) -> list[Sample]:
    return [
        ((f32(rng, 3, 4), f32(rng, 3, 1)), {}),
        ((f32(rng, 2, 3, 4), f32(rng, 4)), {}),
        ((f32(rng, 2, 3), i32(rng, 1, 1)), {}),
        ((i32(rng, 4, 2), f32(rng, 4, 2)), {}),
    ]


def _np_sum_like(x: Any, like: Any) -> Any:
    x, shape = np.asarray(x), np.shape(like)
    lead = x.ndim - len(shape)
    ones = tuple(lead + i for i, d in enumerate(shape) if d == 1 and x.shape[lead + i] != 1)
    return np.sum(x, axis=tuple(range(lead)) + ones).reshape(shape)


def _jnp_sum_like(x: Any, like: Any) -> Any:
    x, shape = jnp.asarray(x), np.shape(like)
    lead = x.ndim - len(shape)
    ones = tuple(lead + i for i, d in enumerate(shape) if d == 1 and x.shape[lead + i] != 1)
    return jnp.sum(x, axis=tuple(range(lead)) + ones).reshape(shape)


def _split_like_samples(rng: np.random.Generator) -> list[Sample]:
    return [
        ((f32(rng, 5, 4), [f32(rng, 2, 4), f32(rng, 3, 4)]), {}),
        ((f32(rng, 3, 6), [i32(rng, 3, 1), f32(rng, 3, 0), f32(rng, 3, 5)]), {"axis": 1}),
        ((i32(rng, 4), [i32(rng, 4)]), {"axis": -1}),
    ]


def _split_like_ref(module: Any) -> Callable[..., Any]:
    def ref(x: Any, likes: Any, axis: int = 0) -> tuple[Any, ...]:
        bounds = np.cumsum([np.shape(like)[axis] for like in likes])[:-1]
        return tuple(module.split(module.asarray(x), [int(b) for b in bounds], axis=axis))

    return ref


def _squeeze_none(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    # axis=None with an unknown dim is refused on purpose (is it 1 at run time?).
    return len(args) < 2 and kwargs.get("axis") is None


SHAPE = [
    OpInfo("transpose", tj.transpose, _transpose_samples, np.transpose, jnp.transpose),
    OpInfo("reshape", tj.reshape, _reshape_samples, np.reshape, jnp.reshape),
    OpInfo(
        "broadcast_to", tj.broadcast_to, _broadcast_to_samples, np.broadcast_to, jnp.broadcast_to
    ),
    OpInfo("expand_dims", tj.expand_dims, _expand_dims_samples, np.expand_dims, jnp.expand_dims),
    OpInfo(
        "squeeze", tj.squeeze, _squeeze_samples, np.squeeze, jnp.squeeze, skip_unknown=_squeeze_none
    ),
    OpInfo("concatenate", tj.concatenate, _concatenate_samples, np.concatenate, jnp.concatenate),
    OpInfo("stack", tj.stack, _stack_samples, np.stack, jnp.stack),
    OpInfo("split", tj.split, _split_samples, _split_ref, _jnp_split_ref),
    OpInfo("take", tj.take, _take_samples, np.take, jnp.take, domain="in-range indices"),
    OpInfo("slice", _getitem, _getitem_samples, _np_getitem, _jnp_getitem, variant="getitem"),
    OpInfo("index_add", index_add, _index_add_samples, _np_index_add, _jnp_index_add),
    OpInfo("slice_add", slice_add, _slice_add_samples, _np_slice_add, _jnp_slice_add),
    OpInfo(
        "reshape_like",
        reshape_like,
        _reshape_like_samples,
        lambda x, like: np.reshape(x, np.shape(like)),
        lambda x, like: jnp.reshape(x, np.shape(like)),
    ),
    OpInfo(
        "broadcast_like",
        broadcast_like,
        _broadcast_like_samples,
        lambda x, like: np.broadcast_to(x, np.broadcast_shapes(np.shape(x), np.shape(like))),
        lambda x, like: jnp.broadcast_to(x, np.broadcast_shapes(np.shape(x), np.shape(like))),
    ),
    OpInfo("sum_like", sum_like, _sum_like_samples, _np_sum_like, _jnp_sum_like),
    OpInfo(
        "split_like",
        split_like,
        _split_like_samples,
        _split_like_ref(np),
        _split_like_ref(jnp),
        skip_unknown=True,  # the pieces' sizes come from the templates, not from x
    ),
]


# Reductions --------------------------------------------------------------------------------------
def _reduction_samples(kind: str) -> Samples:
    def samples(rng: np.random.Generator) -> list[Sample]:
        if kind == "bool":
            return [
                ((bools(rng, 3, 4),), {}),
                ((bools(rng, 2, 3, 4),), {"axis": (0, 2)}),
                ((bools(rng, 3, 4),), {"axis": -1, "keepdims": True}),
            ]
        make = (lambda *s: rng.uniform(0.5, 1.5, s).astype(np.float32)) if kind == "prod" else None
        floats = make or (lambda *s: f32(rng, *s))
        return [
            ((floats(3, 4),), {}),
            ((floats(2, 3, 4),), {"axis": (0, 2)}),
            ((floats(3, 4),), {"axis": -1, "keepdims": True}),
            ((i32(rng, 2, 5, low=-3, high=4),), {"axis": 1}),
            ((floats(2, 3),), {"axis": None, "keepdims": True}),
        ] + ([((bools(rng, 3, 4),), {"axis": 0})] if kind == "sum" else [])

    return samples


def _arg_samples(rng: np.random.Generator) -> list[Sample]:
    return [
        ((f32(rng, 3, 4),), {}),
        ((f32(rng, 3, 4),), {"axis": 1}),
        ((i32(rng, 2, 3, 4),), {"axis": -2, "keepdims": True}),
        ((f32(rng, 2, 3),), {"keepdims": True}),
    ]


def _reduction(name: str, kind: str = "numeric", **extra: Any) -> OpInfo:
    np_fn, jnp_fn = getattr(np, name), getattr(jnp, name)
    return OpInfo(name, getattr(tj, name), _reduction_samples(kind), np_fn, jnp_fn, **extra)


REDUCTION = [
    _reduction("sum", "sum", rtol=1e-5, atol=1e-5),
    _reduction("mean", rtol=1e-5, atol=1e-5),
    _reduction("max"),
    _reduction("min"),
    _reduction("prod", "prod", rtol=1e-5),
    OpInfo("argmax", tj.argmax, _arg_samples, np.argmax, jnp.argmax),
    OpInfo("argmin", tj.argmin, _arg_samples, np.argmin, jnp.argmin),
    _reduction("any", "bool"),
    _reduction("all", "bool"),
]


# Linear algebra ----------------------------------------------------------------------------------
def _matmul_samples(rng: np.random.Generator) -> list[Sample]:
    return [
        ((f32(rng, 3, 4), f32(rng, 4, 5)), {}),
        ((f32(rng, 2, 3, 4), f32(rng, 4)), {}),
        ((f32(rng, 4), f32(rng, 2, 4, 5)), {}),
        ((f32(rng, 2, 1, 3, 4), f32(rng, 5, 4, 2)), {}),
        ((i32(rng, 3, 3), i32(rng, 3, 2)), {}),
    ]


def _dot_samples(rng: np.random.Generator) -> list[Sample]:
    return [
        ((f32(rng, 4), f32(rng, 4)), {}),
        ((f32(rng, 3, 4), f32(rng, 4, 2)), {}),
        ((f32(rng, 2, 3, 4), f32(rng, 5, 4, 2)), {}),
        ((f32(rng, 3, 4), f32(rng, 4)), {}),
        ((i32(rng, 3, 2), 2), {}),
    ]


LINALG = [
    OpInfo("matmul", tj.matmul, _matmul_samples, np.matmul, jnp.matmul, rtol=1e-5, atol=1e-5),
    OpInfo("dot", tj.dot, _dot_samples, np.dot, jnp.dot, rtol=1e-5, atol=1e-5),
]


# Creation ----------------------------------------------------------------------------------------
def _zeros_samples(rng: np.random.Generator) -> list[Sample]:
    return [(((2, 3),), {}), ((4,), {"dtype": "int32"}), (((),), {"dtype": "bool"})]


def _full_samples(rng: np.random.Generator) -> list[Sample]:
    return [
        (((2, 3), 2.5), {}),  # float32 by default
        ((3, 7), {}),  # int32
        (((2,), True), {}),  # bool
        (((2, 2), 1), {"dtype": "float16"}),
    ]


def _arange_samples(rng: np.random.Generator) -> list[Sample]:
    return [
        ((5,), {}),
        ((1, 7, 2), {}),
        ((0.0, 1.0, 0.1), {}),
        ((3, -3, -2), {"dtype": "float32"}),
        ((2, 2), {}),
    ]


def _eye_samples(rng: np.random.Generator) -> list[Sample]:
    return [((3,), {}), ((2, 4), {"k": 1}), ((4, 3, -1), {"dtype": "int32"})]


def _full_like_samples(rng: np.random.Generator) -> list[Sample]:
    return [
        ((f32(rng, 3, 4), 2.5), {}),
        ((i32(rng, 2, 3), 7), {"dtype": "float32"}),
        ((f32(rng, 5), 1), {}),
    ]


def _like_samples(rng: np.random.Generator) -> list[Sample]:
    return [((f32(rng, 3, 4),), {}), ((i32(rng, 2, 3),), {"dtype": "float16"})]


def _one_hot_samples(rng: np.random.Generator) -> list[Sample]:
    return [
        ((i32(rng, 4, low=0, high=3), 3), {}),
        ((i32(rng, 2, 3, low=-1, high=5), 4), {"axis": 0}),  # out of range: all zeros
        ((i32(rng, 3, low=0, high=2), 2), {"dtype": "int32"}),
    ]


def _np_one_hot(indices: Any, depth: int, dtype: Any = "float32", axis: int = -1) -> Any:
    encoded = (np.asarray(indices)[..., None] == np.arange(depth)).astype(dtype)
    return np.moveaxis(encoded, -1, axis)


def _jnp_one_hot(indices: Any, depth: int, dtype: Any = "float32", axis: int = -1) -> Any:
    return jax.nn.one_hot(indices, depth, dtype=jnp.dtype(dtype), axis=axis)


CREATION = [
    OpInfo("full", tj.zeros, _zeros_samples, np.zeros, jnp.zeros, variant="zeros"),
    OpInfo("full", tj.ones, _zeros_samples, np.ones, jnp.ones, variant="ones"),
    OpInfo("full", tj.full, _full_samples, np.full, jnp.full, variant="full"),
    OpInfo("arange", tj.arange, _arange_samples, np.arange, jnp.arange),
    OpInfo("eye", tj.eye, _eye_samples, np.eye, jnp.eye),
    OpInfo("full_like", tj.full_like, _full_like_samples, np.full_like, jnp.full_like),
    OpInfo(
        "full_like", tj.zeros_like, _like_samples, np.zeros_like, jnp.zeros_like, variant="zeros"
    ),
    OpInfo("full_like", tj.ones_like, _like_samples, np.ones_like, jnp.ones_like, variant="ones"),
    OpInfo("one_hot", tj.one_hot, _one_hot_samples, _np_one_hot, _jnp_one_hot),
]


# Neural-network functions ------------------------------------------------------------------------
def _np_sigmoid(x: Any) -> Any:
    return 1 / (1 + np.exp(-np.asarray(x, np.float64)))


def _np_gelu(x: Any, approximate: bool = True) -> Any:
    x = np.asarray(x, np.float64)
    if approximate:
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


def _np_logsumexp(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    x = np.asarray(x, np.float64)
    top = np.max(x, axis=axis, keepdims=True)
    out = np.log(np.sum(np.exp(x - top), axis=axis, keepdims=True)) + top
    return out if keepdims else np.squeeze(out, axis=axis)


def _np_log_softmax(x: Any, axis: int = -1) -> Any:
    return np.asarray(x, np.float64) - _np_logsumexp(x, axis=axis, keepdims=True)


def _np_softmax(x: Any, axis: int = -1) -> Any:
    return np.exp(_np_log_softmax(x, axis))


def _activation_samples(rng: np.random.Generator) -> list[Sample]:
    return [((f32(rng, 3, 4) * 3,), {}), ((f32(rng, 5),), {}), ((f16(rng, 4),), {})]


def _gelu_samples(rng: np.random.Generator) -> list[Sample]:
    return [((f32(rng, 3, 4) * 3,), {}), ((f32(rng, 5),), {"approximate": False})]


def _softmax_samples(rng: np.random.Generator) -> list[Sample]:
    return [((f32(rng, 3, 4) * 3,), {}), ((f32(rng, 2, 3, 4),), {"axis": 1}), ((f32(rng, 5),), {})]


def _logsumexp_samples(rng: np.random.Generator) -> list[Sample]:
    return [
        ((f32(rng, 3, 4) * 3,), {}),
        ((f32(rng, 2, 3, 4),), {"axis": (0, 2)}),
        ((f32(rng, 3, 4),), {"axis": -1, "keepdims": True}),
    ]


def _erf_samples(rng: np.random.Generator) -> list[Sample]:
    return [((f32(rng, 3, 4) * 2,), {}), ((f32(rng, 5),), {}), ((f16(rng, 4),), {})]


def _jnp_gelu(x: Any, approximate: bool = True) -> Any:
    return jax.nn.gelu(x, approximate=approximate)


NN = [
    OpInfo("relu", tj.nn.relu, _activation_samples, lambda x: np.maximum(x, 0), jax.nn.relu),
    OpInfo("sigmoid", tj.nn.sigmoid, _activation_samples, _np_sigmoid, jax.nn.sigmoid),
    OpInfo(
        "softplus",
        tj.nn.softplus,
        _activation_samples,
        lambda x: np.logaddexp(0, np.asarray(x, np.float64)),
        jax.nn.softplus,
        rtol=1e-5,
    ),
    OpInfo("gelu", tj.nn.gelu, _gelu_samples, _np_gelu, _jnp_gelu, rtol=1e-5, atol=1e-6),
    OpInfo("softmax", tj.nn.softmax, _softmax_samples, _np_softmax, jax.nn.softmax),
    OpInfo("log_softmax", tj.nn.log_softmax, _softmax_samples, _np_log_softmax, jax.nn.log_softmax),
    OpInfo(
        "logsumexp",
        tj.nn.logsumexp,
        _logsumexp_samples,
        _np_logsumexp,
        jax.scipy.special.logsumexp,
    ),
    OpInfo(
        "erf",
        erf,
        _erf_samples,
        lambda x: np.vectorize(math.erf)(np.asarray(x, np.float64)),
        jax.lax.erf,
    ),
]

OPINFOS: list[OpInfo] = (
    ELEMENTWISE
    + SHAPE
    + REDUCTION
    + LINALG
    + CREATION
    + NN
    + opinfo_conv.CONV_OPS
    + opinfo_extra.EXTRA_OPS
    + opinfo_nn2.rows(OpInfo, f32, f16)
    + opinfo_norm.rows(OpInfo, f32, f16)
    + opinfo_attention.rows(OpInfo, f32, f16)
    + opinfo_distribute.DISTRIBUTE_OPS
    + opinfo_debug.DEBUG_OPS
    + opinfo_bitwise.BITWISE_OPS
    + opinfo_array_api.ARRAY_API_OPS
    + opinfo_array_api2.ARRAY_API2_OPS
    + opinfo_functions.FUNCTION_OPS
    + opinfo_custom_gradient.CUSTOM_GRADIENT_OPS
    + opinfo_jax_call.JAX_CALL_OPS
    + opinfo_linalg.rows(OpInfo)
    + opinfo_fft.rows(OpInfo)
    + opinfo_py_function.PY_FUNCTION_OPS
    + opinfo_indexing.INDEXING_OPS
)

# A small sanity check on the table itself (not on tracejit): ids are unique.
assert len({info.id for info in OPINFOS}) == len(OPINFOS), "duplicate OpInfo ids"
