"""One process of a multi-process run, started by tests/test_multiprocess.py through
``python -m tracejit.distribute.launch --nproc N tests/multiprocess_worker.py MODE OUT ...``.

Modes:

- ``train OUT STEPS``: ``DataParallel`` over every process's devices trains the MLP+Adam step
  of tests/distribute_checks.py for STEPS steps, each process feeding its rows of the global
  batch of 64; checks host reads of global arrays; saves a checkpoint to OUT/ckpt (every
  process calls save, process 0 writes); writes OUT/rank<k>.npz (losses, variables).
  The same again with ``DataParallel(shard_parameters=True)``, saved to OUT/ckpt_sharded.
- ``restore OUT SAVED``: restores SAVED/ckpt into a replicated model and SAVED/ckpt_sharded
  into a sharded one (written by another process count), writes the restored variables and
  one more step's loss to OUT/rank<k>.npz.
- ``raise OUT``: rank 1 raises after one step while the others go on stepping (the launcher
  must stop them); ``kill_in_save OUT``: rank 0 is killed while writing its second checkpoint.

Each check prints ``CHECK <name> ok`` (or raises, which ends the run non-zero).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

import numpy as np

import tracejit as tj

tj.distribute.initialize()  # first: before anything touches jax's devices
tj.config.set_debug_checks(True)

import jax  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from distribute_checks import build, data  # noqa: E402

BATCH = 64


def local_rows(array: np.ndarray) -> np.ndarray:
    """This process's part of a global batch (rows in process order)."""
    per = array.shape[0] // jax.process_count()
    start = jax.process_index() * per
    return array[start : start + per]


def checkpoint_of(model: Any) -> Any:
    return tj.train.Checkpoint(model=model, optimizer=model.optimizer)


def variables_of(model: Any, prefix: str = "var:") -> dict[str, np.ndarray]:
    """Every variable's whole value (gathered: sharded ones are split over the processes)."""
    variables = checkpoint_of(model).variables()
    return {f"{prefix}{path}": tj.distribute.gather(v) for path, v in variables.items()}


def check(name: str, ok: bool, detail: str = "") -> None:
    if not ok:
        raise AssertionError(f"{name}: {detail}")
    print(f"CHECK {name} ok", flush=True)


def host_reads(strategy: Any) -> None:
    """A per-example result is a global array split over processes: numpy() says so, gather
    reads it; a function that captures it as a constant still traces and runs (the passes do
    not read it on the host); a folded constant in a step works on every process."""
    rank = jax.process_index()
    local = np.full((2, 3), float(rank), np.float32)
    out = strategy.run(tj.function(lambda x: x * 2.0), local)
    try:
        out.numpy()
    except tj.distribute.NotAddressableError as err:
        message = str(err)
    else:
        message = "no error"
    check("numpy_of_split_result_is_clear", "tj.distribute.gather" in message, message)
    check("repr_of_split_result", "split over the devices of" in repr(out), repr(out))
    expected = np.repeat(np.arange(jax.process_count(), dtype=np.float32), 2)[:, None] * 2.0
    whole = tj.distribute.gather(out)
    check("gather", np.array_equal(whole, np.broadcast_to(expected, whole.shape)), str(whole))
    captured = tj.function(lambda: out * 1.0 + 0.0)  # simplify asks whether out is a 0 or 1
    check("captured_global_constant", np.array_equal(tj.distribute.gather(captured()), whole))
    folded = tj.function(lambda x: tj.sum(x * (tj.ones((3,)) * 2.0 + 1.0)))
    total = float(strategy.run(folded, local))
    want = 3.0 * 3.0 * 2 * sum(range(jax.process_count()))
    check("folded_constant_in_a_step", total == want, f"{total} != {want}")


def uneven_batch(strategy: Any, step: Any) -> None:
    x, y = data(1, batch=3)
    try:
        strategy.run(step, x[0], y[0])
    except tj.distribute.ShardingError as err:
        message = str(err)
    else:
        message = "it ran"
    parts = len(jax.local_devices())
    check(
        "uneven_batch_is_a_clear_error",
        "argument 0 has a batch of 3 rows" in message
        and f"this process holds {parts} of the {len(jax.devices())} parts" in message,
        message,
    )


