"""``tj.shape``, ``tj.size``, ``tj.rank``: a tensor's shape as a tensor, as TF's ops give it.

Where the static shape is fully known (always, eagerly) the answer is a constant; where a
dimension is unknown while tracing (``None`` in an ``input_signature``), ``tj.shape`` emits a
``shape`` node whose value is read when the compiled function runs (jax compiles each concrete
shape, so the lowered node is a constant of that executable). The rank is always known: XLA
needs it.
"""

from __future__ import annotations

import operator
from typing import Any

import jax.numpy as jnp
import numpy as np

from tracejit.eager.tensor import constant
from tracejit.errors import OpTypeError
from tracejit.ops.arguments import arg_aval
from tracejit.ops.reduction import prod
from tracejit.ops.registry import bind, defop
from tracejit.types import AVal, as_dtype, is_integer


def _infer_shape(x: AVal, *, out_type: Any) -> AVal:
    return AVal((len(x.shape),), out_type, False)


def _shape(x: Any, *, out_type: Any) -> Any:
    return jnp.asarray(x.shape, dtype=out_type)


SHAPE = defop("shape", _infer_shape, _shape, differentiable=False)


def _out_type(op: str, out_type: Any) -> Any:
    dtype = as_dtype(out_type)
    if not is_integer(dtype):
        raise OpTypeError(op, f"out_type must be an integer dtype, got {dtype}")
    return dtype


def shape(x: Any, out_type: Any = "int32") -> Any:
    """The shape of ``x`` as a 1-D integer tensor (TF's ``tf.shape``): a constant where the
    shape is known, the run-time shape where a dimension is unknown while tracing.

    >>> import tracejit as tj
    >>> tj.shape(tj.ones((2, 3))).numpy()
    array([2, 3], dtype=int32)
    """
    dtype = _out_type("shape", out_type)
    aval = arg_aval("shape", x)
    if all(d is not None for d in aval.shape):
        return constant(np.asarray(aval.shape, dtype=dtype))
    return bind(SHAPE, x, out_type=dtype)


def size(x: Any, out_type: Any = "int32") -> Any:
    """The number of elements of ``x`` as a 0-d integer tensor (TF's ``tf.size``).

    >>> import tracejit as tj
    >>> int(tj.size(tj.ones((2, 3))))
    6
    """
    dtype = _out_type("size", out_type)
    aval = arg_aval("size", x)
    if all(d is not None for d in aval.shape):
        return constant(np.asarray(int(np.prod(aval.shape, dtype=np.int64)), dtype=dtype))
    return prod(shape(x, dtype))


def rank(x: Any) -> Any:
    """The number of dimensions of ``x`` as a 0-d int32 tensor (TF's ``tf.rank``; always known
    while tracing, so a constant).

    >>> import tracejit as tj
    >>> int(tj.rank(tj.ones((2, 3))))
    2
    """
    return constant(np.asarray(len(arg_aval("rank", x).shape), dtype=np.int32))


# Creation with dimensions known at run time ----------------------------------------------------
# ``tj.ones((tj.shape(x)[0], 1))`` where x's first dim is unknown while tracing: the shape entry
# is a symbolic ``tj.shape(x)[i]``, so the result takes dim i of x (an input of the node), which
# jax knows when it compiles for a concrete x. Each entry of ``dims`` is an int or a pair
# (source input, axis).
Dims = tuple[int | tuple[int, int], ...]


def _resolve(dims: Dims, shapes: tuple[tuple[Any, ...], ...]) -> tuple[Any, ...]:
    return tuple(d if isinstance(d, int) else shapes[d[0]][d[1]] for d in dims)


def _infer_full_dims(*sources: AVal, dims: Dims, fill_value: Any, dtype: Any) -> AVal:
    return AVal(_resolve(dims, tuple(s.shape for s in sources)), dtype, False)


def _full_dims(*sources: Any, dims: Dims, fill_value: Any, dtype: Any) -> Any:
    return jnp.full(_resolve(dims, tuple(s.shape for s in sources)), fill_value, dtype)


FULL_DIMS = defop("full_dims", _infer_full_dims, _full_dims, differentiable=False, foldable=False)


def has_symbolic_dim(shape: Any) -> bool:
    """Whether a shape argument holds a symbolic tensor (a dimension known at run time)."""
    from tracejit.tracing.tracer import Tracer

    return isinstance(shape, (tuple, list)) and any(isinstance(d, Tracer) for d in shape)


def full_dims(op: str, shape: Any, fill_value: Any, dtype: Any) -> Any:
    """A ``full`` whose symbolic dims (each ``tj.shape(x)[i]``) follow x's run-time shape."""
    from tracejit.ops.indexing import SLICE
    from tracejit.tracing.tracer import Tracer

    sources: list[Any] = []
    dims: list[int | tuple[int, int]] = []
    for position, dim in enumerate(shape):
        if not isinstance(dim, Tracer):
            try:
                dims.append(operator.index(dim))
            except TypeError:
                message = f"shape[{position}] must be an int, got {dim!r:.40}"
                raise OpTypeError(op, message) from None
            continue
        producers = {out: node for node in dim.builder.nodes for out in node.outputs}
        node = producers.get(dim.value)
        index = node.params["index"] if node is not None and node.op is SLICE else ()
        source = producers.get(node.inputs[0]) if node is not None and len(index) == 1 else None
        if source is None or source.op is not SHAPE or index[0][0] != "int":
            raise OpTypeError(
                op,
                f"shape[{position}] is a symbolic tensor computed by ops; a dimension known only "
                "at run time must be tj.shape(x)[i] itself (arithmetic on it is not supported: "
                "XLA needs every shape when it compiles). Use tj.ones_like(x) / "
                "tj.broadcast_to for shapes derived from x",
            )
        x = source.inputs[0]
        sources.append(Tracer(x, dim.builder))
        dims.append((len(sources) - 1, index[0][1] % len(x.aval.shape)))
    return bind(FULL_DIMS, *sources, dims=tuple(dims), fill_value=fill_value, dtype=dtype)
