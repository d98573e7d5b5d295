"""OpInfo rows for the array API standard's manipulation, statistical, sorting/searching, linear
algebra and set functions (tracejit/ops/manipulation.py, statistics.py, sorting.py, sets.py).

Values are checked against numpy and dtypes against jax.numpy. Functions that are compositions of
existing entries are rows of the entry they bind last, with the function's name as the variant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jax.numpy as jnp
import numpy as np

import tracejit as tj
from tracejit.ops.registry import bind

if TYPE_CHECKING:
    from opinfo import OpInfo

Sample = tuple[tuple[Any, ...], dict[str, Any]]


def f32(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def i32(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.integers(-5, 6, shape).astype(np.int32)


# Manipulation ------------------------------------------------------------------------------------
def _flip_samples(rng: np.random.Generator) -> list[Sample]:
    return [
        ((f32(rng, 3, 4),), {}),
        ((f32(rng, 3, 4, 2),), {"axis": 1}),
        ((i32(rng, 4, 3),), {"axis": (0, -1)}),
    ]


def _roll_samples(rng: np.random.Generator) -> list[Sample]:
    return [
        ((f32(rng, 4, 3), 2), {"axis": 0}),
        ((f32(rng, 3, 4), (1, -2)), {"axis": (0, 1)}),
        ((f32(rng, 3, 4), 5), {}),
        ((i32(rng, 5), -1), {"axis": 0}),
    ]


def _np_roll(x: Any, shift: Any, axis: Any = None) -> Any:
    return np.roll(x, shift, axis)


def _jnp_roll(x: Any, shift: Any, axis: Any = None) -> Any:
    return jnp.roll(x, shift, axis)


def _triangle_samples(rng: np.random.Generator) -> list[Sample]:
    return [
        ((f32(rng, 4, 4),), {}),
        ((f32(rng, 2, 3, 4),), {"k": 1}),
        ((i32(rng, 3, 5),), {"k": -1}),
    ]


def _tile_samples(rng: np.random.Generator) -> list[Sample]:
    return [
        ((f32(rng, 3, 2), (2, 3)), {}),
        ((f32(rng, 2, 3), (2, 1, 2)), {}),
        ((f32(rng, 2, 3, 2), (3,)), {}),
        ((i32(rng, 4), (2,)), {}),
    ]


def _repeat_samples(rng: np.random.Generator) -> list[Sample]:
    return [
        ((f32(rng, 3, 4), 2), {"axis": 1}),
        ((f32(rng, 3, 2), 3), {"axis": 0}),
        ((f32(rng, 2, 3), 2), {}),
        ((f32(rng, 3, 2), np.array([1, 0, 2], np.int32)), {"axis": 0}),
        ((i32(rng, 4), 3), {}),
    ]


def _repeat_arrays_unknown(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    # per-element counts need the number of elements: an unknown dim cannot have them
    return not isinstance(args[1], int) and kwargs.get("axis", None) in (0, None)


def _np_repeat(x: Any, repeats: Any, axis: Any = None) -> Any:
    return np.repeat(x, repeats, axis)


def _jnp_repeat(x: Any, repeats: Any, axis: Any = None) -> Any:
    return jnp.repeat(x, repeats, axis)


def _concat_samples(rng: np.random.Generator) -> list[Sample]:
    return [
        (([f32(rng, 2, 3), f32(rng, 4, 3)],), {}),
        (([f32(rng, 3, 2), f32(rng, 3, 1)],), {"axis": -1}),
        (([f32(rng, 2, 3), f32(rng, 4)],), {"axis": None}),
    ]


def _np_concat(arrays: Any, axis: Any = 0) -> Any:
    return np.concatenate(arrays, axis=axis)


def _jnp_concat(arrays: Any, axis: Any = 0) -> Any:
    return jnp.concatenate(arrays, axis=axis)


def _permute_samples(rng: np.random.Generator) -> list[Sample]:
    return [((f32(rng, 2, 3, 4), (2, 0, 1)), {}), ((i32(rng, 3, 2), (1, 0)), {})]


def _moveaxis_samples(rng: np.random.Generator) -> list[Sample]:
    return [
        ((f32(rng, 2, 3, 4), 0, -1), {}),
        ((f32(rng, 2, 3, 4), (0, 1), (2, 0)), {}),
        ((i32(rng, 3, 2), 1, 0), {}),
    ]


def _matrix_transpose_samples(rng: np.random.Generator) -> list[Sample]:
    return [((f32(rng, 3, 4),), {}), ((f32(rng, 2, 3, 4),), {})]


def _np_matrix_transpose(x: Any) -> Any:
    return np.swapaxes(x, -1, -2)


def _broadcast_arrays_samples(rng: np.random.Generator) -> list[Sample]:
    return [
        ((f32(rng, 3, 1), f32(rng, 4)), {}),
        ((f32(rng, 2, 3), f32(rng, 2, 1)), {}),
        ((i32(rng, 1, 3), i32(rng, 2, 1)), {}),
    ]


def _broadcast_arrays(*arrays: Any) -> Any:  # one tensor, so one row checks them all
    return tj.concat(tj.broadcast_arrays(*arrays))


def _np_broadcast_arrays(*arrays: Any) -> Any:
    return np.concatenate(np.broadcast_arrays(*arrays))


def _jnp_broadcast_arrays(*arrays: Any) -> Any:
    return jnp.concatenate(jnp.broadcast_arrays(*arrays))


def _unstack_samples(rng: np.random.Generator) -> list[Sample]:
    return [((f32(rng, 3, 4),), {}), ((f32(rng, 2, 3, 4),), {"axis": 1}), ((i32(rng, 2, 3),), {})]


def _np_unstack(x: Any, axis: int = 0) -> Any:
    return tuple(np.moveaxis(x, axis, 0))


def _jnp_unstack(x: Any, axis: int = 0) -> Any:
    return tuple(jnp.moveaxis(x, axis, 0))


def _unstack_axis0(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    return kwargs.get("axis", 0) == 0  # an unknown axis gives an unknown number of results


def _manipulation_rows() -> list[OpInfo]:
    from opinfo import OpInfo

    return [
        OpInfo("flip", tj.flip, _flip_samples, np.flip, jnp.flip),
        OpInfo("roll", tj.roll, _roll_samples, _np_roll, _jnp_roll),
        OpInfo("tril", tj.tril, _triangle_samples, np.tril, jnp.tril),
        OpInfo("triu", tj.triu, _triangle_samples, np.triu, jnp.triu),
        OpInfo("tile", tj.tile, _tile_samples, np.tile, jnp.tile),
        OpInfo(
            "repeat",
            tj.repeat,
            _repeat_samples,
            _np_repeat,
            _jnp_repeat,
            skip_unknown=_repeat_arrays_unknown,
        ),
        OpInfo(
            "unstack",
            tj.unstack,
            _unstack_samples,
            _np_unstack,
            _jnp_unstack,
            skip_unknown=_unstack_axis0,
        ),
        OpInfo(
            "concatenate", tj.concat, _concat_samples, _np_concat, _jnp_concat, variant="concat"
        ),
        OpInfo(
            "transpose",
            tj.permute_dims,
            _permute_samples,
            np.transpose,
            jnp.transpose,
            variant="permute_dims",
        ),
        OpInfo(
            "transpose",
            tj.moveaxis,
            _moveaxis_samples,
            np.moveaxis,
            jnp.moveaxis,
            variant="moveaxis",
        ),
        OpInfo(
            "transpose",
            tj.matrix_transpose,
            _matrix_transpose_samples,
            _np_matrix_transpose,
            jnp.matrix_transpose,
            variant="matrix_transpose",
        ),
        OpInfo(
            "concatenate",
            _broadcast_arrays,
            _broadcast_arrays_samples,
            _np_broadcast_arrays,
            _jnp_broadcast_arrays,
            variant="broadcast_arrays",
        ),
    ]


# Statistics --------------------------------------------------------------------------------------
def _cumulative_samples(rng: np.random.Generator) -> list[Sample]:
    with_zeros = f32(rng, 3, 4)
    with_zeros[1, 1] = with_zeros[2, 0] = with_zeros[2, 2] = 0.0  # exact gradients at zeros
    return [
        ((f32(rng, 3, 4),), {"axis": 1}),
        ((f32(rng, 4, 3),), {"axis": 0, "include_initial": True}),
        ((with_zeros,), {"axis": 1}),
        ((f32(rng, 5),), {}),
        ((i32(rng, 3, 4),), {"axis": 1, "dtype": "float32"}),
        ((i32(rng, 2, 3),), {"axis": -1, "include_initial": True}),
    ]


def _np_cumulative(name: str) -> Any:
    def ref(x: Any, axis: Any = None, dtype: Any = None, include_initial: bool = False) -> Any:
        return getattr(np, name)(x, axis=axis, dtype=dtype, include_initial=include_initial)

    return ref


def _jnp_cumulative(name: str) -> Any:
    def ref(x: Any, axis: Any = None, dtype: Any = None, include_initial: bool = False) -> Any:
        return getattr(jnp, name)(x, axis=axis, dtype=dtype, include_initial=include_initial)

    return ref


def _var_samples(rng: np.random.Generator) -> list[Sample]:
    return [
        ((f32(rng, 3, 4),), {}),
        ((f32(rng, 3, 4),), {"axis": 1, "correction": 1}),
        ((f32(rng, 2, 3, 4),), {"axis": (0, 2), "keepdims": True}),
        ((f32(rng, 4, 3),), {"axis": 0, "correction": 0.5}),
        ((i32(rng, 3, 5),), {"axis": -1}),
    ]


def _stat_ref(module: Any, name: str) -> Any:
    def ref(x: Any, axis: Any = None, correction: float = 0.0, keepdims: bool = False) -> Any:
        fn = getattr(module, name)
        if module is np:  # float64 reference values
            x = np.asarray(x, np.float64)
        return fn(x, axis=axis, ddof=correction, keepdims=keepdims)

    return ref


def _count_nonzero_samples(rng: np.random.Generator) -> list[Sample]:
    return [
        ((i32(rng, 3, 4),), {}),
        ((i32(rng, 3, 4),), {"axis": 1}),
        ((f32(rng, 2, 3) * (i32(rng, 2, 3) > 0),), {"axis": (0, 1), "keepdims": True}),
        ((rng.integers(0, 2, (4, 2)).astype(bool),), {"axis": 0}),
    ]


def _diff_samples(rng: np.random.Generator) -> list[Sample]:
    return [
        ((f32(rng, 3, 5),), {}),
        ((f32(rng, 4, 3),), {"axis": 0, "n": 2}),
        ((f32(rng, 3, 4),), {"prepend": f32(rng, 3, 1), "append": f32(rng, 3, 2)}),
        ((i32(rng, 6),), {"n": 3}),
        ((rng.integers(0, 2, (5,)).astype(bool),), {}),
    ]


def _diff(x: Any, axis: int = -1, n: int = 1, prepend: Any = None, append: Any = None) -> Any:
    return tj.diff(x, axis=axis, n=n, prepend=prepend, append=append)


def _statistics_rows() -> list[OpInfo]:
    from opinfo import OpInfo

    return [
        OpInfo(
            "cumulative_sum",
            tj.cumulative_sum,
            _cumulative_samples,
            _np_cumulative("cumulative_sum"),
            _jnp_cumulative("cumulative_sum"),
            rtol=1e-5,
            atol=1e-5,
        ),
        OpInfo(
            "cumulative_prod",
            tj.cumulative_prod,
            _cumulative_samples,
            _np_cumulative("cumulative_prod"),
            _jnp_cumulative("cumulative_prod"),
            rtol=1e-5,
            atol=1e-5,
        ),
        OpInfo(
            "divide",
            tj.var,
            _var_samples,
            _stat_ref(np, "var"),
            _stat_ref(jnp, "var"),
            rtol=1e-5,
            atol=1e-5,
            variant="var",
        ),
        OpInfo(
            "sqrt",
            tj.std,
            _var_samples,
            _stat_ref(np, "std"),
            _stat_ref(jnp, "std"),
            rtol=1e-5,
            atol=1e-5,
            variant="std",
        ),
        OpInfo(
            "sum",
            tj.count_nonzero,
            _count_nonzero_samples,
            np.count_nonzero,
            jnp.count_nonzero,
            variant="count_nonzero",
        ),
        OpInfo("subtract", _diff, _diff_samples, np.diff, jnp.diff, variant="diff"),
    ]


# Sorting and searching ---------------------------------------------------------------------------
def _sort_samples(rng: np.random.Generator) -> list[Sample]:
    return [
        ((f32(rng, 3, 5),), {}),
        ((f32(rng, 4, 3),), {"axis": 0, "descending": True}),
        ((f32(rng, 2, 3, 4),), {"axis": 1, "stable": False}),
        ((i32(rng, 8),), {"descending": True}),
        ((np.array([2.0, np.nan, -1.0, 0.5], np.float32),), {}),
    ]


def _sort_ref(module: Any, name: str) -> Any:
    def ref(x: Any, axis: int = -1, descending: bool = False, stable: bool = True) -> Any:
        if module is jnp:
            return getattr(jnp, name)(x, axis=axis, descending=descending, stable=stable)
        if name == "sort":  # numpy has no descending: sort the negated values (no ties here)
            out = np.sort(-x if descending else x, axis=axis, kind="stable")
            return -out if descending else out
        if descending:  # stable descending order: ties in their original order
            flipped = np.flip(x, axis)
            order = np.argsort(flipped, axis=axis, kind="stable")
            return np.flip(x.shape[axis] - 1 - order, axis)
        return np.argsort(x, axis=axis, kind="stable")

    return ref


def _argsort_samples(rng: np.random.Generator) -> list[Sample]:
    ties = np.array([[1, 3, 1, 2, 3], [0, 0, 0, 1, 0]], np.int32)
    return [
        ((f32(rng, 3, 5),), {}),
        ((f32(rng, 4, 3),), {"axis": 0, "descending": True}),
        ((ties,), {}),
        ((ties,), {"descending": True}),
    ]


def _take_along_axis_samples(rng: np.random.Generator) -> list[Sample]:
    return [
        ((f32(rng, 3, 4), rng.integers(0, 4, (3, 2)).astype(np.int32)), {"axis": 1}),
        ((f32(rng, 4, 3), rng.integers(-4, 4, (5, 3)).astype(np.int32)), {"axis": 0}),
        ((f32(rng, 3, 4), rng.integers(0, 4, (1, 6)).astype(np.int32)), {}),  # broadcast rows
        ((i32(rng, 2, 3, 4), rng.integers(0, 3, (2, 2, 4)).astype(np.int32)), {"axis": 1}),
    ]


def _np_take_along_axis(x: Any, indices: Any, axis: int = -1) -> Any:
    return np.take_along_axis(x, indices, axis=axis)


def _jnp_take_along_axis(x: Any, indices: Any, axis: int = -1) -> Any:
    return jnp.take_along_axis(x, indices, axis=axis)


def _along_axis_add_samples(rng: np.random.Generator) -> list[Sample]:
    repeated = np.array([[0, 0, 2], [1, 3, 1], [2, 2, 2]], np.int32)  # repeats accumulate
    return [
        ((f32(rng, 3, 4), repeated, f32(rng, 3, 3)), {"axis": 1}),
        (
            (f32(rng, 4, 3), rng.integers(0, 4, (2, 3)).astype(np.int32), f32(rng, 2, 3)),
            {"axis": 0},
        ),
    ]


def _along_add_ref(module: Any) -> Any:
    def ref(x: Any, indices: Any, updates: Any, axis: int) -> Any:
        if module is np:
            out = np.array(x, np.float64)
            grid = list(np.indices(np.shape(indices), sparse=True))
            grid[axis] = indices
            np.add.at(out, tuple(grid), updates)
            return out.astype(np.asarray(x).dtype)
        grid = list(jnp.indices(jnp.shape(indices), sparse=True))
        grid[axis] = jnp.asarray(indices)
        return jnp.asarray(x).at[tuple(grid)].add(updates)

    return ref


def _along_axis_add(x: Any, indices: Any, updates: Any, axis: int) -> Any:
    from tracejit.ops.sorting import ALONG_AXIS_ADD

    return bind(ALONG_AXIS_ADD, x, indices, updates, axis=axis)


def _searchsorted_samples(rng: np.random.Generator) -> list[Sample]:
    table = np.sort(f32(rng, 6))
    unsorted = f32(rng, 5)
    return [
        ((table, f32(rng, 3, 4)), {}),
        ((table, np.concatenate([table[:3], f32(rng, 2)])), {"side": "right"}),
        ((np.array([1, 3, 3, 5], np.int32), i32(rng, 6)), {"side": "left"}),
        ((unsorted, f32(rng, 4)), {"sorter": np.argsort(unsorted).astype(np.int32)}),
    ]


def _searchsorted_ref(module: Any) -> Any:
    def ref(x1: Any, x2: Any, side: str = "left", sorter: Any = None) -> Any:
        return module.searchsorted(x1, x2, side=side, sorter=sorter)

    return ref


def _nonzero_samples(rng: np.random.Generator) -> list[Sample]:
    return [
        ((i32(rng, 3, 4),), {"size": 12}),
        ((f32(rng, 5) * (i32(rng, 5) > 0),), {"size": 3}),  # cut
        ((rng.integers(0, 2, (2, 3)).astype(bool),), {"size": 8, "fill_value": -1}),  # padded
    ]


def _nonzero_ref(module: Any) -> Any:
    def ref(x: Any, size: int | None = None, fill_value: Any = None) -> Any:
        if module is jnp:
            return jnp.nonzero(x, size=size, fill_value=fill_value)
        found = np.nonzero(x)
        fill = 0 if fill_value is None else fill_value
        return tuple(
            np.concatenate([f[:size], np.full(max(size - len(f), 0), fill)]).astype(np.int32)
            for f in found
        )

    return ref


def _sorting_rows() -> list[OpInfo]:
    from opinfo import OpInfo

    return [
        OpInfo("sort", tj.sort, _sort_samples, _sort_ref(np, "sort"), _sort_ref(jnp, "sort")),
        OpInfo(
            "argsort",
            tj.argsort,
            _argsort_samples,
            _sort_ref(np, "argsort"),
            _sort_ref(jnp, "argsort"),
        ),
        OpInfo(
            "take_along_axis",
            tj.take_along_axis,
            _take_along_axis_samples,
            _np_take_along_axis,
            _jnp_take_along_axis,
        ),
        OpInfo(
            "along_axis_add",
            _along_axis_add,
            _along_axis_add_samples,
            _along_add_ref(np),
            _along_add_ref(jnp),
            rtol=1e-5,
            atol=1e-5,
        ),
        OpInfo(
            "searchsorted",
            tj.searchsorted,
            _searchsorted_samples,
            _searchsorted_ref(np),
            _searchsorted_ref(jnp),
        ),
        OpInfo("nonzero", tj.nonzero, _nonzero_samples, _nonzero_ref(np), _nonzero_ref(jnp)),
    ]


# Linear algebra ----------------------------------------------------------------------------------
def _tensordot_samples(rng: np.random.Generator) -> list[Sample]:
    return [
        ((f32(rng, 2, 3, 4), f32(rng, 3, 4, 5)), {}),
        ((f32(rng, 3, 4), f32(rng, 4, 2)), {"axes": 1}),
        ((f32(rng, 4, 3, 2), f32(rng, 2, 5, 4)), {"axes": ((0, 2), (2, 0))}),
        ((f32(rng, 3, 2), f32(rng, 4)), {"axes": 0}),
        ((i32(rng, 3, 4), i32(rng, 3, 4)), {"axes": ((1, 0), (1, 0))}),
    ]


def _tensordot_ref(module: Any) -> Any:
    def ref(x1: Any, x2: Any, axes: Any = 2) -> Any:
        return module.tensordot(x1, x2, axes=axes)

    return ref


def _vecdot_samples(rng: np.random.Generator) -> list[Sample]:
    return [
        ((f32(rng, 3, 4), f32(rng, 3, 4)), {}),
        ((f32(rng, 2, 3, 4), f32(rng, 4)), {}),
        ((f32(rng, 4, 3), f32(rng, 2, 4, 3)), {"axis": -2}),
        ((i32(rng, 3, 5), i32(rng, 1, 5)), {}),
    ]


def _vecdot_ref(module: Any) -> Any:
    def ref(x1: Any, x2: Any, axis: int = -1) -> Any:
        if module is np:
            return np.sum(np.conj(x1) * np.asarray(x2), axis=axis)
        return jnp.vecdot(x1, x2, axis=axis)

    return ref


def _linalg_rows() -> list[OpInfo]:
    from opinfo import OpInfo

    return [
        OpInfo(
            "tensordot",
            tj.tensordot,
            _tensordot_samples,
            _tensordot_ref(np),
            _tensordot_ref(jnp),
            rtol=1e-5,
            atol=1e-5,
        ),
        OpInfo(
            "sum",
            tj.vecdot,
            _vecdot_samples,
            _vecdot_ref(np),
            _vecdot_ref(jnp),
            rtol=1e-5,
            atol=1e-5,
            variant="vecdot",
        ),
    ]


# Sets --------------------------------------------------------------------------------------------
def _unique_samples(rng: np.random.Generator) -> list[Sample]:
    return [
        ((rng.integers(0, 4, (3, 4)).astype(np.int32),), {"size": 4}),
        ((rng.integers(-2, 2, (6,)).astype(np.float32),), {"size": 6}),  # padded
        ((rng.integers(0, 9, (4, 2)).astype(np.int32),), {"size": 2}),  # cut
        ((np.array([1.0, 2.0, 1.0], np.float32),), {"size": 4, "fill_value": -1.0}),
    ]


def _np_unique(kind: str) -> Any:
    def ref(x: Any, size: int, fill_value: Any = None) -> Any:
        flat = np.ravel(x)
        values, first, inverse, counts = np.unique(
            flat, return_index=True, return_inverse=True, return_counts=True
        )
        fill = np.min(flat) if fill_value is None else fill_value

        def fit(a: Any, pad: Any, dtype: Any) -> Any:
            return np.concatenate([a[:size], np.full(max(size - len(a), 0), pad)]).astype(dtype)

        results = {
            "values": fit(values, fill, flat.dtype),
            "indices": fit(first, first[0] if len(first) else 0, np.int32),
            "inverse_indices": np.reshape(inverse, np.shape(x)).astype(np.int32),
            "counts": fit(counts, 0, np.int32),
        }
        names = {
            "values": ("values",),
            "counts": ("values", "counts"),
            "inverse": ("values", "inverse_indices"),
            "all": ("values", "indices", "inverse_indices", "counts"),
        }[kind]
        return tuple(results[name] for name in names)

    return ref


def _jnp_unique(kind: str) -> Any:
    def ref(x: Any, size: int, fill_value: Any = None) -> Any:
        out = getattr(jnp, f"unique_{kind}")(x, size=size, fill_value=fill_value)
        return (out,) if kind == "values" else tuple(out)

    return ref


def _tj_unique(kind: str) -> Any:
    def fn(x: Any, size: int, fill_value: Any = None) -> Any:
        out = getattr(tj, f"unique_{kind}")(x, size=size, fill_value=fill_value)
        return (out,) if kind == "values" else tuple(out)  # the op's plain tuple of results

    return fn


def _sets_rows() -> list[OpInfo]:
    from opinfo import OpInfo

    rows = [
        OpInfo(
            "unique",
            _tj_unique(kind),
            _unique_samples,
            _np_unique(kind),
            _jnp_unique(kind),
            variant=kind,
        )
        for kind in ("all", "counts", "inverse", "values")
    ]
    return rows


def _rows() -> list[OpInfo]:
    return (
        _manipulation_rows() + _statistics_rows() + _sorting_rows() + _linalg_rows() + _sets_rows()
    )


_cache: list[Any] = []


def __getattr__(name: str) -> Any:
    # Built lazily: the rows need opinfo.OpInfo, and opinfo imports this module.
    if name == "ARRAY_API2_OPS":
        if not _cache:
            _cache.extend(_rows())
        return _cache
    raise AttributeError(name)
