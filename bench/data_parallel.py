"""Data-parallel training throughput: the MNIST MLP step on 1, 2, 4, 8 devices.

MLP 784-128-10 (relu), softmax cross-entropy, Adam, float32, synthetic data, one global batch
(default 512) split over the devices by ``tj.distribute.DataParallel``. Per device count:
examples/s through ``strategy.run`` (which lays each batch out from host memory), the same with
the batches already on the devices, ms/step, and the first call (trace + compile).

Two platforms:

- ``--platform cpu`` (the default): each count runs on that many *forced* host devices
  (``XLA_FLAGS=--xla_force_host_platform_device_count=N``). They all share this machine's CPU
  cores, so more devices cannot go faster: the table shows what partitioning costs (collectives,
  smaller per-device matmuls, dispatch to N devices), not a speed-up.
- ``--platform native``: the machine's real devices (GPUs, TPUs), counts up to all of them.

XLA_FLAGS must be set before jax initializes, so the script runs each count in its own process
(itself, with ``--worker N``) and prints one table.

``--processes 1,2,4`` instead runs the step in N *processes* (one CPU device each) through
``python -m tracejit.distribute.launch``: jax's multi-controller runtime with gloo collectives,
as on a cluster. Each process feeds its rows of the global batch; per count the table shows
examples/s and the per-step time split: the same step on this process's rows alone (a strategy
over its own device: no all-reduce) and the difference to the real step (the all-reduce and the
synchronization between processes). On one machine the processes share its cores, so this shows
overhead, not a speed-up: what matters is that the overhead per step stays small and flat.

    python bench/data_parallel.py                         # forced CPU devices 1, 2, 4, 8
    python bench/data_parallel.py --platform native       # a multi-GPU machine
    python bench/data_parallel.py --counts 1,8 --batch 1024 --steps 100
    python bench/data_parallel.py --processes 1,2,4       # processes, through the launcher
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

SIZES = (784, 128, 10)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--platform", choices=("cpu", "native"), default="cpu")
    parser.add_argument("--counts", help="device counts, e.g. 1,2,4,8 (default: powers of 2)")
    parser.add_argument("--batch", type=int, default=512, help="global batch (rows per step)")
    parser.add_argument("--steps", type=int, default=50, help="timed steps per count")
    parser.add_argument(
        "--processes", help="process counts, e.g. 1,2,4: one CPU device per process"
    )
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--process-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--list-devices", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# One device count, in its own process ------------------------------------------------------------
def build_step(strategy: Any) -> Any:
    import tracejit as tj

    with strategy.scope():
        generator = tj.random.Generator(0)
        model = tj.nn.Sequential(
            [
                tj.nn.Dense(SIZES[0], SIZES[1], activation="relu", generator=generator),
                tj.nn.Dense(SIZES[1], SIZES[2], generator=generator),
            ]
        )
        optimizer = tj.optim.Adam(1e-3)

    @tj.function
    def train_step(x: Any, y: Any) -> Any:
        with tj.GradientTape() as tape:
            loss = tj.nn.softmax_cross_entropy(model(x), y)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    train_step.model, train_step.optimizer = model, optimizer  # (for the byte counts)
    return train_step


def bytes_per_device(variables: list[Any]) -> int:
    """Bytes of the variables' values held by one device (its shard of each)."""
    return sum(v._value.addressable_shards[0].data.nbytes for v in variables)


def median_seconds(run: Any, batches: list[Any], steps: int) -> float:
    times = []
    for i in range(steps):
        x, y = batches[i % len(batches)]
        start = time.perf_counter()
        loss = run(x, y)
        loss.value.block_until_ready()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def worker(count: int, args: argparse.Namespace) -> dict[str, Any]:
    import jax
    import numpy as np

    import tracejit as tj

    devices = jax.devices()[:count]
    if len(devices) < count:
        raise SystemExit(f"asked for {count} devices, jax sees {len(jax.devices())}")
    strategy = tj.distribute.DataParallel(devices)
    step = build_step(strategy)
    rng = np.random.default_rng(0)
    host = [
        (
            rng.normal(size=(args.batch, SIZES[0])).astype(np.float32),
            rng.integers(0, SIZES[-1], args.batch).astype(np.int32),
        )
        for _ in range(4)
    ]
    start = time.perf_counter()
    strategy.run(step, *host[0]).value.block_until_ready()
    first = time.perf_counter() - start
    for x, y in host:  # warm up
        strategy.run(step, x, y)
    from_host = median_seconds(lambda x, y: strategy.run(step, x, y), host, args.steps)
    placed = [(strategy.split_batch(x), strategy.split_batch(y)) for x, y in host]
    on_device = median_seconds(step, placed, args.steps)
    return {
        "devices": count,
        "platform": devices[0].platform,
        "device_kind": devices[0].device_kind,
        "first_call_s": first,
        "ms_per_step": from_host * 1e3,
        "examples_per_s": args.batch / from_host,
        "examples_per_s_on_device": args.batch / on_device,
    }


