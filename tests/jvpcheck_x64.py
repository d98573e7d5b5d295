"""Float64 finite-difference check of every differentiable op's forward mode (``tj.jvp``).

Run by ``tests/test_forward_mode.py`` as ``JAX_ENABLE_X64=1 python tests/jvpcheck_x64.py`` (x64
changes dtype canonicalization for the whole process, see ``gradcheck_x64.py``). For the first
sample of each differentiable OpInfo row, in float64, the tangent ``tj.jvp`` gives in a random
direction ``v`` (moving all the float inputs at once) must match the central differences
``(f(x + eps v) - f(x - eps v)) / (2 eps)`` of every float output. Exits non-zero on failure.
"""

from __future__ import annotations

import sys
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np

EPS = 1e-6
RTOL, ATOL = 1e-5, 1e-6


def _outputs(info: Any, rebuild: Any, kwargs: dict[str, Any], tensors: list[Any]) -> list[Any]:
    outs = info.fn(*rebuild(tensors), **kwargs)
    return list(outs) if isinstance(outs, tuple) else [outs]


def check_sample(tj: Any, info: Any, args: Any, kwargs: dict[str, Any], seed: int) -> list[str]:
    """Problems found for one sample (empty when the tangents match finite differences)."""
    from opinfo import split_arrays

    arrays, rebuild = split_arrays(args)
    arrays = [a.astype(np.float64) if a.dtype.kind == "f" else a for a in arrays]
    floats = [i for i, a in enumerate(arrays) if a.dtype.kind == "f"]
    if not floats:
        return []
    rng = np.random.default_rng(seed)
    vs = {i: rng.standard_normal(arrays[i].shape) for i in floats}

    def program(*moved: Any) -> list[Any]:
        tensors = [tj.constant(a) for a in arrays]
        for i, value in zip(floats, moved):
            tensors[i] = value
        return _outputs(info, rebuild, kwargs, tensors)

    _, tangents = tj.jvp(
        program, [tj.constant(arrays[i]) for i in floats], [tj.constant(vs[i]) for i in floats]
    )
    shifted = []
    for sign in (1.0, -1.0):
        moved = [tj.constant(arrays[i] + sign * EPS * vs[i]) for i in floats]
        shifted.append([np.asarray(o.numpy(), np.float64) for o in program(*moved)])
    problems = []
    for k, tangent in enumerate(tangents):
        if tangent is None:
            continue
        numeric = (shifted[0][k] - shifted[1][k]) / (2 * EPS)
        analytic = tangent.numpy()
        scale = max(float(np.max(np.abs(numeric), initial=0.0)), 1.0)
        if not np.allclose(analytic, numeric, rtol=RTOL, atol=ATOL * scale):
            worst = float(np.max(np.abs(analytic - numeric), initial=0.0))
            problems.append(f"{info.id} output {k}: |jvp - finite differences| up to {worst!r}")
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
    start, checked, problems = time.perf_counter(), 0, []
    for info in OPINFOS:
        if info.skip_gradients or not all_ops()[info.name].differentiable:
            continue
        if info.name == "py_function":  # refused by name (tests/test_forward_mode.py)
            continue
        args, kwargs = info.sample_list()[0]
        problems += check_sample(tj, info, args, kwargs, zlib.crc32(f"jvp{info.id}".encode()))
        checked += 1
    for problem in problems:
        print("MISMATCH", problem)
    print(f"checked {checked} samples in float64 in {time.perf_counter() - start:.1f} s")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
