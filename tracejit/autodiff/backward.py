"""The backward walk shared by tapes and compiled-function VJPs: entries in reverse, each VJP
turning output cotangents (cts) into input cts, accumulated per tensor."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tracejit.errors import TracejitError


def backward(
    entries: Sequence[Any], targets: Sequence[Any], seeds: Sequence[Any] | None
) -> dict[int, Any]:
    """Cotangents of every tensor reached from ``targets``, keyed by ``id``.

    ``seeds`` are the targets' output gradients; ones (so a non-scalar target is summed) when
    None. Entries must be in recording (topological) order.
    """
    from tracejit.ops.creation import ones_like

    cts: dict[int, Any] = {}
    if seeds is not None and len(seeds) != len(targets):
        raise TracejitError(
            f"output_gradients has {len(seeds)} tensors but the target has {len(targets)}"
        )
    from tracejit.autodiff.tape import differentiable_dtype

    for i, target in enumerate(targets):
        if not differentiable_dtype(target):
            continue  # integer and bool results carry no gradient (as in TF)
        seed = ones_like(target) if seeds is None else seeds[i]
        _accumulate(cts, target, seed)
    for entry in reversed(entries):
        out_cts = tuple(cts.get(id(o)) for o in entry.outputs)
        if all(c is None for c in out_cts):
            continue
        in_cts = entry.vjp(out_cts)
        if len(in_cts) != len(entry.inputs):
            raise TracejitError(
                f"a gradient rule returned {len(in_cts)} cotangents for {len(entry.inputs)} inputs"
            )
        for inp, ct in zip(entry.inputs, in_cts):
            if ct is not None and hasattr(inp, "dtype"):
                _accumulate(cts, inp, ct)
    return cts


def _accumulate(cts: dict[int, Any], x: Any, ct: Any) -> None:
    key = id(x)
    previous = cts.get(key)
    cts[key] = ct if previous is None else previous + ct
