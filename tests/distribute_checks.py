"""tj.distribute on 8 forced CPU devices, run in its own process by tests/test_distribute.py.

XLA_FLAGS must hold ``--xla_force_host_platform_device_count=8`` before jax initializes, which
the main pytest process has already done with one device: hence a script. Each check prints one
``CHECK <name> ok|FAIL <message>`` line; the exit status is the number of failures.

    XLA_FLAGS=--xla_force_host_platform_device_count=8 python tests/distribute_checks.py [names]
"""

from __future__ import annotations

import contextlib
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np

CHECKS: dict[str, Callable[[], None]] = {}


def check(fn: Callable[[], None]) -> Callable[[], None]:
    CHECKS[fn.__name__] = fn
    return fn


# The MNIST-style MLP (784-64-10) and its train step -----------------------------------------------
def build(strategy: Any = None, *, shard_weights: bool = False, optimizer: str = "adam") -> Any:
    """``(model, step)``: a fresh model and compiled train step (variables in the strategy's
    scope when given; ``shard_weights`` splits both weight matrices over the ``model`` axis)."""
    from jax.sharding import PartitionSpec as P

    import tracejit as tj

    scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
    with scope:
        generator = tj.random.Generator(0)
        model = tj.nn.Sequential(
            [
                tj.nn.Dense(784, 64, activation="relu", generator=generator),
                tj.nn.Dense(64, 10, generator=generator),
            ]
        )
        opt = tj.optim.Adam(1e-3) if optimizer == "adam" else tj.optim.SGD(0.1, momentum=0.9)
    hidden, output = model.layers

    def forward(x: Any) -> Any:
        if not shard_weights:
            return model(x)
        w1 = tj.distribute.shard(hidden.kernel, P(None, "model"))  # columns over "model"
        h = tj.nn.relu(x @ w1 + hidden.bias)
        w2 = tj.distribute.shard(output.kernel, P("model", None))  # rows over "model"
        return h @ w2 + output.bias

    @tj.function
    def step(x: Any, y: Any) -> Any:
        with tj.GradientTape() as tape:
            loss = tj.nn.softmax_cross_entropy(forward(x), y)
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    model.optimizer = opt
    return model, step


def data(steps: int = 20, batch: int = 64) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(steps, batch, 784)).astype(np.float32)
    y = rng.integers(0, 10, size=(steps, batch)).astype(np.int32)
    return x, y


def assert_close(a: Any, b: Any, rtol: float, what: str) -> None:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = max(float(np.max(np.abs(a))), 1e-30)
    error = float(np.max(np.abs(a - b))) / scale
    assert error <= rtol, f"{what}: relative error {error:.2e} > {rtol:.0e}"


# Checks ------------------------------------------------------------------------------------------
@check
def eight_devices() -> None:
    import jax

    assert len(jax.devices()) == 8, f"expected 8 forced CPU devices, got {jax.devices()}"


@check
def data_parallel_matches_single_device() -> None:
    import tracejit as tj

    xs, ys = data()
    single_model, single_step = build()
    single = [float(single_step(x, y)) for x, y in zip(xs, ys)]
    strategy = tj.distribute.DataParallel()
    assert strategy.num_replicas == 8
    model, step = build(strategy)
    losses = [float(strategy.run(step, x, y)) for x, y in zip(xs, ys)]
    assert step.trace_count == 1, f"{step.trace_count} traces"
    assert_close(single, losses, 1e-5, "losses over 20 steps")
    for a, b in zip(single_model.trainable_variables, model.trainable_variables):
        assert_close(a.numpy(), b.numpy(), 1e-5, f"variable {b.name} after 20 steps")
    assert losses[-1] < losses[0], "the loss did not go down"


