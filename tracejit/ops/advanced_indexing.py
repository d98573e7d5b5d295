"""numpy's advanced indexing with several integer arrays, and the functional update ``x.at[...]``.

``x[i, j]`` with two integer arrays (or arrays mixed with ints) is one ``gather_index`` node; the
operands are ``x`` and the index arrays, and the ``index`` param is the index as tagged entries
(``("array", k)`` stands for the ``k``-th array operand, the other entries are those of ``slice``:
``("int", 3)``, ``("slice", start, stop, step)``, ``("newaxis",)``). The arrays and ints broadcast
together; their dims go where the advanced indices are when those are adjacent, else first —
numpy's rule, which the array API standard adopts. (One array with slices stays the ``slice`` and
``take`` pair of tracejit/ops/indexing.py, which reads better in the IR.)

Tensors are immutable (the array API standard allows a library without ``__setitem__``); the
functional update is ``x.at[index].set(v)`` / ``.add`` / ``.multiply`` / ``.min`` / ``.max`` /
``.get()``, as in jax: one ``scatter_index`` node with a ``mode`` param, returning a new tensor.
Its VJPs follow jax's: for ``set``, the update written last at an element gets its cotangent; for
``min``/``max``, elements that tie share it equally; ``multiply`` differentiates with respect to
its updates only with ``unique_indices=True`` (jax refuses the same).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np

from tracejit.errors import IndexOutOfRangeError, OpError, OpTypeError
from tracejit.ops.arguments import arg_aval, concrete_value, locates_errors
from tracejit.ops.indexing import (
    FULL_SLICE,
    IndexEntry,
    _check_ints,
    _check_updates,
    _expand_ellipsis,
    _index_error,
    _parse_entry,
    _slice_size,
    index_entries,
)
from tracejit.ops.infer import broadcast_shapes
from tracejit.ops.jvp_rules import linear_jvp, transpose_jvp
from tracejit.ops.like import cast_ct, takes_gradient
from tracejit.ops.registry import bind, defop
from tracejit.types import AVal, is_integer

MODES = ("set", "add", "multiply", "min", "max")


# shapes ------------------------------------------------------------------------------------------
def _region(x: AVal, arrays: Sequence[AVal], index: tuple[IndexEntry, ...]) -> AVal:
    """The aval of ``x[index]`` under numpy's advanced-indexing rules."""
    _check_ints(x, [FULL_SLICE if e[0] == "array" else e for e in index])
    for a in arrays:
        if not is_integer(a.dtype):
            raise OpError("gather_index", f"index arrays must be integers, got {a.dtype}")
    has_array = any(e[0] == "array" for e in index)
    advanced = [i for i, e in enumerate(index) if e[0] == "array" or (has_array and e[0] == "int")]
    broadcast = broadcast_shapes(
        "gather_index", *[arrays[e[1]].shape for e in index if e[0] == "array"]
    )
    before: list[int | None] = []
    after: list[int | None] = []
    axis = 0
    for i, entry in enumerate(index):
        kind = entry[0]
        side = before if not advanced or i < advanced[0] else after
        if kind == "newaxis":
            side.append(1)
            continue
        if kind == "slice":
            side.append(_slice_size(x, entry, x.shape[axis]))
        axis += 1
    rest = list(x.shape[axis:])
    if not advanced:
        return AVal(tuple(before + rest), x.dtype, x.weak)
    between = index[advanced[0] : advanced[-1] + 1]
    adjacent = all(e[0] in ("int", "array") for e in between)
    if adjacent:
        shape = before + list(broadcast) + after + rest
    else:
        shape = list(broadcast) + before + after + rest
    return AVal(tuple(shape), x.dtype, x.weak)


def _python_index(index: tuple[IndexEntry, ...], arrays: Sequence[Any]) -> tuple[Any, ...]:
    out: list[Any] = []
    for entry in index:
        kind = entry[0]
        if kind == "array":
            out.append(arrays[entry[1]])
        elif kind == "int":
            out.append(entry[1])
        elif kind == "newaxis":
            out.append(None)
        else:
            out.append(slice(*entry[1:]))
    return tuple(out)


# gather_index ------------------------------------------------------------------------------------
def _infer_gather(x: AVal, *arrays: AVal, index: tuple[IndexEntry, ...]) -> AVal:
    return _region(x, arrays, index)


def _gather(x: Any, *arrays: Any, index: tuple[IndexEntry, ...]) -> Any:
    return jnp.asarray(x)[_python_index(index, arrays)]


