"""``tj.vmap``: the registry walk (every op batches or says why not), the OpInfo table (vmap of
each op over a stacked batch equals the stack of per-example eager results), composition with
``tj.grad`` and with itself (checked against ``jax.vmap``), control flow, and the errors."""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from opinfo import OPINFOS, OpInfo, leaves, split_arrays

import tracejit as tj
from tracejit.errors import BatchingError
from tracejit.ops.registry import all_ops

BATCH = 3
SAMPLES = 2  # per row, for each layout
TRACED_SAMPLES = 1


# The registry walk -----------------------------------------------------------------------------
def test_every_op_has_a_batching_rule_or_says_why_not() -> None:
    missing = sorted(
        name for name, op in all_ops().items() if not callable(op.batch) and not op.not_batchable
    )
    assert not missing, (
        f"ops without a batching rule: {missing}; give each a rule in "
        "tracejit/ops/batching_rules.py (most ops share a generic one), or set_batch_rule(op, "
        "None, reason) saying why it never needs one"
    )


# The OpInfo table ------------------------------------------------------------------------------
def _examples(array: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """BATCH examples of one sample array: itself and shuffles of its elements (the same set of
    values, so domain constraints — positive inputs, valid indices — still hold)."""
    out = [array]
    for _ in range(BATCH - 1):
        out.append(rng.permutation(array.reshape(-1)).reshape(array.shape))
    return out


def _eager_leaves(info: OpInfo, rebuild: Any, arrays: list[np.ndarray], kwargs: Any) -> list[Any]:
    return [r.numpy() for r in leaves(info.fn(*rebuild([tj.constant(a) for a in arrays]), **kwargs))]


LAYOUTS = ("all_axis0", "first_last_axis")
CASES = [
    pytest.param(info, args, kwargs, layout, id=f"{info.id}-{i}-{layout}")
    for info in OPINFOS
    for i, (args, kwargs) in enumerate(info.sample_list()[:SAMPLES])
    for layout in LAYOUTS
]
TRACED_CASES = [
    pytest.param(info, args, kwargs, "all_axis0", id=f"{info.id}-{i}")
    for info in OPINFOS
    for i, (args, kwargs) in enumerate(info.sample_list()[:TRACED_SAMPLES])
]


def _batched_call(
    info: OpInfo, args: Any, kwargs: Any, layout: str, traced: bool
) -> tuple[list[Any], list[np.ndarray]]:
    arrays, rebuild = split_arrays(args)
    if not arrays:
        pytest.skip("no tensor operands to map over")
    rng = np.random.default_rng(0)
    per_array = [_examples(a, rng) for a in arrays]
    if layout == "all_axis0":
        axes = [0] * len(arrays)
        batched = [np.stack(ex) for ex in per_array]
        examples = [[ex[k] for ex in per_array] for k in range(BATCH)]
    else:  # only the first array mapped, along its last axis; the others shared
        if arrays[0].ndim == 0 and len(arrays) == 1:
            pass
        axes = [-1] + [None] * (len(arrays) - 1)
        batched = [np.stack(per_array[0], axis=-1)] + arrays[1:]
        examples = [[per_array[0][k], *arrays[1:]] for k in range(BATCH)]

    def per_example(*tensors: Any) -> Any:
        return info.fn(*rebuild(list(tensors)), **kwargs)

    mapped = tj.vmap(per_example, in_axes=tuple(axes))
    call = tj.function(mapped) if traced else mapped
    result = call(*[tj.constant(b) for b in batched])
    expected = [_eager_leaves(info, rebuild, ex, kwargs) for ex in examples]
    stacked = [np.stack([e[j] for e in expected]) for j in range(len(expected[0]))]
    return leaves(result), stacked


def _compare(info: OpInfo, got: list[Any], want: list[np.ndarray]) -> None:
    assert len(got) == len(want), f"{info.id}: {len(got)} outputs, expected {len(want)}"
    for g, w in zip(got, want, strict=True):
        assert isinstance(g, tj.Tensor)
        assert g.dtype == w.dtype, f"{info.id}: dtype {g.dtype}, per-example {w.dtype}"
        assert g.shape == w.shape, f"{info.id}: shape {g.shape}, per-example {w.shape}"
        rtol, atol = info.tolerance(w.dtype)
        np.testing.assert_allclose(
            g.numpy(), w, rtol=max(rtol, 1e-5), atol=max(atol, 1e-5), err_msg=info.id
        )


@pytest.mark.parametrize(("info", "args", "kwargs", "layout"), CASES)
def test_vmap_of_op_equals_stack_of_examples(
    info: OpInfo, args: tuple[Any, ...], kwargs: dict[str, Any], layout: str
) -> None:
    with redirect_stdout(io.StringIO()):  # the print op's rows
        got, want = _batched_call(info, args, kwargs, layout, traced=False)
    _compare(info, got, want)


@pytest.mark.parametrize(("info", "args", "kwargs", "layout"), TRACED_CASES)
def test_vmap_inside_function_equals_stack_of_examples(
    info: OpInfo, args: tuple[Any, ...], kwargs: dict[str, Any], layout: str
) -> None:
    with redirect_stdout(io.StringIO()):
        got, want = _batched_call(info, args, kwargs, layout, traced=True)
    _compare(info, got, want)