@check
def variables_stay_replicated() -> None:
    import jax

    import tracejit as tj

    strategy = tj.distribute.DataParallel()
    model, step = build(strategy)
    xs, ys = data(3)
    strategy.run(step, xs[0], ys[0])
    old = model.trainable_variables[0]._value
    for x, y in zip(xs[1:], ys[1:]):
        strategy.run(step, x, y)
    assert old.is_deleted(), "the replicated parameter buffers were not donated"
    variables = list(model.trainable_variables) + model.optimizer.variables
    assert len(variables) == 14, [v.name for v in variables]  # 4 weights, 8 Adam slots, step, lr
    for variable in variables:
        array = variable._value
        assert array.sharding.is_fully_replicated, f"{variable.name}: {array.sharding}"
        assert set(array.sharding.device_set) == set(jax.devices()), variable.name
        shards = array.addressable_shards
        assert len(shards) == 8, f"{variable.name}: {len(shards)} shards"
        full = np.asarray(array)
        for shard in shards:
            assert shard.data.shape == full.shape, f"{variable.name}: shard {shard.data.shape}"
            np.testing.assert_array_equal(np.asarray(shard.data), full, err_msg=variable.name)


def parameter_bytes_per_device(variables: list[Any]) -> int:
    """Bytes of the variables' values on one device (its shards)."""
    return sum(v._value.addressable_shards[0].data.nbytes for v in variables)


@check
def sharded_parameters_match_replicated() -> None:
    """DataParallel(shard_parameters=True): parameters and Adam slots split over the 8 devices
    along their first divisible dimension; 10 steps equal one device's; the IR shows the
    layouts, the compiled program the all-gathers and reduce-scatters."""
    from jax.sharding import PartitionSpec as P

    import tracejit as tj

    xs, ys = data(10)
    single_model, single_step = build()
    single = [float(single_step(x, y)) for x, y in zip(xs, ys)]
    strategy = tj.distribute.DataParallel(shard_parameters=True)
    assert "sharded parameters" in repr(strategy), repr(strategy)
    model, step = build(strategy)
    losses = [float(strategy.run(step, x, y)) for x, y in zip(xs, ys)]
    assert_close(single, losses, 1e-5, "losses over 10 steps")
    for a, b in zip(single_model.trainable_variables, model.trainable_variables):
        assert_close(a.numpy(), b.numpy(), 2e-5, f"variable {b.name} after 10 steps")
    specs = [v._value.sharding.spec for v in model.trainable_variables]
    # kernel 784x64 (rows over 8 devices), bias 64, kernel 64x10; bias 10 does not split into 8
    assert specs == [P("data"), P("data"), P("data"), P()], specs
    for slot in model.optimizer.variables:
        if slot.aval.shape == (784, 64):
            assert slot._value.sharding.spec == P("data"), slot.name
    replicated_model, _ = build(tj.distribute.DataParallel())
    variables = list(model.trainable_variables) + model.optimizer.variables
    copies = list(replicated_model.trainable_variables)
    sharded_bytes = parameter_bytes_per_device(model.trainable_variables)
    full_bytes = parameter_bytes_per_device(copies)
    assert sharded_bytes < full_bytes / 7, (sharded_bytes, full_bytes)
    assert len(variables) == 14
    text = str(step.get_concrete_function(xs[0], ys[0]).ir)
    assert "state %s0: f32[784,64] = variable dense" in text, text[:3000]
    assert "/kernel @P(data)" in text and "/kernel/m @P(data)" in text, text[:3000]
    placed = (strategy.split_batch(xs[0]), strategy.split_batch(ys[0]))
    with strategy.scope():
        hlo = step.lower(*placed).compile().as_text()
    assert "all-gather" in hlo, "no all-gather in the compiled step"
    assert "reduce-scatter" in hlo or "all-reduce" in hlo, "no gradient collective"


@check
def model_parallel_shard_matches_unsharded() -> None:
    import tracejit as tj

    mesh = tj.distribute.make_mesh((2, 4), ("data", "model"))
    strategy = tj.distribute.DataParallel(mesh)
    assert strategy.num_replicas == 2
    xs, ys = data(5)
    plain_model, plain_step = build(optimizer="sgd")
    plain = [float(plain_step(x, y)) for x, y in zip(xs, ys)]
    model, step = build(strategy, shard_weights=True, optimizer="sgd")
    sharded = [float(strategy.run(step, x, y)) for x, y in zip(xs, ys)]
    assert_close(plain, sharded, 1e-5, "losses with sharded weights")
    for a, b in zip(plain_model.trainable_variables, model.trainable_variables):
        assert_close(a.numpy(), b.numpy(), 1e-5, f"variable {b.name}")
    concrete = step.get_concrete_function(strategy.split_batch(xs[0]), strategy.split_batch(ys[0]))
    text = concrete.ir.format(source=False)
    assert "# mesh: data=2, model=4" in text, text
    assert "shard[mesh=((data,2),(model,4)), spec=(none,model)]" in text, text
    assert "shard[mesh=((data,2),(model,4)), spec=(model,none)]" in text, text
    hlo = concrete.lower(strategy.split_batch(xs[0]), strategy.split_batch(ys[0])).as_text()
    assert '"model"' in hlo and ("sharding_constraint" in hlo or "mhlo.sharding" in hlo), hlo[:3000]


