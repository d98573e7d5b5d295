"""Checkpoints: object paths, bit-exact round trips, restores that fail without changing
anything, the manager, and crash safety (writers killed with SIGKILL at random moments)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import tracejit as tj
from tracejit.train import CheckpointError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RNG = np.random.default_rng(0)
X = RNG.normal(size=(32, 4)).astype(np.float32)
Y = (X[:, 0] > 0).astype(np.int32)


def make_training(seed=0):
    g = tj.random.Generator(seed)
    model = tj.nn.Sequential(
        [tj.nn.Dense(4, 8, activation="relu", generator=g), tj.nn.Dense(8, 3, generator=g)]
    )
    opt = tj.optim.Adam(0.05)
    noise = tj.random.Generator(seed + 1)

    @tj.function
    def step(x, y):
        with tj.GradientTape() as tape:
            loss = tj.nn.softmax_cross_entropy(model(x + noise.normal(x.shape) * 0.01), y)
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    ckpt = tj.train.Checkpoint(model=model, optimizer=opt, noise=noise)
    return ckpt, step


def values(ckpt):
    return {path: v.numpy().copy() for path, v in ckpt.variables().items()}


def assert_same(a, b):
    assert sorted(a) == sorted(b)
    for path in a:
        np.testing.assert_array_equal(a[path], b[path], err_msg=path)
        assert a[path].dtype == b[path].dtype


def test_paths_follow_the_object_graph():
    ckpt, step = make_training()
    step(X, Y)
    paths = sorted(ckpt.variables())
    assert paths[:4] == ["model/layers/0/bias", "model/layers/0/kernel", "model/layers/1/bias",
                         "model/layers/1/kernel"]  # fmt: skip
    assert "noise/state" in paths and "optimizer/iterations" in paths
    assert "optimizer/slots/model/layers/0/kernel/m" in paths
    assert "optimizer/slots/model/layers/1/bias/v" in paths
    assert "optimizer/learning_rate" in paths
    assert len(paths) == 4 + 3 + 8  # variables, step counter, rate and generator, Adam's m and v


def test_save_and_restore_are_bit_exact_and_training_resumes_identically(tmp_path):
    ckpt, step = make_training()
    for _ in range(3):
        step(X, Y)
    path = ckpt.save(str(tmp_path))
    assert os.path.basename(path) == "ckpt-1"
    snapshot = values(ckpt)
    losses = [float(step(X, Y)) for _ in range(3)]

    fresh, fresh_step = make_training(seed=5)  # other values, no optimizer slots yet
    status = fresh.restore(str(tmp_path))  # a directory: its newest checkpoint
    status.assert_consumed()
    assert status.path == path and len(status.restored) == len(snapshot)
    assert_same(values(fresh), snapshot)
    assert [float(fresh_step(X, Y)) for _ in range(3)] == losses  # generator state included
    assert json.load(open(os.path.join(path, "manifest.json")))["entries"]["model/layers/0/kernel"][
        "shape"] == [4, 8]  # fmt: skip


def test_manager_keeps_the_newest_and_latest_ignores_temporaries(tmp_path):
    step = tj.Variable(0, name="step")
    manager = tj.train.CheckpointManager(tj.train.Checkpoint(step=step), str(tmp_path), 3)
    assert manager.latest_checkpoint is None
    assert manager.restore_latest().restored == []
    for i in range(1, 6):
        step.assign(i)
        manager.save()
    assert [os.path.basename(p) for p in manager.checkpoints] == ["ckpt-3", "ckpt-4", "ckpt-5"]
    os.makedirs(tmp_path / ".tmp-ckpt-6-999999-abcd")  # a dead writer's leftovers
    os.makedirs(tmp_path / "ckpt-7")  # no manifest: not a checkpoint
    assert tj.train.latest_checkpoint(str(tmp_path)) == str(tmp_path / "ckpt-5")
    step.assign(0)
    manager.restore_latest().assert_consumed()
    assert int(step) == 5
    manager.save()
    assert not (tmp_path / ".tmp-ckpt-6-999999-abcd").exists()  # cleaned up (pid not running)


def test_reports_missing_and_unused_entries(tmp_path):
    a, b = tj.Variable(1.0), tj.Variable([1, 2])
    path = tj.train.Checkpoint(a=a, gone=b).save(str(tmp_path))
    c = tj.Variable(3.0)
    status = tj.train.Checkpoint(a=a, new=c).restore(path)
    assert (status.restored, status.missing, status.unused) == (["a"], ["new"], ["gone"])
    with pytest.raises(CheckpointError) as err:
        status.assert_consumed()
    assert str(err.value) == (
        f"restored 1 variable(s) from {path}\n"
        "  not in the checkpoint (left as they were): new\n"
        "  in the checkpoint but matching no live variable: gone"
    )
    with pytest.raises(CheckpointError):
        status.assert_existing_objects_matched()


@pytest.mark.parametrize("damage", ["checksum", "missing file", "shape", "dtype", "manifest"])
def test_a_failed_restore_changes_nothing(tmp_path, damage):
    ckpt, step = make_training()
    step(X, Y)
    path = ckpt.save(str(tmp_path))
    step(X, Y)
    before = values(ckpt)
    arrays = os.path.join(path, "arrays.npz")
    if damage == "checksum":  # a well-formed file whose bytes differ from the manifest's
        with np.load(arrays) as data:
            members = dict(data)
        members["a0"] = members["a0"] + 1
        np.savez(arrays, **members)
        expected = "checksum mismatch"
    elif damage == "missing file":
        os.remove(arrays)
        expected = "arrays.npz"
    elif damage == "manifest":
        open(os.path.join(path, "manifest.json"), "w").write('{"format": "tracejit.checkpoint"')
        expected = "not valid JSON"
    else:  # the live model changed since the save
        model = ckpt._objects["model"]
        if damage == "shape":
            model.layers[0].bias = tj.Variable(np.zeros(9, np.float32))
            expected = "model/layers/0/bias: the checkpoint holds f32[8], the variable is f32[9]"
        else:
            model.layers[0].bias = tj.Variable(np.zeros(8, np.int32))
            expected = "the variable is i32[8]"
        before = values(ckpt)
    with pytest.raises(CheckpointError, match=expected.replace("[", r"\[")):
        ckpt.restore(path)
    assert_same(values(ckpt), before)


def test_checkpoint_rejects_untrackable_objects():
    with pytest.raises(TypeError, match="a checkpoint tracks Variables"):
        tj.train.Checkpoint(data=np.zeros(3))


# Crash safety ------------------------------------------------------------------------------------
# The writer loads tracejit's checkpoint file layer with numpy alone (no jax), so that each of the
# killed children starts in a fraction of a second. It is the same code Checkpoint.save calls.
FAST_WRITER = r"""
import os, sys, types
root, directory, step = sys.argv[1], sys.argv[2], int(sys.argv[3])
for name in ("tracejit", "tracejit.saved", "tracejit.train"):
    package = types.ModuleType(name)
    package.__path__ = [os.path.join(root, *name.split("."))]
    sys.modules[name] = package
