"""Call overhead: tracejit's cached compiled call and eager op vs raw jax, in one process.

(a) cached-call time of ``f(x, y) = x * y + 1`` on float32[8] under ``tj.function`` vs the same
    function under raw ``jax.jit``;
(b) eager per-op time of ``tj.add`` vs ``jnp.add`` on float32[8];
(c) ``jax.jit(f)`` called on tracejit tensors (jax flattens each tensor, a pytree node holding
    its array) vs the same jitted function on jax arrays: the cost of handing tensors to jax.

Targets: (a) <= 1.5x raw jax.jit; (b) <= 1.5x jax eager; (c) <= 3x (a Python flatten per
tensor). Tensors became jax pytree nodes with ``__jax_array__``: (a) must not move, since the
cached call hands jax the arrays themselves, never tensors.

Run by hand: ``python bench/dispatch.py [--repeat 7] [--number 20000]``. Prints medians (of
``repeat`` timings of ``number`` calls each) in microseconds and the ratios.
"""

from __future__ import annotations

import argparse
import statistics
import timeit
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import tracejit as tj

TARGETS = {"compiled call": 1.5, "eager op": 1.5, "jax.jit(tensor)": 3.0}


def median_us(fn: Callable[[], Any], repeat: int, number: int) -> float:
    fn()  # warm up (trace, compile)
    times = timeit.repeat(fn, number=number, repeat=repeat)
    return statistics.median(times) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--number", type=int, default=20000)
    args = parser.parse_args()

    def body(x: Any, y: Any) -> Any:
        return x * y + 1

    compiled = tj.function(body)
    raw = jax.jit(body)
    x_np = np.arange(8, dtype=np.float32)
    x_tj, x_jax = tj.constant(x_np), jnp.asarray(x_np)

    rows = [
        (
            "compiled call",
            median_us(lambda: compiled(x_tj, x_tj), args.repeat, args.number),
            median_us(lambda: raw(x_jax, x_jax), args.repeat, args.number),
            "jax.jit",
        ),
        (
            "eager op",
            median_us(lambda: tj.add(x_tj, x_tj), args.repeat, args.number),
            median_us(lambda: jnp.add(x_jax, x_jax), args.repeat, args.number),
            "jnp eager",
        ),
    ]
    try:
        raw(x_tj, x_tj)
    except TypeError:  # a tracejit without the pytree registration: jax refuses tensors
        pass
    else:
        rows.append(
            (
                "jax.jit(tensor)",
                median_us(lambda: raw(x_tj, x_tj), args.repeat, args.number),
                median_us(lambda: raw(x_jax, x_jax), args.repeat, args.number),
                "jax.jit",
            )
        )
    print(
        f"jax {jax.__version__} on {jax.devices()[0].platform}; float32[8]; median of {args.repeat}"
    )
    header = f"{'case':<15}{'tracejit us':>13}{'baseline us':>13}  {'baseline':<10}"
    print(f"{header}{'ratio':>7}{'target':>8}")
    for name, ours, theirs, baseline in rows:
        ratio = ours / theirs
        verdict = "ok" if ratio <= TARGETS[name] else "MISSED"
        print(
            f"{name:<15}{ours:>13.2f}{theirs:>13.2f}  {baseline:<10}{ratio:>7.2f}"
            f"{'<= ' + str(TARGETS[name]):>8} {verdict}"
        )


if __name__ == "__main__":
    main()