# Several processes, through the launcher ---------------------------------------------------------
def process_worker(args: argparse.Namespace) -> dict[str, Any] | None:
    """One process of a ``--processes`` run: time the step over every process's devices, and
    the same step over this process's devices alone (its rows, no all-reduce)."""
    import tracejit as tj

    tj.distribute.initialize()
    import jax
    import numpy as np

    count, rank = jax.process_count(), jax.process_index()
    local_batch = args.batch // count
    rng = np.random.default_rng(rank)
    host = [
        (
            rng.normal(size=(local_batch, SIZES[0])).astype(np.float32),
            rng.integers(0, SIZES[-1], local_batch).astype(np.int32),
        )
        for _ in range(4)
    ]
    timings: dict[str, float] = {}
    for name, strategy in (
        ("global", tj.distribute.DataParallel()),
        ("local", tj.distribute.DataParallel(jax.local_devices())),
        ("sharded", tj.distribute.DataParallel(shard_parameters=True)),
    ):
        step = build_step(strategy)
        start = time.perf_counter()
        strategy.run(step, *host[0]).value.block_until_ready()
        timings[f"{name}_first_call_s"] = time.perf_counter() - start
        for x, y in host:  # warm up
            strategy.run(step, x, y)
        placed = [(strategy.split_batch(x), strategy.split_batch(y)) for x, y in host]
        timings[name] = median_seconds(step, placed, args.steps)
        variables = list(step.model.trainable_variables)
        timings[f"{name}_parameter_bytes"] = bytes_per_device(variables)
        timings[f"{name}_state_bytes"] = bytes_per_device(variables + step.optimizer.variables)
    if rank:
        return None
    return {
        "processes": count,
        "platform": jax.devices()[0].platform,
        "device_kind": jax.devices()[0].device_kind,
        "first_call_s": timings["global_first_call_s"],
        "ms_per_step": timings["global"] * 1e3,
        "ms_local_step": timings["local"] * 1e3,
        "ms_all_reduce": (timings["global"] - timings["local"]) * 1e3,
        "examples_per_s": args.batch / timings["global"],
        "ms_sharded_step": timings["sharded"] * 1e3,
        "parameter_bytes_replicated": timings["global_parameter_bytes"],
        "parameter_bytes_sharded": timings["sharded_parameter_bytes"],
        "state_bytes_replicated": timings["global_state_bytes"],
        "state_bytes_sharded": timings["sharded_state_bytes"],
    }


def launch_processes(args: argparse.Namespace, count: int) -> dict[str, Any]:
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    env.pop("XLA_FLAGS", None)  # one CPU device per process
    command = [
        sys.executable, "-m", "tracejit.distribute.launch", "--nproc", str(count),
        os.path.abspath(__file__), "--process-worker",
        "--batch", str(args.batch), "--steps", str(args.steps),
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr[-3000:]}")
    lines = [line for line in done.stdout.splitlines() if line.startswith("[rank 0] {")]
    return json.loads(lines[-1][len("[rank 0] ") :])