def train(out: Path, steps: int) -> None:
    strategy = tj.distribute.DataParallel()
    model, step = build(strategy)
    xs, ys = data(steps, BATCH)
    losses = [float(strategy.run(step, local_rows(x), local_rows(y))) for x, y in zip(xs, ys)]
    kernel = model.layers[0].kernel
    check("variables_are_replicated", kernel.value().value.sharding.is_fully_replicated)
    if len(jax.local_devices()) > 1:
        uneven_batch(strategy, step)
    host_reads(strategy)
    manager = tj.train.CheckpointManager(checkpoint_of(model), str(out / "ckpt"), max_to_keep=1)
    path = manager.save()
    check("checkpoint_path_on_every_process", os.path.isdir(path), path)
    results = {"losses": np.array(losses), **variables_of(model)}
    results.update(train_sharded(out, steps))
    np.savez(out / f"rank{jax.process_index()}.npz", **results)


def train_sharded(out: Path, steps: int) -> dict[str, np.ndarray]:
    """The same training with parameters and optimizer slots split over every process's
    devices (shard_parameters=True), and its checkpoint (the sharded state, gathered)."""
    strategy = tj.distribute.DataParallel(shard_parameters=True)
    model, step = build(strategy)
    xs, ys = data(steps, BATCH)
    losses = [float(strategy.run(step, local_rows(x), local_rows(y))) for x, y in zip(xs, ys)]
    kernel = model.layers[0].kernel._value
    check("kernel_is_split_over_processes", not kernel.is_fully_addressable, str(kernel.sharding))
    shard_rows = {s.data.shape[0] for s in kernel.addressable_shards}
    check("kernel_shards", shard_rows == {784 // len(jax.devices())}, str(shard_rows))
    try:
        model.layers[0].kernel.numpy()
    except tj.distribute.NotAddressableError as err:
        check("numpy_of_a_sharded_variable_is_clear", "gather" in str(err), str(err))
    manager = tj.train.CheckpointManager(checkpoint_of(model), str(out / "ckpt_sharded"))
    manager.save()
    return {"sharded_losses": np.array(losses), **variables_of(model, "sharded:")}


def restore(out: Path, saved: Path) -> None:
    """Restore both checkpoints of a ``train`` run (made by another process count): the
    replicated one into a replicated model, the sharded one into a sharded model."""
    results = {}
    for sharded, directory, prefix in ((False, "ckpt", "var:"), (True, "ckpt_sharded", "sharded:")):
        strategy = tj.distribute.DataParallel(shard_parameters=sharded)
        model, step = build(strategy)
        xs, ys = data(1, BATCH)
        strategy.run(step, local_rows(xs[0]), local_rows(ys[0]))  # creates the optimizer's slots
        checkpoint_of(model).restore(str(saved / directory)).assert_consumed()
        kernel = model.layers[0].kernel._value
        check(f"restored_layout_{directory}", kernel.is_fully_replicated is not sharded)
        results.update(variables_of(model, prefix))
        loss = float(strategy.run(step, local_rows(xs[0]), local_rows(ys[0])))
        results[f"{prefix}loss"] = np.array(loss)
    np.savez(out / f"rank{jax.process_index()}.npz", **results)


def fail(out: Path, how: str) -> None:
    strategy = tj.distribute.DataParallel()
    model, step = build(strategy)
    xs, ys = data(1, BATCH)
    strategy.run(step, local_rows(xs[0]), local_rows(ys[0]))
    if how == "kill_in_save":
        manager = tj.train.CheckpointManager(checkpoint_of(model), str(out / "ckpt"))
        manager.save()
        print("CHECK first_checkpoint_saved ok", flush=True)
        if jax.process_index() == 0:
            from tracejit.saved import files

            def killed(*args: Any, **kwargs: Any) -> Any:
                os.kill(os.getpid(), signal.SIGKILL)  # dies with half a checkpoint written

            files.write_json = killed  # type: ignore[assignment]
        manager.save()
        raise AssertionError("the second save returned")
    if jax.process_index() == 1:
        raise ValueError("rank 1 gives up")
    while True:  # the others wait for rank 1 in the next step's all-reduce
        float(strategy.run(step, local_rows(xs[0]), local_rows(ys[0])))


def main(argv: list[str]) -> None:
    mode, out = argv[0], Path(argv[1])
    if mode == "train":
        train(out, int(argv[2]))
    elif mode == "restore":
        restore(out, Path(argv[2]))
    else:
        fail(out, mode)


if __name__ == "__main__":
    main(sys.argv[1:])