@check
def eager_shard_lays_out_the_value() -> None:
    from jax.sharding import PartitionSpec as P

    import tracejit as tj

    mesh = tj.distribute.make_mesh((2, 4), ("data", "model"))
    w = np.arange(8 * 12, dtype=np.float32).reshape(8, 12)
    t = tj.distribute.shard(w, P("data", "model"), mesh)
    shapes = {s.data.shape for s in t.value.addressable_shards}
    assert shapes == {(4, 3)}, shapes
    np.testing.assert_array_equal(t.numpy(), w)
    with strategy_scope(mesh):
        v = tj.distribute.shard(tj.constant(w), P(None, "model"))  # the scope's mesh
    assert {s.data.shape for s in v.value.addressable_shards} == {(8, 3)}


def strategy_scope(mesh: Any) -> Any:
    import tracejit as tj

    return tj.distribute.DataParallel(mesh).scope()


@check
def shard_gradient_is_sharded_like_the_value() -> None:
    from jax.sharding import PartitionSpec as P

    import tracejit as tj

    mesh = tj.distribute.make_mesh((2, 4), ("data", "model"))
    w = tj.constant(np.linspace(-1, 1, 8 * 12, dtype=np.float32).reshape(8, 12))

    def loss(w: Any) -> Any:
        return tj.sum(tj.tanh(tj.distribute.shard(w, P(None, "model"), mesh)) ** 2)

    eager = tj.grad(loss)(w)
    traced = tj.function(tj.grad(loss))(w)
    expected = tj.grad(lambda w: tj.sum(tj.tanh(w) ** 2))(w)
    assert_close(expected.numpy(), eager.numpy(), 1e-6, "eager gradient through shard")
    assert_close(expected.numpy(), traced.numpy(), 1e-6, "traced gradient through shard")
    assert eager.value.sharding.spec == P(None, "model"), eager.value.sharding


@check
def in_and_out_shardings_show_in_ir_and_stablehlo() -> None:
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    import tracejit as tj

    mesh = tj.distribute.make_mesh((8,), ("data",))
    rows = NamedSharding(mesh, P("data", None))

    @tj.function(in_shardings=[rows, None], out_shardings=NamedSharding(mesh, P()))
    def scores(x: Any, w: Any) -> Any:
        return tj.sum(x @ w, axis=0)

    x = np.ones((16, 4), np.float32)
    w = np.ones((4, 3), np.float32)
    out = scores(x, w)
    np.testing.assert_array_equal(out.numpy(), np.full(3, 64.0, np.float32))
    assert out.value.sharding.is_fully_replicated and len(out.value.sharding.device_set) == 8
    text = str(scores.get_concrete_function(x, w).ir)
    assert "# mesh: data=8" in text, text
    assert "%0: f32[16,4] @P(data,none), %1: f32[4,3]) -> f32[3] @P()" in text, text
    hlo = scores.lower(x, w).as_text()
    assert ("sdy.sharding" in hlo or "mhlo.sharding" in hlo) and '"data"' in hlo, hlo[:2000]


@check
def batch_sharding_rule_in_a_tj_function() -> None:
    import tracejit as tj

    xs, ys = data(3)
    plain_model, plain_step = build()
    strategy = tj.distribute.DataParallel()
    with strategy.scope():
        model, step = build(strategy)
    placed = tj.function(step.python_function, in_shardings=strategy.batch_sharding)
    for x, y in zip(xs, ys):
        a, b = float(plain_step(x, y)), float(placed(x, y))  # numpy in: jax.jit places it
        assert_close(a, b, 1e-5, "loss")
    text = str(placed.get_concrete_function(xs[0], ys[0]).ir)
    assert "%0: f32[64,784] @P(data), %1: i32[64] @P(data)" in text, text