def report_processes(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    first = rows[0]
    print(
        f"data-parallel MLP {'-'.join(map(str, SIZES))} train step (Adam, float32), global batch "
        f"{args.batch}, median of {args.steps} steps, N processes x 1 {first['platform']} device "
        "(jax.distributed, gloo), through python -m tracejit.distribute.launch"
    )
    print(
        f"{'processes':>9}  {'examples/s':>10}  {'ms/step':>8}  {'local-only ms':>13}  "
        f"{'all-reduce ms':>13}  {'first call s':>12}"
    )
    for row in rows:
        print(
            f"{row['processes']:>9}  {row['examples_per_s']:>10,.0f}  {row['ms_per_step']:>8.2f}  "
            f"{row['ms_local_step']:>13.2f}  {row['ms_all_reduce']:>13.2f}  "
            f"{row['first_call_s']:>12.2f}"
        )
    print(
        "local-only: the same step on this process's rows over its own device (no all-reduce); "
        "all-reduce: ms/step minus that (the collective and the wait for the other processes)."
    )
    print()
    print("DataParallel(shard_parameters=True): parameters and Adam slots split over the devices")
    print(
        f"{'processes':>9}  {'sharded ms/step':>15}  {'param KiB/device':>16}  "
        f"{'sharded':>8}  {'+slots KiB/device':>17}  {'sharded':>8}"
    )
    for row in rows:
        print(
            f"{row['processes']:>9}  {row['ms_sharded_step']:>15.2f}  "
            f"{row['parameter_bytes_replicated'] / 1024:>16.1f}  "
            f"{row['parameter_bytes_sharded'] / 1024:>8.1f}  "
            f"{row['state_bytes_replicated'] / 1024:>17.1f}  "
            f"{row['state_bytes_sharded'] / 1024:>8.1f}"
        )
    print(
        f"NOTE: the processes share this machine's {os.cpu_count()} cores: this shows the "
        "overhead of running the step across processes, not a speed-up."
    )


# The driver --------------------------------------------------------------------------------------
def launch(args: argparse.Namespace, extra: list[str], count: int | None = None) -> str:
    env = dict(os.environ)
    if args.platform == "cpu":
        flags = env.get("XLA_FLAGS", "")
        forced = f"--xla_force_host_platform_device_count={count or 1}"
        env["XLA_FLAGS"] = f"{flags} {forced}".strip()
        env["JAX_PLATFORMS"] = "cpu"
    command = [sys.executable, os.path.abspath(__file__), "--platform", args.platform, *extra]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr[-3000:]}")
    return done.stdout.strip().splitlines()[-1]


def device_counts(args: argparse.Namespace) -> list[int]:
    if args.counts:
        return [int(c) for c in args.counts.split(",")]
    if args.platform == "cpu":
        return [1, 2, 4, 8]
    available = int(launch(args, ["--list-devices"]))
    counts = [1]
    while counts[-1] * 2 <= available:
        counts.append(counts[-1] * 2)
    if counts[-1] != available:
        counts.append(available)
    return counts


def report(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    first = rows[0]
    print(
        f"data-parallel MLP {'-'.join(map(str, SIZES))} train step (Adam, float32), global batch "
        f"{args.batch}, median of {args.steps} steps, on {first['platform']} "
        f"({first['device_kind']})"
    )
    print(
        f"{'devices':>7}  {'examples/s':>10}  {'ms/step':>8}  {'vs 1':>5}  "
        f"{'on-device ex/s':>14}  {'first call s':>12}"
    )
    base = first["examples_per_s"]
    for row in rows:
        print(
            f"{row['devices']:>7}  {row['examples_per_s']:>10,.0f}  {row['ms_per_step']:>8.2f}  "
            f"{row['examples_per_s'] / base:>5.2f}  {row['examples_per_s_on_device']:>14,.0f}  "
            f"{row['first_call_s']:>12.2f}"
        )
    print(
        "examples/s: through strategy.run, batches laid out from host memory each step; "
        "on-device: batches already split over the devices."
    )
    if args.platform == "cpu":
        cores = os.cpu_count()
        print(
            f"NOTE: forced CPU devices all share this machine's {cores} cores, so this shows the "
            "overhead of partitioning one step over N devices, not a speed-up. Run with "
            "--platform native on a multi-GPU machine for scaling figures."
        )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.list_devices:
        import jax

        print(len(jax.devices()))
        return
    if args.worker is not None:
        print(json.dumps(worker(args.worker, args)))
        return
    if args.process_worker:
        result = process_worker(args)
        if result is not None:
            print(json.dumps(result), flush=True)
        return
    if args.processes:
        counts = [int(c) for c in args.processes.split(",")]
        rows = [launch_processes(args, n) for n in counts if args.batch % n == 0]
        report_processes(rows, args)
        return
    rows = []
    for count in device_counts(args):
        if args.batch % count:
            print(f"skipping {count} devices: batch {args.batch} does not split evenly")
            continue
        extra = ["--worker", str(count), "--batch", str(args.batch), "--steps", str(args.steps)]
        rows.append(json.loads(launch(args, extra, count)))
    report(rows, args)


if __name__ == "__main__":
    main()
