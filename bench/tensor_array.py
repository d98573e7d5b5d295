"""A loop that writes one row per step into a ``tj.TensorArray``, against raw jax.jit.

``fori_loop`` over ``n`` steps, each writing ``sin(x * i)`` (a row of ``d`` floats) at index
``i``, then ``stack()``: tracejit's TensorArray (a ``scatter_index`` per write, in a scan), the
same jax program with ``buf.at[i].set`` (what tracejit lowers to) and with
``lax.dynamic_update_slice`` (what TF's XLA TensorArray uses). Prints ms per call and the ratio
to the ``.at[i].set`` program, measured in this process.

    python bench/tensor_array.py                 # n=2000, d=512
    python bench/tensor_array.py --n 500 --d 64
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

import tracejit as tj


def timed(fn: Callable[[], Any], repeats: int) -> float:
    jax.block_until_ready(fn())  # compile
    start = time.perf_counter()
    for _ in range(repeats):
        jax.block_until_ready(fn())
    return (time.perf_counter() - start) / repeats * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--d", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    n, d = args.n, args.d

    @tj.function
    def tracejit_loop(x: Any) -> Any:
        ta = tj.TensorArray(tj.float32, size=n)
        body = lambda i, ta: ta.write(i, tj.sin(x * tj.cast(i, "float32")))  # noqa: E731
        return tj.fori_loop(0, n, body, ta).stack()

    def jax_loop(update: Callable[[Any, Any, Any], Any]) -> Any:
        @jax.jit
        def run(x: Any) -> Any:
            step = lambda i, buf: update(buf, i, jnp.sin(x * i))  # noqa: E731
            return jax.lax.fori_loop(0, n, step, jnp.zeros((n, d), jnp.float32))

        return run

    at_set = jax_loop(lambda buf, i, v: buf.at[i].set(v))
    dus = jax_loop(lambda buf, i, v: jax.lax.dynamic_update_slice(buf, v[None], (i, 0)))
    x, xt = jnp.ones(d, jnp.float32), tj.constant(jnp.ones(d, jnp.float32))
    base = timed(lambda: at_set(x), args.repeats)
    rows = [
        ("jax .at[i].set", base),
        ("jax dynamic_update_slice", timed(lambda: dus(x), args.repeats)),
        ("tj.TensorArray", timed(lambda: tracejit_loop(xt)._value, args.repeats)),
    ]
    print(f"n={n} d={d} ({jax.default_backend()})")
    for name, ms in rows:
        print(f"{name:26s} {ms:8.2f} ms  x{ms / base:.2f}")


if __name__ == "__main__":
    main()
