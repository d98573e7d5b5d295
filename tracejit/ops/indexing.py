"""Indexing: ``x[index]`` (the ``slice`` op for basic indexing) and integer gathers (``take``).

Basic indexing — ints, slices, ``None``, ``...`` — is one ``slice`` node whose ``index`` param
spells the index as a tuple of tagged entries (one per input dim consumed, plus new axes):
``("int", 3)``, ``("slice", start, stop, step)``, ``("newaxis",)``. The ellipsis is expanded and
trailing full slices are dropped, so equal indexings give equal params (and CSE merges them).

An integer array in the index becomes a ``:`` in the ``slice`` node followed by a ``take`` node on
the matching axis of the result; several arrays are one ``gather_index`` node
(tracejit/ops/advanced_indexing.py, which also holds the functional update ``x.at[...]``).
A boolean mask with known values (eagerly) becomes the integer arrays of its true positions, as
numpy defines it; a symbolic mask is refused: the result's shape would depend on its values,
which a graph's avals cannot express.

The gradients of ``take`` and ``slice`` scatter the cotangent back into zeros shaped like the
input, with the two ops that are their transposes: ``index_add`` (a scatter-add along an axis) and
``slice_add`` (add into ``x[index]``). Both use the input's run-time shape, so unknown dims work.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np

from tracejit.errors import IndexOutOfRangeError, OpError, OpTypeError, ShapeError
from tracejit.ops.arguments import arg_aval, concrete_value, locates_errors
from tracejit.ops.infer import jax_dtype, normalize_axis, shape_text
from tracejit.ops.jvp_rules import linear_jvp
from tracejit.ops.like import cast_ct, takes_gradient
from tracejit.ops.registry import bind, defop
from tracejit.ops.tensor_methods import TensorMethods
from tracejit.types import AVal, is_integer

IndexEntry = tuple[Any, ...]
FULL_SLICE: IndexEntry = ("slice", None, None, None)


# take --------------------------------------------------------------------------------------------
def _infer_take(x: AVal, indices: AVal, *, axis: int | None) -> AVal:
    if not is_integer(indices.dtype):
        raise OpTypeError("take", f"indices must be integers, got {indices.dtype}")
    if axis is None:
        return AVal(indices.shape, x.dtype, x.weak)
    normalize_axis("take", axis, x.ndim)
    return AVal(x.shape[:axis] + indices.shape + x.shape[axis + 1 :], x.dtype, x.weak)


def _take(x: Any, indices: Any, *, axis: int | None) -> Any:
    return jnp.take(x, indices, axis=axis)


def _take_vjp(ct: Any, x: Any, indices: Any, *, out: Any, axis: int | None) -> tuple[Any, ...]:
    if not takes_gradient(x):
        return None, None
    from tracejit.ops.creation import zeros_like

    return cast_ct(bind(INDEX_ADD, zeros_like(x), indices, ct, axis=axis), x), None


# index_add: take's transpose ---------------------------------------------------------------------
def _check_updates(op: str, region: AVal, updates: AVal) -> None:
    """``updates`` must broadcast to the shape of the region of ``x`` it is added into."""
    lead = region.ndim - updates.ndim
    if lead < 0 or any(
        u is not None and r is not None and u not in (1, r)
        for u, r in zip(updates.shape, region.shape[lead:], strict=True)
    ):
        raise ShapeError(
            op,
            f"updates of shape {shape_text(updates.shape)} do not broadcast to the indexed "
            f"region of shape {shape_text(region.shape)}",
        )


def _infer_index_add(x: AVal, indices: AVal, updates: AVal, *, axis: int | None) -> AVal:
    region = _infer_take(x, indices, axis=axis)
    _check_updates("index_add", region, updates)
    dtype, weak = jax_dtype("index_add", _index_add, [x, indices, updates], {"axis": axis})
    return AVal(x.shape, dtype, weak)


def _index_add(x: Any, indices: Any, updates: Any, *, axis: int | None) -> Any:
    dtype = jnp.result_type(x, updates)
    x, updates = jnp.asarray(x, dtype), jnp.asarray(updates, dtype)
    if axis is None:
        return x.ravel().at[indices].add(updates).reshape(x.shape)
    return x.at[(slice(None),) * axis + (indices,)].add(updates)


def _index_add_vjp(
    ct: Any, x: Any, indices: Any, updates: Any, *, out: Any, axis: int | None
) -> tuple[Any, ...]:
    from tracejit.autodiff.rules import unbroadcast

    gathered = bind(TAKE, ct, indices, axis=axis) if takes_gradient(updates) else None
    return cast_ct(ct, x), None, None if gathered is None else unbroadcast(gathered, updates)


# slice -------------------------------------------------------------------------------------------
def _index_error(x: AVal, message: str, kind: type[OpError] = OpError) -> OpError:
    return kind("slice", f"{message} (indexing a tensor of shape {shape_text(x.shape)})")


def _infer_slice(x: AVal, *, index: tuple[IndexEntry, ...]) -> AVal:
    _check_ints(x, index)
    shape: list[int | None] = []
    axis = 0
    for entry in index:
        if entry[0] == "newaxis":
            shape.append(1)
            continue
        if entry[0] == "slice":
            shape.append(_slice_size(x, entry, x.shape[axis]))
        axis += 1
    return AVal(tuple(shape) + x.shape[axis:], x.dtype, x.weak)


def _check_ints(x: AVal, index: Sequence[IndexEntry]) -> None:
    """Too many indices, or an int out of range of a known dim, is an error (jax would clamp)."""
    consumed = [entry for entry in index if entry[0] != "newaxis"]
    if len(consumed) > x.ndim:
        raise _index_error(
            x, f"too many indices: {len(consumed)} given for rank {x.ndim}", IndexOutOfRangeError
        )
    for axis, entry in enumerate(consumed):
        dim = x.shape[axis]
        if entry[0] == "int" and dim is not None and not -dim <= entry[1] < dim:
            raise _index_error(
                x,
                f"index {entry[1]} is out of range for axis {axis} of size {dim}",
                IndexOutOfRangeError,
            )


def _slice_size(x: AVal, entry: IndexEntry, dim: int | None) -> int | None:
    _, start, stop, step = entry
    if step == 0:
        raise _index_error(x, "slice step cannot be zero")
    # An unknown dim stays unknown: even ``x[1:3]`` has 2 elements only if the dim is >= 3.
    return None if dim is None else len(range(dim)[start:stop:step])


def _python_index(index: tuple[IndexEntry, ...]) -> tuple[Any, ...]:
    return tuple(
        entry[1] if entry[0] == "int" else None if entry[0] == "newaxis" else slice(*entry[1:])
        for entry in index
    )


def _slice(x: Any, *, index: tuple[IndexEntry, ...]) -> Any:
    return jnp.asarray(x)[_python_index(index)]


def _slice_vjp(ct: Any, x: Any, *, out: Any, index: tuple[IndexEntry, ...]) -> tuple[Any]:
    if not takes_gradient(x):
        return (None,)
    from tracejit.ops.creation import zeros_like

    return (cast_ct(bind(SLICE_ADD, zeros_like(x), ct, index=index), x),)


# slice_add: slice's transpose --------------------------------------------------------------------
def _infer_slice_add(x: AVal, updates: AVal, *, index: tuple[IndexEntry, ...]) -> AVal:
    _check_updates("slice_add", _infer_slice(x, index=index), updates)
    dtype, weak = jax_dtype("slice_add", _slice_add, [x, updates], {"index": index})
    return AVal(x.shape, dtype, weak)


def _slice_add(x: Any, updates: Any, *, index: tuple[IndexEntry, ...]) -> Any:
    dtype = jnp.result_type(x, updates)
    return jnp.asarray(x, dtype).at[_python_index(index)].add(jnp.asarray(updates, dtype))


def _slice_add_vjp(
    ct: Any, x: Any, updates: Any, *, out: Any, index: tuple[IndexEntry, ...]
) -> tuple[Any, ...]:
    from tracejit.autodiff.rules import unbroadcast

    region = bind(SLICE, ct, index=index) if takes_gradient(updates) else None
    return cast_ct(ct, x), None if region is None else unbroadcast(region, updates)


TAKE = defop("take", _infer_take, _take, _take_vjp, jvp=linear_jvp("take"))
SLICE = defop("slice", _infer_slice, _slice, _slice_vjp, jvp=linear_jvp("slice"))
INDEX_ADD = defop(
    "index_add", _infer_index_add, _index_add, _index_add_vjp, jvp=linear_jvp("index_add", (0, 2))
)
SLICE_ADD = defop(
    "slice_add", _infer_slice_add, _slice_add, _slice_add_vjp, jvp=linear_jvp("slice_add", (0, 1))
)


@locates_errors
def take(x: Any, indices: Any, axis: int | None = None) -> Any:
    """Gather elements of ``x`` at integer ``indices`` along ``axis`` (of the flattened ``x``
    when ``axis`` is None), as ``numpy.take``; negative indices count from the end.

    >>> import tracejit as tj
    >>> tj.take(tj.constant([[1, 2], [3, 4]]), tj.constant([1, 1, 0]), axis=0).numpy()
    array([[3, 4],
           [3, 4],
           [1, 2]], dtype=int32)
    """
    return _gather("take", x, indices, axis)


def _gather(op: str, x: Any, indices: Any, axis: int | None, shown_axis: int | None = None) -> Any:
    """``take``, refusing out-of-range indices it can see (``shown_axis``: the axis to name in
    the error, when ``x`` is an intermediate result of indexing)."""
    aval = arg_aval(op, x)
    if axis is not None:
        axis = normalize_axis(op, axis, aval.ndim)
    dim = aval.size if axis is None else aval.shape[axis]
    # Out-of-range indices would silently gather NaN or garbage: refuse them when we can see them.
    values = None if dim is None else concrete_value(indices)
    if values is not None and values.size and values.dtype.kind in "iu":
        bad = values[(values < -dim) | (values >= dim)]
        if bad.size:
            shown = axis if shown_axis is None else shown_axis
            where = "the flattened tensor" if axis is None else f"axis {shown}"
            raise OpError(op, f"index {bad.flat[0]} is out of range for {where} of size {dim}")
    return bind(TAKE, x, indices, axis=axis)


@locates_errors
def index_add(x: Any, indices: Any, updates: Any, axis: int | None = None) -> Any:
    """``x`` with ``updates`` added at integer ``indices`` along ``axis`` (of the flattened ``x``
    when ``axis`` is None); repeated indices add up. The transpose of ``take``: ``updates`` has
    the shape ``take(x, indices, axis)`` has (or broadcasts to it).

    >>> import tracejit as tj
    >>> from tracejit.ops.indexing import index_add
    >>> index_add(tj.zeros(3), tj.constant([0, 2, 0]), tj.constant([1.0, 2.0, 3.0])).numpy()
    array([4., 0., 2.], dtype=float32)
    """
    if axis is not None:
        axis = normalize_axis("index_add", axis, arg_aval("index_add", x).ndim)
    return bind(INDEX_ADD, x, indices, updates, axis=axis)


@locates_errors
def slice_add(x: Any, index: Any, updates: Any) -> Any:
    """``x`` with ``updates`` added into ``x[index]``, for basic indexes (ints, slices, None,
    ``...``): the transpose of ``x[index]``.

    >>> import tracejit as tj
    >>> from tracejit.ops.indexing import slice_add
    >>> slice_add(tj.zeros((2, 3)), (1, slice(None, None, 2)), 5.0).numpy()
    array([[0., 0., 0.],
           [5., 0., 5.]], dtype=float32)
    """
    aval = arg_aval("slice_add", x)
    entries = [_parse_entry(entry) for entry in (index if isinstance(index, tuple) else (index,))]
    if any(entry[0] == "array" for entry in entries):
        raise OpError("slice_add", "takes basic indexes only; use index_add for integer arrays")
    basic = _expand_ellipsis(aval, entries)
    _check_ints(aval, basic)
    while basic and basic[-1] == FULL_SLICE:
        basic.pop()
    return bind(SLICE_ADD, x, updates, index=tuple(basic))


# getitem -----------------------------------------------------------------------------------------
@locates_errors
def getitem(x: Any, index: Any) -> Any:
    """``x[index]`` with numpy semantics: basic indexing (ints, slices, None, ``...``) and
    integer-array indexing (several arrays broadcast together, as numpy and the array API).

    >>> import tracejit as tj
    >>> x = tj.reshape(tj.arange(12), (3, 4))
    >>> x[1:, ::-2].numpy()
    array([[ 7,  5],
           [11,  9]], dtype=int32)
    >>> x[..., [0, 3]].shape
    (3, 2)
    """
    aval = arg_aval("slice", x)
    widened, widened_index = _zero_d_masks(x, aval, index)
    if widened is not None:
        return getitem(widened, widened_index)
    raw = index_entries(aval, index)
    entries = [_parse_entry(entry) for entry in raw]
    arrays = [i for i, entry in enumerate(entries) if entry[0] == "array"]
    expanded = _expand_ellipsis(aval, entries)
    if len(arrays) > 1 or (arrays and _moves_to_front(entries, expanded)):
        # Several index arrays (or one that numpy moves to the front): one gather_index node.
        # (advanced_indexing builds on this module, hence the import here.)
        from tracejit.ops.advanced_indexing import gather_index

        return gather_index(x, tuple(raw))
    basic = [FULL_SLICE if entry[0] == "array" else entry for entry in expanded]
    _check_ints(aval, basic)  # eagerly too: jax clamps out-of-range ints instead of failing
    while basic and basic[-1] == FULL_SLICE:
        basic.pop()
    # Always an op, even for x[:] or x[...]: on a Variable that is a read (a snapshot of its
    # value now), never the variable itself, which later assignments would change.
    result = bind(SLICE, x, index=tuple(basic))
    if not arrays:
        return result
    axis = _gather_axis(aval, entries, expanded)
    at = next(i for i, entry in enumerate(expanded) if entry[0] == "array")
    x_axis = sum(entry[0] != "newaxis" for entry in expanded[:at])
    return _gather("slice", result, entries[arrays[0]][1], axis, shown_axis=x_axis)


def index_entries(aval: AVal, index: Any) -> list[Any]:
    """The elements of ``index`` (into a tensor of ``aval``), with each boolean mask of known
    values (eagerly) replaced by the integer arrays of its true positions — numpy's definition
    of ``x[mask]``. A symbolic mask gets the error that says why it cannot be."""
    raw = list(index) if isinstance(index, tuple) else [index]
    if not any(_is_mask(entry) for entry in raw):
        return raw
    sizes = [_consumes(entry) for entry in raw]
    fill = aval.ndim - sum(sizes)  # the dims an ellipsis stands for
    out: list[Any] = []
    axis = 0
    for entry, size in zip(raw, sizes, strict=True):
        if entry is Ellipsis:
            axis += fill
        if not _is_mask(entry):
            out.append(entry)
            axis += size
            continue
        values = concrete_value(entry)
        if values is None or values.ndim == 0:
            raise _mask_error()
        dims = aval.shape[axis : axis + values.ndim]
        if len(dims) < values.ndim or any(
            d is not None and d != m for d, m in zip(dims, values.shape, strict=True)
        ):
            raise _index_error(
                aval,
                f"a boolean mask of shape {shape_text(values.shape)} does not match the "
                f"dimensions {shape_text(dims)} it indexes (from axis {axis})",
                IndexOutOfRangeError,
            )
        out.extend(np.asarray(i, np.int32) for i in np.nonzero(values))
        axis += values.ndim
    return out


def _zero_d_masks(x: Any, aval: AVal, index: Any) -> tuple[Any, Any]:
    """numpy reads a 0-d mask as a new axis of length 1 (True) or 0 (False), indexed there:
    ``(x with that axis, the index with the mask as an array of zeros)``, or ``(None, index)``
    when the index has no 0-d mask of known value."""
    raw = list(index) if isinstance(index, tuple) else [index]
    at = next((i for i, e in enumerate(raw) if _is_mask(e) and _consumes(e) == 0), None)
    if at is None:
        return None, index
    values = concrete_value(raw[at])
    if values is None:
        raise _mask_error()
    sizes = [_consumes(entry) for entry in raw]
    fill = aval.ndim - sum(sizes)
    axis = sum(fill if e is Ellipsis else n for e, n in zip(raw[:at], sizes[:at], strict=True))
    expanded = getitem(x, (slice(None),) * axis + (None,))
    raw[at] = np.zeros(int(bool(values)), np.int32)
    return expanded, tuple(raw)


def _consumes(entry: Any) -> int:
    """How many dims of ``x`` an index entry uses up (an ellipsis: 0 here, filled in later)."""
    if entry is None or entry is Ellipsis:
        return 0
    if _is_mask(entry):
        return len(entry.shape) if hasattr(entry, "shape") else int(np.ndim(entry))
    return 1


def _is_mask(entry: Any) -> bool:
    if isinstance(entry, (TensorMethods, np.ndarray)):
        return entry.dtype == np.bool_
    if isinstance(entry, list):
        return np.asarray(entry).dtype == np.bool_
    return False


def _parse_entry(entry: Any) -> IndexEntry:
    """One element of an index tuple as a tagged entry (``("array", indices)`` for arrays)."""
    if entry is None:
        return ("newaxis",)
    if entry is Ellipsis:
        return ("ellipsis",)
    if isinstance(entry, slice):
        return ("slice", _bound(entry.start), _bound(entry.stop), _bound(entry.step))
    if isinstance(entry, (bool, np.bool_)):
        raise _mask_error()
    if isinstance(entry, (int, np.integer)):
        return ("int", int(entry))
    aval = arg_aval("slice", entry)
    if aval.dtype == np.bool_:
        raise _mask_error()
    if not is_integer(aval.dtype):
        raise OpTypeError(
            "slice", f"indices must be integers, slices, None or ..., got an array of {aval.dtype}"
        )
    value = concrete_value(entry) if aval.ndim == 0 else None
    if value is not None:
        return ("int", int(value))  # a concrete 0-d index is just an int
    if not isinstance(entry, TensorMethods):
        entry = np.asarray(entry)
    return ("array", entry)


def _bound(part: Any) -> int | None:
    if part is None:
        return None
    if isinstance(part, TensorMethods) and concrete_value(part) is None:
        raise OpError(
            "slice",
            "slice bounds must be known while tracing (Python ints), got a symbolic "
            "tensor; pass the bound as a Python int, or gather with tj.take",
        )
    try:
        return operator.index(part)
    except TypeError:
        raise OpTypeError(
            "slice", f"slice bounds must be integers or None, got {type(part).__name__}"
        ) from None


def _mask_error() -> OpError:
    return OpError(
        "slice",
        "boolean mask indexing needs the mask's values: it works eagerly, but inside "
        "tj.function the result's shape would depend on them. Use tj.where(mask, x, 0) to "
        "select values, or tj.nonzero(mask, size=...) for a fixed number of indices",
    )


def _expand_ellipsis(aval: AVal, entries: list[IndexEntry]) -> list[IndexEntry]:
    """Replace ``...`` by as many full slices as the dims it stands for."""
    ellipses = [i for i, entry in enumerate(entries) if entry[0] == "ellipsis"]
    if len(ellipses) > 1:
        raise _index_error(aval, "an index can only have a single ellipsis ('...')")
    consumed = sum(entry[0] not in ("newaxis", "ellipsis") for entry in entries)
    if consumed > aval.ndim:
        raise _index_error(
            aval, f"too many indices: {consumed} given for rank {aval.ndim}", IndexOutOfRangeError
        )
    if not ellipses:
        return entries
    at = ellipses[0]
    return entries[:at] + [FULL_SLICE] * (aval.ndim - consumed) + entries[at + 1 :]


def _moves_to_front(entries: list[IndexEntry], expanded: list[IndexEntry]) -> bool:
    """numpy moves the array's dims to the front when int indices and the array index are
    separated by a slice, None or ellipsis: a ``take`` on the sliced result cannot say that."""
    at = next(i for i, entry in enumerate(expanded) if entry[0] == "array")
    axis = sum(entry[0] in ("slice", "newaxis") for entry in expanded[:at])
    advanced = [i for i, entry in enumerate(entries) if entry[0] in ("int", "array")]
    between = entries[advanced[0] : advanced[-1] + 1]
    return bool(axis) and any(entry[0] not in ("int", "array") for entry in between)


def _gather_axis(aval: AVal, entries: list[IndexEntry], expanded: list[IndexEntry]) -> int:
    """The axis of the basic-indexed result where the (single) array index applies."""
    at = next(i for i, entry in enumerate(expanded) if entry[0] == "array")
    return sum(entry[0] in ("slice", "newaxis") for entry in expanded[:at])