def _gather_vjp(ct: Any, x: Any, *arrays: Any, out: Any, index: tuple[IndexEntry, ...]) -> tuple:
    none = (None,) * len(arrays)
    if not takes_gradient(x):
        return (None, *none)
    from tracejit.ops.creation import zeros_like

    zeros = zeros_like(x)
    grad = bind(SCATTER_INDEX, zeros, ct, *arrays, index=index, mode="add", unique_indices=False)
    return (cast_ct(grad, x), *none)


# scatter_index -----------------------------------------------------------------------------------
def _infer_scatter(
    x: AVal,
    updates: AVal,
    *arrays: AVal,
    index: tuple[IndexEntry, ...],
    mode: str,
    unique_indices: bool,
) -> AVal:
    region = _region(x, arrays, index)
    _check_updates(f"at[].{mode}", region, updates)
    return AVal(x.shape, x.dtype, x.weak)


def _scatter(
    x: Any,
    updates: Any,
    *arrays: Any,
    index: tuple[IndexEntry, ...],
    mode: str,
    unique_indices: bool,
) -> Any:
    x = jnp.asarray(x)
    ref = x.at[_python_index(index, arrays)]
    return getattr(ref, mode)(jnp.asarray(updates).astype(x.dtype), unique_indices=unique_indices)


def _scatter_vjp(
    ct: Any,
    x: Any,
    updates: Any,
    *arrays: Any,
    out: Any,
    index: tuple[IndexEntry, ...],
    mode: str,
    unique_indices: bool,
) -> tuple:
    from tracejit.autodiff.rules import unbroadcast
    from tracejit.ops.creation import ones_like, zeros_like
    from tracejit.ops.elementwise import cast, divide, equal, multiply, where

    none = (None,) * len(arrays)
    wants_x, wants_u = takes_gradient(x), takes_gradient(updates)
    params = {"index": index, "unique_indices": unique_indices}

    def gather(t: Any) -> Any:
        return bind(GATHER_INDEX, t, *arrays, index=index)

    def scatter(target: Any, values: Any, how: str) -> Any:
        return bind(SCATTER_INDEX, target, values, *arrays, mode=how, **params)

    ct_x = ct_u = None
    if mode == "add":
        ct_x = ct if wants_x else None
        ct_u = gather(ct) if wants_u else None
    elif mode == "set":
        if wants_x:
            ct_x = scatter(ct, zeros_like(gather(ct)), "set")
        if wants_u:
            # The update written last at an element is the one that shows: number the updates,
            # scatter the numbers the same way, and keep the cotangent where a number survived.
            from tracejit.ops.creation import arange
            from tracejit.ops.shape import reshape

            region = gather(ct)
            ids = reshape(arange(region.size, dtype=np.int32), region.shape)
            written = scatter(zeros_like(x, dtype=np.int32) - 1, ids, "set")
            ct_u = where(equal(gather(written), ids), region, zeros_like(region))
    elif mode in ("min", "max"):
        # Elements equal to the result share its cotangent equally, as jax's rule does.
        hit_x = cast(equal(x, out), ct.dtype)
        hit_u = cast(equal(updates, gather(out)), ct.dtype)
        count = scatter(hit_x, hit_u, "add")
        share = divide(ct, where(equal(count, 0), ones_like(count), count))
        ct_x = multiply(share, hit_x) if wants_x else None
        ct_u = multiply(gather(share), hit_u) if wants_u else None
    else:  # multiply
        if wants_x:
            ct_x = scatter(ct, updates, "multiply")
        if wants_u:
            if not unique_indices:
                raise OpError(
                    "at[].multiply",
                    "the gradient with respect to the updates is defined only for unique "
                    "indices: pass unique_indices=True if no element is updated twice (jax "
                    "refuses the same)",
                )
            ct_u = gather(multiply(ct, x))
    return (
        None if ct_x is None else cast_ct(ct_x, x),
        None if ct_u is None else unbroadcast(ct_u, updates),
        *none,
    )


# Forward mode: a gather is linear in x; a scatter (set/min/max/multiply) goes through its VJP.
GATHER_INDEX = defop(
    "gather_index", _infer_gather, _gather, _gather_vjp, jvp=linear_jvp("gather_index")
)
SCATTER_INDEX = defop(
    "scatter_index", _infer_scatter, _scatter, _scatter_vjp, jvp=transpose_jvp("scatter_index")
)


# the public entry points -------------------------------------------------------------------------
def parse_index(x: Any, index: Any, op: str) -> tuple[tuple[IndexEntry, ...], list[Any]]:
    """``index`` as tagged entries, with ``("array", k)`` for the ``k``-th index array."""
    aval = arg_aval(op, x)
    entries = _expand_ellipsis(aval, [_parse_entry(entry) for entry in index_entries(aval, index)])
    arrays: list[Any] = []
    tagged: list[IndexEntry] = []
    for entry in entries:
        if entry[0] == "array":
            tagged.append(("array", len(arrays)))
            arrays.append(entry[1])
        else:
            tagged.append(entry)
    _check_ranges(aval, tagged, arrays, op)
    return tuple(tagged), arrays


