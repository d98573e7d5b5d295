"""Time to the first step: tracing, passes and the first call on a chain of N elementwise ops,
against jax's own tracing (``jax.make_jaxpr``) and ``jax.jit``'s first call, in one process.

Rows, for N = 100, 1,000, 5,000, 10,000 (``--sizes``):
- trace: ``get_concrete_function`` with ``optimize=False`` (trace + checks) vs ``jax.make_jaxpr``;
- trace+passes: the same with the default passes vs ``jax.make_jaxpr``;
- first call: a fresh ``tj.function`` called once (trace, passes, lower, compile, run) vs a fresh
  ``jax.jit`` called once;
- passes per node: the default pipeline's time divided by N (it must stay flat: linear passes).

Targets (issue 16): trace+passes <= 0.5x make_jaxpr; first call <= 1.03x jax.jit's at every N.

Run by hand: ``python bench/tracing.py [--sizes 100 1000 5000 10000] [--repeat 3]``. Prints the
median of ``repeat`` interleaved rounds.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import tracejit as tj
from tracejit.passes.manager import resolve, run_pipeline

TARGETS = {"trace+passes": 0.5, "first call": 1.03}


def chain(ns: Any, n: int) -> Callable[[Any], Any]:
    """``x -> ...`` with ``n`` elementwise ops, written once for tracejit (``ns=tj``) and jax
    (``ns=jnp``)."""

    def body(x: Any) -> Any:
        for i in range(n // 2):
            x = ns.sin(x) if i % 2 else x * 1.001
            x = x + 0.5
        return x

    return body


def seconds(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(n: int) -> dict[str, tuple[float, float]]:
    """One round at size ``n``: name -> (tracejit seconds, jax seconds)."""
    x = np.ones((8,), np.float32)
    spec = tj.TensorSpec((8,))
    tj_body, jax_body = chain(tj, n), chain(jnp, n)
    jaxpr = seconds(lambda: jax.make_jaxpr(jax_body)(x))
    trace = seconds(lambda: tj.function(tj_body, optimize=False).get_concrete_function(spec))
    full = seconds(lambda: tj.function(tj_body).get_concrete_function(spec))
    first_tj = seconds(lambda: tj.function(tj_body)(x).numpy())
    first_jax = seconds(lambda: np.asarray(jax.jit(jax_body)(x)))
    graph = tj.function(tj_body, optimize=False).get_concrete_function(spec).ir
    passes = seconds(lambda: run_pipeline(graph, resolve(True)))
    return {
        "trace": (trace, jaxpr),
        "trace+passes": (full, jaxpr),
        "first call": (first_tj, first_jax),
        "passes per node": (passes / n, 0.0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 5000, 10000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    measure(50)  # warm up jax and tracejit (imports, caches of small helpers)
    print(f"{'N':>6}  {'what':<16}{'tracejit':>12}{'jax':>12}{'ratio':>8}  target")
    for n in args.sizes:
        rounds = [measure(n) for _ in range(args.repeat)]
        for name in rounds[0]:
            ours = statistics.median(r[name][0] for r in rounds)
            theirs = statistics.median(r[name][1] for r in rounds)
            if name == "passes per node":
                print(f"{n:>6}  {name:<16}{ours * 1e6:>10.1f}us")
                continue
            target = TARGETS.get(name)
            print(
                f"{n:>6}  {name:<16}{ours * 1e3:>10.1f}ms{theirs * 1e3:>10.1f}ms"
                f"{ours / theirs:>7.2f}x  {f'<= {target}x' if target else ''}"
            )


if __name__ == "__main__":
    main()
