"""tj.distribute: data parallelism, the ``shard`` op and ``in_shardings``/``out_shardings``.

The multi-device checks run in a subprocess on 8 forced CPU devices (tests/distribute_checks.py:
this process initialized jax with one device), once for the module, one test per check. The
tests below them run here on one-device meshes: printing, errors, structure handling.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import distribute_checks
import jax
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import tracejit as tj
from tracejit.errors import OpError
from tracejit.runtime import sharding as layouts

SCRIPT = Path(__file__).with_name("distribute_checks.py")


# On eight devices, in a subprocess ---------------------------------------------------------------
@pytest.fixture(scope="module")
def eight_device_results() -> dict[str, str]:
    flags = os.environ.get("XLA_FLAGS", "")
    env = {
        **os.environ,
        "XLA_FLAGS": f"{flags} --xla_force_host_platform_device_count=8".strip(),
        "JAX_PLATFORMS": "cpu",
    }
    done = subprocess.run(
        [sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=300
    )
    results: dict[str, str] = {}
    for block in done.stdout.split("CHECK ")[1:]:
        name, _, rest = block.partition(" ")
        results[name] = rest.strip()
    if not results:
        pytest.fail(f"{SCRIPT.name} reported nothing:\n{done.stdout}\n{done.stderr[-3000:]}")
    return results


@pytest.mark.parametrize("name", list(distribute_checks.CHECKS))
def test_on_eight_cpu_devices(eight_device_results: dict[str, str], name: str) -> None:
    result = eight_device_results.get(name, "missing from the script's output")
    assert result.startswith("ok"), f"{name}: {result}"


# The shard op ------------------------------------------------------------------------------------
@pytest.fixture
def grid() -> Any:
    return tj.distribute.make_mesh((1, 1), ("data", "model"))


def test_shard_is_an_ir_node_lowered_to_a_sharding_constraint(grid: Any) -> None:
    @tj.function
    def f(x: Any) -> Any:
        return tj.distribute.shard(x * 2.0, P(None, "model"), grid) + 1.0

    x = np.ones((4, 3), np.float32)
    np.testing.assert_array_equal(f(x).numpy(), np.full((4, 3), 3.0))
    text = f.get_concrete_function(x).ir.format(source=False)
    assert "shard[mesh=((data,1),(model,1)), spec=(none,model)] %" in text, text
    hlo = f.lower(x).as_text()
    assert "sharding_constraint" in hlo or "mhlo.sharding" in hlo, hlo


def test_shard_survives_optimization(grid: Any) -> None:
    # Not folded into a constant, not fused away: the layout is part of the program.
    f = tj.function(lambda: tj.distribute.shard(tj.ones((2, 2)), P("data"), grid))
    text = f.get_concrete_function().ir.format(source=False)
    assert "= shard[" in text, text


@pytest.mark.parametrize(
    ("spec", "shape", "message"),
    [
        (P("data", None, "model"), (4, 3), "P(data,none,model) has 3 entries, but the value is"),
        (P("modle"), (4, 3), "names axis 'modle', which the mesh (data=1, model=1) does not have"),
        (P(("data", "data")), (4,), "uses mesh axis 'data' twice"),
    ],
)
def test_shard_errors_say_what_is_wrong(grid: Any, spec: Any, shape: Any, message: str) -> None:
    with pytest.raises(OpError, match="shard: ") as eager:
        tj.distribute.shard(np.ones(shape, np.float32), spec, grid)
    assert message in str(eager.value)
    f = tj.function(lambda x: tj.distribute.shard(x, spec, grid))
    with pytest.raises(OpError) as traced:
        f(np.ones(shape, np.float32))
    assert message in str(traced.value) and "test_distribute.py" in str(traced.value)


def test_shard_of_an_indivisible_dimension_is_refused() -> None:
    key = (("model", 4),)
    with pytest.raises(OpError, match="splits a dimension of size 6 of f32.6. into 4 parts"):
        tj.distribute.SHARD.infer(tj.AVal((6,), np.dtype("float32")), spec=("model",), mesh=key)


def test_shard_needs_a_mesh() -> None:
    with pytest.raises(OpError, match="no mesh is in force"):
        tj.distribute.shard(np.ones(3, np.float32), P())


def test_shard_uses_the_scope_mesh() -> None:
    strategy = tj.distribute.DataParallel()
    with strategy.scope():
        assert tj.distribute.current_mesh() is strategy.mesh
        t = tj.distribute.shard(np.ones((2, 3), np.float32), P("data"))
    assert t.value.sharding == NamedSharding(strategy.mesh, P("data"))
    assert tj.distribute.current_mesh() is None


# in_shardings / out_shardings --------------------------------------------------------------------
def test_in_and_out_shardings_are_printed(grid: Any) -> None:
    rows = NamedSharding(grid, P("data"))

    @tj.function(in_shardings={"x": rows}, out_shardings=(NamedSharding(grid, P()), None))
    def f(x: Any, y: Any) -> Any:
        return x.sum(), x * y

    x, y = np.ones((4, 2), np.float32), np.ones((4, 2), np.float32)
    total, product = f(x, y)
    assert float(total) == 8.0 and product.shape == (4, 2)
    text = f.get_concrete_function(x, y).ir.format(source=False)
    assert text.splitlines()[1] == "# mesh: data=1, model=1"
    assert "func f(%0: f32[4,2] @P(data), %1: f32[4,2]) -> (f32[] @P(), f32[4,2]) {" in text


def test_shardings_follow_nested_arguments(grid: Any) -> None:
    rows, whole = NamedSharding(grid, P("data")), NamedSharding(grid, P())

    @tj.function(in_shardings=[{"a": rows, "b": (whole, None)}, rows])
    def f(tree: Any, z: Any) -> Any:
        return tree["a"] + tree["b"][0] + tree["b"][1] + z

    ones = np.ones((2, 2), np.float32)
    out = f({"a": ones, "b": (ones, ones)}, ones)
    np.testing.assert_array_equal(out.numpy(), np.full((2, 2), 4.0))
    text = str(f.get_concrete_function({"a": ones, "b": (ones, ones)}, ones).ir)
    assert "(%0: f32[2,2] @P(data), %1: f32[2,2] @P(), %2: f32[2,2], %3: f32[2,2] @P(data))" in text


def test_a_partition_spec_uses_the_mesh_in_force() -> None:
    f = tj.function(lambda x: x + 1.0, in_shardings=P("data"))
    with pytest.raises(tj.distribute.ShardingError, match="PartitionSpec P.data. needs a mesh"):
        f(np.ones(4, np.float32))
    strategy = tj.distribute.DataParallel()
    with strategy.scope():
        assert float(f(np.ones(4, np.float32)).sum()) == 8.0
    assert "%0: f32[4] @P(data)" in str(f.get_concrete_function(np.ones(4, np.float32)).ir)


@pytest.mark.parametrize(
    ("in_shardings", "message"),
    [
        ({"q": None}, "in_shardings names ['q'], which are not parameters ['x', 'y']"),
        ([None, None, None], "in_shardings has 3 entries for 2 parameters"),
        ([[None, None]], "do not follow the argument's structure"),
        ("data", "expected a sharding, a PartitionSpec, a callable, or a list or dict"),
        ([P()] * 2 + [None], "in_shardings has 3 entries for 2 parameters"),
        ([{"a": None}], "structure (a tensor of shape (4, 2) and dtype float32)"),
        ([3], "expected a jax.sharding.Sharding, a PartitionSpec, a callable of a TensorSpec"),
        ([lambda spec: "x"], "expected a jax.sharding.Sharding, a PartitionSpec or None, got str"),
        (P("data", None, None), "P(data,none,none) has 3 entries, but the value is f32[4,2]"),
    ],
)
def test_bad_in_shardings_are_clear_errors(in_shardings: Any, message: str) -> None:
    strategy = tj.distribute.DataParallel()
    f = tj.function(lambda x, y: x + y, in_shardings=in_shardings)
    with strategy.scope(), pytest.raises(tj.distribute.ShardingError) as error:
        f(np.ones((4, 2), np.float32), np.ones((4, 2), np.float32))
    assert message in str(error.value)
    assert "test_distribute.py" in str(error.value)  # the user's line


def test_a_known_dimension_must_split_evenly() -> None:
    mesh = tj.distribute.make_mesh((1,), ("data",))
    fake = NamedSharding(mesh, P("data"))
    aval = tj.AVal((5,), np.dtype("float32"))
    assert layouts.spec_problem(("data",), {"data": 2}, aval) == (
        "P(data) splits a dimension of size 5 of f32[5] into 2 parts (data=2); "
        "it must be divisible by 2"
    )
    assert layouts.to_sharding(fake, aval, "f") is fake  # one device: 5 splits into 1


def test_single_device_functions_get_no_sharding_options() -> None:
    f = tj.function(lambda x: x * 2.0)
    concrete = f.get_concrete_function(np.ones(3, np.float32))
    assert layouts.jit_options(concrete.graph, [], 0) == {}
    assert "shardings" not in concrete.graph.metadata
    assert "@" not in str(concrete.ir)


# DataParallel on one device ----------------------------------------------------------------------
def test_data_parallel_on_one_device_runs_the_step() -> None:
    strategy = tj.distribute.DataParallel()
    assert (
        strategy.num_replicas == 1
        and repr(strategy) == "<tj.distribute.DataParallel data=1 on cpu>"
    )
    with strategy.scope():
        w = tj.Variable(np.ones((3,), np.float32), name="w")
    assert w._value.sharding == strategy.replicated_sharding

    @tj.function
    def step(batch: Any, scale: Any, note: str) -> Any:
        w.assign(w * scale)
        return tj.sum(batch["x"] * w)

    loss = strategy.run(step, {"x": np.ones((2, 3), np.float32)}, np.float32(2.0), "hi")
    assert float(loss) == 12.0 and w.numpy().tolist() == [2.0, 2.0, 2.0]
    assert "state %s0: f32[3] = variable w" in str(
        step.get_concrete_function({"x": np.ones((2, 3), np.float32)}, np.float32(2.0), "hi").ir
    )


def test_run_calls_plain_python_functions_eagerly() -> None:
    strategy = tj.distribute.DataParallel()
    seen = []

    def step(x: Any, k: int) -> Any:
        seen.append((type(x).__name__, k, tj.distribute.current_mesh() is strategy.mesh))
        return x * k

    out = strategy.run(step, np.arange(4.0, dtype=np.float32), k=3)
    assert out.numpy().tolist() == [0.0, 3.0, 6.0, 9.0]
    assert seen == [("Tensor", 3, True)]


def test_split_batch_and_batch_sharding() -> None:
    strategy = tj.distribute.DataParallel()
    t = strategy.split_batch(np.ones((4, 2), np.float32))
    assert t.value.sharding == strategy.data_sharding
    assert strategy.split_batch(t) is t  # already on the mesh: kept
    assert strategy.split_batch(3.0).value.sharding == strategy.replicated_sharding
    assert strategy.batch_sharding(tj.TensorSpec((None, 3))) == strategy.data_sharding
    assert strategy.batch_sharding(tj.TensorSpec(())) == strategy.replicated_sharding


def test_a_mesh_without_the_batch_axis_is_refused() -> None:
    mesh = tj.distribute.make_mesh((1,), ("model",))
    with pytest.raises(tj.distribute.ShardingError, match="has no axis 'data' to split the batch"):
        tj.distribute.DataParallel(mesh)
    assert tj.distribute.DataParallel(mesh, batch_axis="model").num_replicas == 1


def test_explicit_axis_meshes_become_automatic() -> None:
    mesh = jax.make_mesh((1,), ("data",))  # explicit axes by default in recent jax
    strategy = tj.distribute.DataParallel(mesh)
    types = getattr(strategy.mesh, "axis_types", None)
    assert types is None or all("Auto" in str(t) for t in types)
    f = tj.function(lambda x: tj.distribute.shard(x, P("data"), mesh) * 2.0)
    f = tj.function(f.python_function, in_shardings=NamedSharding(mesh, P("data")))
    assert f(np.ones(4, np.float32)).numpy().tolist() == [2.0] * 4
    with pytest.raises(tj.distribute.ShardingError, match="needs 4 devices, got 1"):
        tj.distribute.make_mesh((2, 2), ("a", "b"))
