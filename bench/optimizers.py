"""Optimizer updates: tracejit's compiled ``apply_gradients`` vs optax's update under ``jax.jit``.

For each optimizer, one compiled call applies given gradients to the parameters of the MLP of
``bench/train_step.py`` (784-256-256-10: 4 arrays, 270k float32), and to one 4M-element array
(where the elementwise math, not the call, dominates):

- tracejit: ``tj.function`` of ``opt.apply_gradients(zip(grads, variables))`` (parameters,
  slots and step counter are lifted state; their buffers are donated);
- optax: ``jax.jit`` of ``tx.update`` + ``optax.apply_updates`` with the parameters and the
  optimizer state donated, optax configured to the same algorithm (the tests' oracles: eps=0
  for Adam/Adamax, a constant momentum for Nadam).

Reports the median ms per update of each system, timed in alternating rounds, and the ratio
tracejit / optax. Target: <= 1.10x.

Run by hand: ``python bench/optimizers.py [--rounds 15 --steps 20]``.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import tracejit as tj

SIZES = (784, 256, 256, 10)
TARGET = 1.10

OPTIMIZERS: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {
    "SGD momentum": (
        lambda: tj.optim.SGD(0.01, momentum=0.9),
        lambda: optax.sgd(0.01, momentum=0.9),
    ),
    "SGD + weight decay": (
        lambda: tj.optim.SGD(0.01, weight_decay=1e-4),
        lambda: optax.chain(optax.add_decayed_weights(1e-4), optax.sgd(0.01)),
    ),
    "Adam": (lambda: tj.optim.Adam(1e-3, eps=0), lambda: optax.adam(1e-3, eps=0.0)),
    "RMSprop": (lambda: tj.optim.RMSprop(1e-3), lambda: optax.rmsprop(1e-3, eps=1e-7)),
    "Adagrad": (
        lambda: tj.optim.Adagrad(1e-2),
        lambda: optax.adagrad(1e-2, initial_accumulator_value=0.1, eps=1e-7),
    ),
    "Adadelta": (lambda: tj.optim.Adadelta(1.0), lambda: optax.adadelta(1.0, 0.95, 1e-7)),
    "Adamax": (lambda: tj.optim.Adamax(1e-3, eps=0), lambda: optax.adamax(1e-3, eps=0.0)),
    "Nadam": (
        lambda: tj.optim.Nadam(1e-3, momentum_decay=math.inf),
        lambda: optax.nadam(1e-3, eps=1e-7),
    ),
    "Lion": (lambda: tj.optim.Lion(1e-4), lambda: optax.lion(1e-4, weight_decay=0.0)),
    "Adam + global_clipnorm": (
        lambda: tj.optim.Adam(1e-3, eps=0, global_clipnorm=1.0),
        lambda: optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-3, eps=0.0)),
    ),
    "SGD + cosine schedule": (
        lambda: tj.optim.SGD(tj.optim.cosine_decay(0.1, 1000)),
        lambda: optax.sgd(optax.cosine_decay_schedule(0.1, 1000)),
    ),
}


def shapes(kind: str) -> list[tuple[int, ...]]:
    if kind == "mlp":
        out: list[tuple[int, ...]] = []
        for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:]):
            out += [(fan_in, fan_out), (fan_out,)]
        return out
    return [(2048, 2048)]


def arrays(kind: str, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=s) * 0.05).astype(np.float32) for s in shapes(kind)]


def tracejit_update(make: Callable[[], Any], kind: str) -> Callable[[], Any]:
    variables = [tj.Variable(p) for p in arrays(kind, 0)]
    grads = [tj.constant(g) for g in arrays(kind, 1)]
    opt = make()

    @tj.function
    def update(*grads: Any) -> Any:
        opt.apply_gradients(zip(grads, variables))
        return opt.iterations.value()

    return lambda: update(*grads).value


def optax_update(make: Callable[[], Any], kind: str) -> Callable[[], Any]:
    tx = make()
    state: dict[str, Any] = {"p": [jnp.asarray(p) for p in arrays(kind, 0)]}
    state["s"] = tx.init(state["p"])
    grads = [jnp.asarray(g) for g in arrays(kind, 1)]

    def step(params: Any, opt_state: Any, grads: Any) -> Any:
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    update = jax.jit(step, donate_argnums=(0, 1))

    def run() -> Any:
        state["p"], state["s"] = update(state["p"], state["s"], grads)
        return state["p"][0]

    return run


def interleaved(systems: dict[str, Callable[[], Any]], rounds: int, steps: int) -> dict[str, float]:
    """Median ms per call of each system, in alternating rounds (so load drift hits all)."""
    samples: dict[str, list[float]] = {name: [] for name in systems}
    for fn in systems.values():
        jax.block_until_ready(fn())  # trace and compile outside the timing
    for _ in range(rounds):
        for name, fn in systems.items():
            for _ in range(steps):
                start = time.perf_counter()
                jax.block_until_ready(fn())
                samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(times) * 1e3 for name, times in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--steps", type=int, default=20, help="updates per system per round")
    parser.add_argument("--only", nargs="*", help="optimizer names to run (default: all)")
    args = parser.parse_args()
    print(
        f"jax {jax.__version__}, optax {optax.__version__} on {jax.devices()[0].platform}; "
        f"median of {args.rounds} x {args.steps} interleaved updates"
    )
    print(f"{'optimizer':<24}{'params':>8}{'tracejit ms':>13}{'optax ms':>10}{'ratio':>7}")
    worst = 0.0
    for name, (make_tj, make_optax) in OPTIMIZERS.items():
        if args.only and name not in args.only:
            continue
        for kind, label in (("mlp", "270k/4"), ("big", "4M/1")):
            ms = interleaved(
                {"tj": tracejit_update(make_tj, kind), "optax": optax_update(make_optax, kind)},
                args.rounds,
                args.steps,
            )
            ratio = ms["tj"] / ms["optax"]
            worst = max(worst, ratio)
            print(f"{name:<24}{label:>8}{ms['tj']:>13.3f}{ms['optax']:>10.3f}{ratio:>7.2f}")
    verdict = "ok" if worst <= TARGET else "MISSED"
    print(f"worst ratio {worst:.2f} (target <= {TARGET:.2f}: {verdict})")


if __name__ == "__main__":
    main()
