"""Per-example gradients with ``tj.vmap``: compiled, against raw jax, and against a loop.

An MLP loss (64-128-10, tanh, float32) differentiated per example over a batch (default 256):

- ``tj.function(tj.vmap(tj.grad(loss)))`` against ``jax.jit(jax.vmap(jax.grad(loss)))`` on the
  same data, in the same process (the ratio is what tracejit's IR, its batching rules and its
  passes cost or save compared with jax's own batching);
- the same compiled function against a Python loop of a compiled per-example gradient (what
  vmap saves);
- eager ``tj.vmap`` (trace per call, batched ops run one by one) against an eager Python loop.

    python bench/vmap.py
    python bench/vmap.py --batch 1024 --repeats 50
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


def timed(fn: Callable[[], Any], repeats: int) -> float:
    """Median seconds per call (after one warm-up call), results waited for."""
    jax.block_until_ready(np.asarray(fn()))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        np.asarray(out)  # waits for the device
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    w1 = rng.standard_normal((64, 128)).astype(np.float32) * 0.1
    w2 = rng.standard_normal((128, 10)).astype(np.float32) * 0.1
    xs = rng.standard_normal((args.batch, 64)).astype(np.float32)
    ys = rng.standard_normal((args.batch, 10)).astype(np.float32)

    def loss(w1: Any, w2: Any, x: Any, y: Any, lib: Any) -> Any:
        return lib.sum((lib.tanh(x @ w1) @ w2 - y) ** 2)

    def tj_loss(w1: Any, w2: Any, x: Any, y: Any) -> Any:
        return loss(w1, w2, x, y, tj)

    def jax_loss(w1: Any, w2: Any, x: Any, y: Any) -> Any:
        return loss(w1, w2, x, y, jnp)

    axes = (None, None, 0, 0)
    tj_grads = tj.function(tj.vmap(tj.grad(tj_loss, argnums=(0, 1)), in_axes=axes))
    jax_grads = jax.jit(jax.vmap(jax.grad(jax_loss, argnums=(0, 1)), in_axes=axes))
    one = tj.function(tj.grad(tj_loss, argnums=(0, 1)))
    t1, t2, tx, ty = (tj.constant(a) for a in (w1, w2, xs, ys))

    ours = timed(lambda: tj_grads(t1, t2, tx, ty)[0], args.repeats)
    theirs = timed(lambda: jax_grads(w1, w2, xs, ys)[0], args.repeats)
    n_loop = min(args.batch, 64)
    loop = timed(lambda: [one(t1, t2, tx[i], ty[i])[0] for i in range(n_loop)][-1], 3)
    eager = timed(
        lambda: tj.vmap(tj.grad(tj_loss, argnums=(0, 1)), in_axes=axes)(t1, t2, tx, ty)[0], 3
    )
    eager_loop = timed(
        lambda: [tj.grad(tj_loss, argnums=(0, 1))(t1, t2, tx[i], ty[i])[0] for i in range(n_loop)][
            -1
        ],
        3,
    )
    per = args.batch / n_loop
    print(f"per-example gradients, MLP 64-128-10, batch {args.batch}")
    print(f"  tj.function(tj.vmap(tj.grad))  {ours * 1e3:9.3f} ms")
    print(f"  jax.jit(jax.vmap(jax.grad))    {theirs * 1e3:9.3f} ms   ratio {ours / theirs:.2f}x")
    speedup = loop * per / ours
    print(f"  loop of compiled tj.grad       {loop * per * 1e3:9.3f} ms   (vmap {speedup:.0f}x)")
    print(f"  eager tj.vmap                  {eager * 1e3:9.3f} ms")
    speedup = eager_loop * per / eager
    print(
        f"  eager loop of tj.grad          {eager_loop * per * 1e3:9.3f} ms   (vmap {speedup:.1f}x)"
    )
    graph = tj_grads.get_concrete_function(t1, t2, tx, ty).graph
    print(f"  compiled graph: {graph.node_count()} nodes")


if __name__ == "__main__":
    main()