def _check_ranges(aval: AVal, index: Sequence[IndexEntry], arrays: list[Any], op: str) -> None:
    """Index values that are known and out of range raise (jax would clamp them silently)."""
    axis = 0
    for entry in index:
        if entry[0] == "newaxis":
            continue
        if entry[0] == "array":
            dim = aval.shape[axis]
            values = None if dim is None else concrete_value(arrays[entry[1]])
            if values is not None and values.size:
                bad = values[(values < -dim) | (values >= dim)]
                if bad.size:
                    raise _index_error(
                        aval,
                        f"index {bad.flat[0]} is out of range for axis {axis} of size {dim}",
                        IndexOutOfRangeError,
                    )
        axis += 1


def gather_index(x: Any, index: Any) -> Any:
    """``x[index]`` for an index with several integer arrays (numpy's advanced indexing)."""
    entries, arrays = parse_index(x, index, "slice")
    return bind(GATHER_INDEX, x, *arrays, index=entries)


class _IndexUpdate:
    """``x.at[index]``: the functional update of ``x`` at ``index`` (see ``Tensor.at``)."""

    __slots__ = ("_index", "_x")

    def __init__(self, x: Any, index: Any) -> None:
        self._x, self._index = x, index

    def __repr__(self) -> str:
        return f"_IndexUpdate({self._x!r}, {self._index!r})"

    def get(self) -> Any:
        """``x[index]``."""
        return self._x[self._index]

    def _apply(self, mode: str, values: Any, unique_indices: bool) -> Any:
        return _update(self._x, self._index, values, mode, unique_indices)

    def set(self, values: Any, *, unique_indices: bool = False) -> Any:
        """A new tensor: ``x`` with ``x[index] = values``."""
        return self._apply("set", values, unique_indices)

    def add(self, values: Any, *, unique_indices: bool = False) -> Any:
        """A new tensor: ``x`` with ``x[index] += values`` (repeated indices add up)."""
        return self._apply("add", values, unique_indices)

    def multiply(self, values: Any, *, unique_indices: bool = False) -> Any:
        """A new tensor: ``x`` with ``x[index] *= values``."""
        return self._apply("multiply", values, unique_indices)

    def min(self, values: Any, *, unique_indices: bool = False) -> Any:
        """A new tensor: ``x`` with ``x[index] = minimum(x[index], values)``."""
        return self._apply("min", values, unique_indices)

    def max(self, values: Any, *, unique_indices: bool = False) -> Any:
        """A new tensor: ``x`` with ``x[index] = maximum(x[index], values)``."""
        return self._apply("max", values, unique_indices)


class IndexUpdateHelper:
    """The object ``x.at`` returns; index it to choose where to update."""

    __slots__ = ("_x",)

    def __init__(self, x: Any) -> None:
        self._x = x

    def __getitem__(self, index: Any) -> _IndexUpdate:
        return _IndexUpdate(self._x, index)

    def __repr__(self) -> str:
        return f"IndexUpdateHelper({self._x!r})"


@locates_errors
def _update(x: Any, index: Any, values: Any, mode: str, unique_indices: bool) -> Any:
    op = f"at[].{mode}"
    entries, arrays = parse_index(x, index, op)
    from tracejit.eager.tensor import constant

    dtype = arg_aval(op, x).dtype
    if isinstance(values, (bool, int, float, complex)):
        given: Any = type(values)
    else:
        if not hasattr(values, "aval"):
            values = constant(values)
        given = np.dtype(values.dtype)
    # jax would cast the values to x's dtype silently (1.5 into an int tensor gives 1): only a
    # write that needs no wider dtype is taken.
    if np.dtype(jnp.result_type(dtype, given)) != dtype:
        name = given.__name__ if isinstance(given, type) else str(given)
        raise OpTypeError(
            op,
            f"values of type {name} cannot be written into a tensor of dtype {dtype} without "
            "changing them; cast them first (tj.astype)",
        )
    if isinstance(values, (bool, int, float, complex)):
        values = constant(values, dtype=dtype)  # range-checked: 300 into int8 raises
    return bind(
        SCATTER_INDEX,
        x,
        values,
        *arrays,
        index=entries,
        mode=mode,
        unique_indices=bool(unique_indices),
    )


__all__ = ["GATHER_INDEX", "MODES", "SCATTER_INDEX", "IndexUpdateHelper", "gather_index"]