@check
def indivisible_batch_is_a_clear_error() -> None:
    import tracejit as tj

    strategy = tj.distribute.DataParallel()
    model, step = build(strategy)
    x, y = data(1, batch=10)
    try:
        strategy.run(step, x[0], y[0])
    except tj.distribute.ShardingError as err:
        message = str(err)
    else:
        raise AssertionError("a batch of 10 on 8 devices ran")
    for part in ("argument 0 has a batch of 10 rows", "multiple of 8", "e.g. 8 or 16"):
        assert part in message, message
    assert "distribute_checks.py" in message, message  # names the user's line
    assert step.trace_count == 0, "it traced before refusing"
    try:
        strategy.run(lambda batch: batch, {"x": np.ones((3, 2), np.float32)})
    except tj.distribute.ShardingError as err:
        assert "argument 0['x'] has a batch of 3 rows" in str(err) and "(e.g. 8)" in str(err)
    else:
        raise AssertionError("a batch of 3 on 8 devices ran")


@check
def variable_outside_the_scope_is_a_clear_error() -> None:
    import tracejit as tj

    strategy = tj.distribute.DataParallel()
    scale = tj.Variable(2.0, name="scale")  # outside the scope: one device

    @tj.function
    def step(x: Any) -> Any:
        scale.assign(scale * 1.5)
        return tj.mean(x) * scale

    x = np.ones((8, 2), np.float32)
    try:
        strategy.run(step, x)
    except tj.distribute.ShardingError as err:
        message = str(err)
    else:
        raise AssertionError("a variable outside the scope was used")
    for part in ("variable 'scale'", "1 device(s) (cpu:0)", "strategy.scope()", "replicate"):
        assert part in message, message
    assert float(scale) == 2.0, "the failed call changed the variable"
    scale.assign(strategy.replicate(scale))  # the documented fix
    assert len(scale._value.sharding.device_set) == 8
    assert float(strategy.run(step, x)) == 3.0


@check
def assign_keeps_a_distributed_layout() -> None:
    import tracejit as tj

    strategy = tj.distribute.DataParallel()
    with strategy.scope():
        v = tj.Variable(np.zeros((4, 2), np.float32), name="v")
    v.assign(np.ones((4, 2), np.float32))  # a host value, as a checkpoint restore does
    assert v._value.sharding.is_fully_replicated and len(v._value.sharding.device_set) == 8
    np.testing.assert_array_equal(v.numpy(), np.ones((4, 2)))


@check
def multi_host_code_paths() -> None:
    """The multi-process branches (global arrays from process-local data and from callbacks)
    give the same arrays as the single-process ones: jax.process_count is faked to be 2."""
    import jax

    import tracejit as tj

    strategy = tj.distribute.DataParallel()
    x = np.arange(16 * 3, dtype=np.float32).reshape(16, 3)
    expected = strategy.split_batch(x).value
    replicated = strategy.replicate(x).value
    real = jax.process_count
    jax.process_count = lambda backend=None: 2  # type: ignore[assignment]
    try:
        split = strategy.split_batch(x).value
        copied = strategy.replicate(x).value
    finally:
        jax.process_count = real  # type: ignore[assignment]
    assert split.sharding == expected.sharding and copied.sharding == replicated.sharding
    np.testing.assert_array_equal(np.asarray(split), x)
    np.testing.assert_array_equal(np.asarray(copied), x)


def main(names: list[str]) -> int:
    failures = 0
    start = time.perf_counter()
    for name, fn in CHECKS.items():
        if names and name not in names:
            continue
        began = time.perf_counter()
        try:
            fn()
        except Exception as err:  # noqa: BLE001 - reported, counted, and the next check runs
            failures += 1
            detail = "".join(traceback.format_exception(err)).replace("\n", "\n    ")
            print(f"CHECK {name} FAIL {type(err).__name__}: {err}\n    {detail}", flush=True)
        else:
            print(f"CHECK {name} ok {time.perf_counter() - began:.2f}s", flush=True)
    print(f"{failures} failure(s) in {time.perf_counter() - start:.1f} s")
    return failures


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
