"""Float64 finite-difference check of every differentiable op's VJP.

Run by ``tests/test_gradients.py`` as ``JAX_ENABLE_X64=1 python tests/gradcheck_x64.py``: x64
changes how jax (and so tracejit) canonicalizes dtypes for the whole process, so it cannot share
a process with the other tests. For the first samples of each differentiable OpInfo row, in
float64, the tape's gradient of ``sum(op(*inputs) * w)`` dotted with random directions ``v`` must
match central differences ``(f(x + eps v) - f(x - eps v)) / (2 eps)``, each direction
moving all the float inputs at once. Exits non-zero on failure.
"""

from __future__ import annotations

import sys
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np

EPS = 1e-6
RTOL, ATOL = 1e-5, 1e-7
SAMPLES_PER_ROW = 1
DIRECTIONS = 2


def _program(tj: Any, info: Any, rebuild: Any, kwargs: dict[str, Any], ws: list[Any]) -> Any:
    def f(tensors: list[Any]) -> Any:
        outs = info.fn(*rebuild(tensors), **kwargs)
        outs = list(outs) if isinstance(outs, tuple) else [outs]
        terms = [tj.sum(o * w) for o, w in zip(outs, ws, strict=True) if w is not None]
        return sum(terms[1:], terms[0])

    return f


def check_sample(tj: Any, info: Any, args: Any, kwargs: dict[str, Any], seed: int) -> list[str]:
    """Problems found for one sample (empty when the gradient matches finite differences)."""
    from opinfo import split_arrays

    arrays, rebuild = split_arrays(args)
    arrays = [a.astype(np.float64) if a.dtype.kind == "f" else a for a in arrays]
    floats = [i for i, a in enumerate(arrays) if a.dtype.kind == "f"]
    rng = np.random.default_rng(seed)
    outs = info.fn(*rebuild([tj.constant(a) for a in arrays]), **kwargs)
    outs = list(outs) if isinstance(outs, tuple) else [outs]
    ws = [rng.standard_normal(o.shape) if o.dtype.kind == "f" else None for o in outs]
    if not floats or all(w is None for w in ws):
        return []
    f = _program(tj, info, rebuild, kwargs, ws)
    tensors = [tj.constant(a) for a in arrays]
    with tj.GradientTape() as tape:
        tape.watch(tensors)
        value = f(tensors)
    grads = tape.gradient(value, tensors)
    problems = []
    for _ in range(DIRECTIONS):  # one direction moves all the float inputs at once
        vs = {i: rng.standard_normal(arrays[i].shape) for i in floats}
        shifted = []
        for sign in (1.0, -1.0):
            moved = [a + sign * EPS * vs[i] if i in vs else a for i, a in enumerate(arrays)]
            shifted.append(float(f([tj.constant(a) for a in moved])))
        numeric = (shifted[0] - shifted[1]) / (2 * EPS)
        analytic = sum(
            0.0 if grads[i] is None else float(np.sum(grads[i].numpy() * vs[i])) for i in floats
        )
        if abs(numeric - analytic) > ATOL + RTOL * max(abs(numeric), abs(analytic)):
            shapes = [arrays[i].shape for i in floats]
            problems.append(
                f"{info.id} float inputs {shapes}: tape {analytic!r}, "
                f"finite differences {numeric!r}"
            )
    return problems


def main() -> int:
    sys.path.insert(0, str(Path(__file__).parent))
    import jax
    from opinfo import OPINFOS

    import tracejit as tj
    from tracejit.ops.registry import all_ops

    if not jax.config.jax_enable_x64:
        print("run with JAX_ENABLE_X64=1")
        return 2
    dtype = tj.constant(np.ones(2, np.float64)).dtype
    if dtype != np.float64:
        print(f"tj.constant of a float64 array gives {dtype}, not float64")
        return 1
    start, checked, problems = time.perf_counter(), 0, []
    for info in OPINFOS:
        if info.skip_gradients or not all_ops()[info.name].differentiable:
            continue
        for n, (args, kwargs) in enumerate(info.sample_list()[:SAMPLES_PER_ROW]):
            problems += check_sample(tj, info, args, kwargs, zlib.crc32(f"{info.id}{n}".encode()))
            checked += 1
    for problem in problems:
        print("MISMATCH", problem)
    print(f"checked {checked} samples in float64 in {time.perf_counter() - start:.1f} s")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
