"""``GradientTape.jacobian`` and ``batch_jacobian``: one backward pass batched by ``tj.vmap``.

The Jacobian of ``target`` is the tape's backward pass applied to every vector of the
cotangent basis (one-hot seeds of the target's shape). Instead of a Python loop of backward
passes, the pass is written as a function of one seed and vectorized with ``tj.vmap`` over the
stacked basis — what TF does with ``experimental_use_pfor=True`` — so it is one batched
backward program (a few dozen nodes in the IR, whatever the target's size).
"""

from __future__ import annotations

import math
from typing import Any

import jax

from tracejit.errors import TracejitError
from tracejit.ops.tensor_methods import is_tensor_leaf


def _check_known(what: str, shape: tuple[int | None, ...]) -> None:
    if None in shape:
        raise TracejitError(
            f"GradientTape.{what} needs the target's shape while tracing, got "
            f"{tuple(shape)} (unknown dims); trace with a known shape (an input_signature "
            "with sizes there)"
        )


def _basis(n: int, shape: tuple[int, ...], dtype: Any) -> Any:
    from tracejit.ops.creation import eye
    from tracejit.ops.shape import reshape

    return reshape(eye(n, dtype=dtype), (n, *shape))


def jacobian(tape: Any, target: Any, sources: Any, unconnected_gradients: str) -> Any:
    """See ``GradientTape.jacobian``."""
    from tracejit.autodiff.backward import backward
    from tracejit.batching import vmap
    from tracejit.ops.creation import zeros
    from tracejit.ops.shape import reshape

    target_shape = tuple(target.shape)
    _check_known("jacobian", target_shape)
    leaves, treedef = jax.tree_util.tree_flatten(sources, is_leaf=is_tensor_leaf)
    n = math.prod(target_shape)
    entries = list(tape._entries)

    def one_row(seed: Any) -> list[Any]:
        cts = backward(entries, [target], [seed])
        return [tape._gradient_of(leaf, cts, "none") for leaf in leaves]

    with tape.stop_recording():
        rows = vmap(one_row)(_basis(n, target_shape, target.dtype)) if n else [None] * len(leaves)
        out = []
        for leaf, row in zip(leaves, rows):
            shape = target_shape + tuple(leaf.shape)
            if row is None:
                out.append(
                    zeros(shape, dtype=leaf.dtype) if unconnected_gradients == "zero" else None
                )
            else:
                out.append(reshape(row, shape))
    return jax.tree_util.tree_unflatten(treedef, out)


def batch_jacobian(tape: Any, target: Any, source: Any, unconnected_gradients: str) -> Any:
    """See ``GradientTape.batch_jacobian``."""
    from tracejit.autodiff.backward import backward
    from tracejit.batching import vmap
    from tracejit.ops.creation import zeros
    from tracejit.ops.manipulation import moveaxis
    from tracejit.ops.shape import broadcast_to, reshape

    target_shape, source_shape = tuple(target.shape), tuple(source.shape)
    _check_known("batch_jacobian", target_shape)
    if not target_shape or not source_shape or target_shape[0] != source_shape[0]:
        raise ValueError(
            "GradientTape.batch_jacobian: the target and the source need the same first "
            f"(batch) dimension, got target shape {target_shape} and source shape "
            f"{source_shape}"
        )
    batch, per_example = target_shape[0], target_shape[1:]
    n = math.prod(per_example)
    entries = list(tape._entries)

    def one_column(seed: Any) -> Any:  # the same one-hot seed for every example
        cts = backward(entries, [target], [broadcast_to(seed, target_shape)])
        return tape._gradient_of(source, cts, "none")

    shape = (batch, *per_example, *source_shape[1:])
    with tape.stop_recording():
        columns = vmap(one_column)(_basis(n, per_example, target.dtype)) if n else None
        if columns is None:
            return zeros(shape, dtype=source.dtype) if unconnected_gradients == "zero" else None
        # columns: (n, batch, *source_shape[1:]) -> (batch, *per_example, *source_shape[1:])
        return reshape(moveaxis(columns, 0, 1), shape)