import numpy as np
from tracejit.saved import files
from tracejit.train import checkpoint_files
print("ready", flush=True)
while True:
    step += 1
    checkpoint_files.write_checkpoint(directory, {
        "w": np.full((512, 512), step, np.float32),
        "b": np.arange(1000, dtype=np.int32) + step,
        "step": np.asarray(step, np.int32),
    })
    for old in checkpoint_files.list_checkpoints(directory)[:-2]:
        files.remove_directory(old)
"""

TRACEJIT_WRITER = r"""
import sys
import numpy as np
import tracejit as tj
import tracejit.train
directory = sys.argv[1]
step = tj.Variable(0, name="step")
w = tj.Variable(np.zeros((512, 512), np.float32))
b = tj.Variable(np.zeros(1000, np.int32))
manager = tj.train.CheckpointManager(tj.train.Checkpoint(step=step, w=w, b=b), directory, 2)
manager.restore_latest()
print("ready", flush=True)
while True:
    n = int(step) + 1
    step.assign(n); w.assign(np.full((512, 512), n, np.float32)); b.assign(np.arange(1000, dtype=np.int32) + n)
    manager.save()
"""


def kill_at_random(command, delay):
    child = subprocess.Popen(command, stdout=subprocess.PIPE, cwd=ROOT)
    assert child.stdout.readline().strip() == b"ready"
    time.sleep(delay)
    child.send_signal(signal.SIGKILL)
    child.wait()


def check_latest(directory, last_step):
    """The newest complete checkpoint restores, and its values are those of one step."""
    step = tj.Variable(0, name="step")
    w = tj.Variable(np.zeros((512, 512), np.float32))
    b = tj.Variable(np.zeros(1000, np.int32))
    status = tj.train.Checkpoint(step=step, w=w, b=b).restore(directory)
    status.assert_consumed()
    n = int(step)
    assert n >= last_step
    np.testing.assert_array_equal(w.numpy(), np.full((512, 512), n, np.float32))
    np.testing.assert_array_equal(b.numpy(), np.arange(1000, dtype=np.int32) + n)
    return n


def test_killed_writers_never_leave_a_torn_checkpoint(tmp_path):
    rng = random.Random(0)
    directory, step, mid_write = str(tmp_path), 0, 0

    def temporaries():
        return {e for e in os.listdir(directory) if e.startswith(".tmp-")}

    for _ in range(20):
        before = temporaries()
        kill_at_random([sys.executable, "-c", FAST_WRITER, ROOT, directory, str(step)],
                       rng.uniform(0.0, 0.15))  # fmt: skip
        mid_write += bool(temporaries() - before)  # killed inside a save: its folder is left
        if tj.train.latest_checkpoint(directory) is not None:
            step = check_latest(directory, step)
    assert step > 20 and mid_write >= 5  # many saves, and many kills landed inside one
    # The full stack: Checkpoint + CheckpointManager in a tracejit process.
    kill_at_random([sys.executable, "-c", TRACEJIT_WRITER, directory], rng.uniform(0.1, 0.4))
    step = check_latest(directory, step)
    assert len(temporaries()) <= 1  # the fast writers' leftovers went in the manager's first save
