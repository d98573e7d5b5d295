"""What the optimization passes do and cost, program by program.

Programs: the MLP train step of bench/train_step.py (784-256-256-10, Adam), a program full of
redundant subexpressions and constants, and chains of 100 / 1,000 / 10,000 elementwise ops.
For each: node count after each pass, trace time, optimize time (and per node), XLA compile time
and run time with and without optimization.

Targets: optimizer time per node within 2x between the 100- and 10,000-op chains (no quadratic
pass); optimized compile and run time never worse than unoptimized beyond noise; the redundant
program shrinks by at least half.

Run by hand: ``python bench/passes.py [--skip-10k]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import tracejit as tj

sys.path.insert(0, str(Path(__file__).parent))
from train_step import data, tracejit_step  # noqa: E402


def redundant(x: Any, y: Any) -> Any:
    table = tj.constant(np.linspace(0, 1, 64, dtype=np.float32))
    scale = tj.exp(table * 2.0) / tj.exp(table * 2.0)  # all-constant: folded
    a = tj.tanh(x * y + 1.0) * scale
    b = tj.tanh(y * x + 1.0) * scale  # the same as a (commutative operands): merged
    c = (a + 0.0) * 1.0 - (-(-b))  # identities: simplified  # noqa: B002
    unused = tj.sin(a) * tj.cos(b)  # dead  # noqa: F841
    return (c + tj.tanh(x * y + 1.0) * scale).sum()


def chain(n: int) -> Callable[[Any], Any]:
    def body(x: Any) -> Any:
        for i in range(n):  # exactly n elementwise ops
            x = tj.sin(x) if i % 3 == 0 else x * 0.5 if i % 3 == 1 else x + 0.25
        return x

    body.__name__ = f"chain{n}"
    return body


def measure(fn: Callable[..., Any], args: tuple[Any, ...], optimize: bool) -> dict[str, Any]:
    function = tj.function(fn, optimize=optimize)
    start = time.perf_counter()
    cf = function.get_concrete_function(*args)
    trace_and_optimize = time.perf_counter() - start
    start = time.perf_counter()
    jax.block_until_ready(function(*args))  # (tensors are jax pytrees of their arrays)
    compile_s = time.perf_counter() - start
    runs = []
    for _ in range(20):
        start = time.perf_counter()
        out = function(*args)
        jax.block_until_ready(out)
        runs.append(time.perf_counter() - start)
    return {
        "cf": cf,
        "trace_s": cf.trace_seconds,
        "optimize_s": cf.optimize_seconds,
        "compile_s": compile_s,
        "run_ms": statistics.median(runs) * 1e3,
        "trace_and_optimize": trace_and_optimize,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skip-10k", action="store_true", help="skip the 10,000-op chain")
    args = parser.parse_args()
    jax.block_until_ready(jax.jit(lambda a: a + 1)(jnp.ones(3)))  # XLA start-up

    x_np, y_np = data()
    step, _ = tracejit_step()
    rng = np.random.default_rng(0)
    small = rng.normal(size=(64,)).astype(np.float32)
    programs: list[tuple[str, Callable[..., Any], tuple[Any, ...]]] = [
        ("mlp train step", step, (tj.constant(x_np), tj.constant(y_np))),
        ("redundant", redundant, (tj.constant(small), tj.constant(small[::-1].copy()))),
    ]
    sizes = (100, 1000) if args.skip_10k else (100, 1000, 10000)
    programs += [(f"chain {n}", chain(n), (tj.constant(small),)) for n in sizes]

    print(f"jax {jax.__version__} on {jax.devices()[0].platform}")
    per_node = {}
    for name, fn, fn_args in programs:
        off = measure(fn, fn_args, optimize=False)
        on = measure(fn, fn_args, optimize=True)
        report = on["cf"].pass_report()
        counts = " -> ".join(
            [str(report[0].nodes_before)] + [f"{r.name} {r.nodes_after}" for r in report]
        )
        nodes = report[0].nodes_before
        per_node[name] = on["optimize_s"] / max(nodes, 1) * 1e6
        print(f"\n== {name}: {nodes} traced nodes")
        print(f"   nodes: {counts}")
        print(
            f"   trace {on['trace_s'] * 1e3:.1f} ms, optimize {on['optimize_s'] * 1e3:.1f} ms "
            f"({per_node[name]:.1f} us/node)"
        )
        print(f"   {'':<12}{'compile s':>10}{'run ms':>10}")
        print(f"   {'unoptimized':<12}{off['compile_s']:>10.3f}{off['run_ms']:>10.3f}")
        print(f"   {'optimized':<12}{on['compile_s']:>10.3f}{on['run_ms']:>10.3f}")
        if name == "redundant":
            shrink = report[-1].nodes_after / nodes
            print(f"   shrinks to {shrink:.0%} of its nodes (target <= 50%)")
    first, last = f"chain {sizes[0]}", f"chain {sizes[-1]}"
    ratio = per_node[last] / per_node[first]
    print(f"\noptimizer time per node, {last} vs {first}: {ratio:.2f}x (target <= 2x)")


if __name__ == "__main__":
    main()
