"""Data-parallel training in several processes: one script, run by every process.

On one machine, start N processes with the launcher (a coordinator on 127.0.0.1, CPU
collectives over gloo):

    python -m tracejit.distribute.launch --nproc 2 examples/train_processes.py --steps 20

On a cluster, start the script once per host with your scheduler (``srun python
examples/train_processes.py`` under SLURM): ``tj.distribute.initialize()`` finds the
coordinator, the process count and this process's id itself.

Every process builds the same model from the same seed, draws the same stream of global batches
and feeds only its own rows to ``strategy.run``; the step is one program over every process's
devices, so the loss and the variables are the same on every process.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

import tracejit as tj


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch", type=int, default=256, help="global batch (all processes)")
    parser.add_argument("--checkpoints", help="a directory to save a checkpoint to at the end")
    args = parser.parse_args()

    tj.distribute.initialize()  # first, before anything creates an array
    rank, count = tj.distribute.process_index(), tj.distribute.process_count()
    strategy = tj.distribute.DataParallel()  # every device of every process
    with strategy.scope():  # replicated variables, the same values everywhere (same seed)
        generator = tj.random.Generator(0)
        model = tj.nn.Sequential(
            [
                tj.nn.Dense(784, 128, activation="relu", generator=generator),
                tj.nn.Dense(128, 10, generator=generator),
            ]
        )
        optimizer = tj.optim.Adam(1e-3)

    @tj.function
    def train_step(x: tj.Tensor, y: tj.Tensor) -> tj.Tensor:
        with tj.GradientTape() as tape:
            loss = tj.nn.softmax_cross_entropy(model(x), y)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    rows = args.batch // count  # this process's share of each global batch
    mine = slice(rank * rows, (rank + 1) * rows)
    rng = np.random.default_rng(0)  # the same global batches on every process
    for step in range(args.steps):
        x = rng.normal(size=(args.batch, 784)).astype(np.float32)
        y = rng.integers(0, 10, size=args.batch).astype(np.int32)
        loss = strategy.run(train_step, x[mine], y[mine])  # a replicated loss: readable here
        if rank == 0 and step % 10 == 0:
            print(f"step {step}: loss {float(loss):.4f}")
    print(f"process {rank} of {count}: final loss {float(loss):.6f}")
    if args.checkpoints:
        checkpoint = tj.train.Checkpoint(model=model, optimizer=optimizer)
        path = tj.train.CheckpointManager(checkpoint, args.checkpoints).save()  # every process
        if rank == 0:
            print(f"saved {os.path.basename(path)}")


if __name__ == "__main__":
    main()
