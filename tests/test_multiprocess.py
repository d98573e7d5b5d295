"""Several real processes, one run: ``tj.distribute.initialize``, ``DataParallel`` across
processes, checkpoints, and the launcher ``python -m tracejit.distribute.launch``.

Every run starts its processes through the launcher on this machine (a coordinator on
127.0.0.1 at a free port, CPU collectives over gloo); tests/multiprocess_worker.py is the
script they run. The references are computed here, in one process on one device.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from distribute_checks import build, data

import tracejit as tj
from tracejit.distribute import launch
from tracejit.train.checkpoint_files import list_checkpoints

WORKER = Path(__file__).with_name("multiprocess_worker.py")
ROOT = Path(__file__).resolve().parent.parent
STEPS = 20


def launcher(
    nproc: int, *args: str, cpu_devices: int | None = None, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT)}
    env.pop("XLA_FLAGS", None)
    command = [sys.executable, "-m", "tracejit.distribute.launch", "--nproc", str(nproc)]
    if cpu_devices is not None:
        command += ["--cpu-devices", str(cpu_devices)]
    return subprocess.run(
        [*command, *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )


def succeeded(done: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr[-4000:]}"
    return done


def relative_error(a: Any, b: Any) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b))) / max(float(np.max(np.abs(a))), 1e-30)


@pytest.fixture(scope="module")
def single_process() -> dict[str, np.ndarray]:
    """20 Adam steps of the MLP on the whole batch of 64, in this process on one device."""
    model, step = build()
    xs, ys = data(STEPS)
    losses = [float(step(x, y)) for x, y in zip(xs, ys)]
    checkpoint = tj.train.Checkpoint(model=model, optimizer=model.optimizer)
    result = {f"var:{p}": v.numpy() for p, v in checkpoint.variables().items()}
    return {"losses": np.array(losses), **result}


def trained(tmp_path_factory: Any, nproc: int, cpu_devices: int | None) -> tuple[Path, Any]:
    out = tmp_path_factory.mktemp(f"train{nproc}")
    done = succeeded(
        launcher(nproc, str(WORKER), "train", str(out), str(STEPS), cpu_devices=cpu_devices)
    )
    ranks = [dict(np.load(out / f"rank{k}.npz")) for k in range(nproc)]
    return out, (done, ranks)


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory: Any) -> tuple[Path, Any]:
    return trained(tmp_path_factory, 2, cpu_devices=2)  # 2 processes x 2 devices


@pytest.fixture(scope="module")
def four_processes(tmp_path_factory: Any) -> tuple[Path, Any]:
    return trained(tmp_path_factory, 4, cpu_devices=None)  # 4 processes x 1 device


# Training across processes -----------------------------------------------------------------------
@pytest.mark.parametrize("run", ["two_processes", "four_processes"])
def test_training_across_processes_matches_one_process(
    run: str, request: pytest.FixtureRequest, single_process: dict[str, np.ndarray]
) -> None:
    _, (done, ranks) = request.getfixturevalue(run)
    for rank, result in enumerate(ranks):
        assert set(single_process) <= set(result)
        for key, expected in single_process.items():
            error = relative_error(expected, result[key])
            assert error <= 1e-5, f"rank {rank} {key}: relative error {error:.2e}"


@pytest.mark.parametrize("run", ["two_processes", "four_processes"])
def test_sharded_parameters_across_processes_match_one_process(
    run: str, request: pytest.FixtureRequest, single_process: dict[str, np.ndarray]
) -> None:
    _, (done, ranks) = request.getfixturevalue(run)
    for rank, result in enumerate(ranks):
        error = relative_error(single_process["losses"], result["sharded_losses"])
        assert error <= 1e-5, f"rank {rank} losses: relative error {error:.2e}"
        for key, expected in single_process.items():
            if key.startswith("var:"):
                error = relative_error(expected, result["sharded:" + key[4:]])
                assert error <= 1e-5, f"rank {rank} sharded {key}: relative error {error:.2e}"
    for name in ("kernel_is_split_over_processes", "kernel_shards"):
        assert f"[rank 0] CHECK {name} ok" in done.stdout


@pytest.mark.parametrize("run", ["two_processes", "four_processes"])
def test_variables_are_identical_on_every_process(run: str, request: pytest.FixtureRequest) -> None:
    _, (done, ranks) = request.getfixturevalue(run)
    for rank, result in enumerate(ranks[1:], start=1):
        for key, value in ranks[0].items():
            np.testing.assert_array_equal(value, result[key], err_msg=f"rank {rank}: {key}")


def test_host_reads_and_errors_in_a_multi_process_run(two_processes: Any) -> None:
    _, (done, ranks) = two_processes
    for name in (
        "variables_are_replicated",
        "uneven_batch_is_a_clear_error",
        "numpy_of_split_result_is_clear",
        "repr_of_split_result",
        "gather",
        "captured_global_constant",
        "folded_constant_in_a_step",
        "checkpoint_path_on_every_process",
    ):
        for rank in range(2):
            assert f"[rank {rank}] CHECK {name} ok" in done.stdout, done.stdout[-3000:]


# Checkpoints -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("directory", "prefix"), [("ckpt", "var:"), ("ckpt_sharded", "sharded:")])
def test_a_checkpoint_saved_by_two_processes_restores_in_one(
    two_processes: Any, directory: str, prefix: str
) -> None:
    out, (done, ranks) = two_processes
    (path,) = list_checkpoints(str(out / directory))
    model, step = build()
    xs, ys = data(1)
    step(xs[0], ys[0])  # the optimizer's slots exist before the restore
    checkpoint = tj.train.Checkpoint(model=model, optimizer=model.optimizer)
    checkpoint.restore(path).assert_consumed()
    restored = checkpoint.variables()
    for key, value in ranks[0].items():
        if key.startswith(prefix):
            np.testing.assert_array_equal(restored[key[len(prefix) :]].numpy(), value, key)


def test_a_checkpoint_saved_by_four_processes_restores_in_two(
    four_processes: Any, tmp_path: Path
) -> None:
    out, (done, ranks) = four_processes
    restored_run = succeeded(launcher(2, str(WORKER), "restore", str(tmp_path), str(out)))
    for rank in range(2):
        restored = dict(np.load(tmp_path / f"rank{rank}.npz"))
        for key, value in ranks[0].items():  # replicated (var:) and sharded (sharded:) state
            if key.startswith(("var:", "sharded:")):
                np.testing.assert_array_equal(restored[key], value, f"rank {rank}: {key}")
    for directory in ("ckpt", "ckpt_sharded"):  # each variable kept its own layout
        assert f"[rank 1] CHECK restored_layout_{directory} ok" in restored_run.stdout
    # One more step from the restored state is the same on both processes.
    first, second = (dict(np.load(tmp_path / f"rank{k}.npz")) for k in range(2))
    assert float(first["var:loss"]) == float(second["var:loss"])
    assert relative_error(first["var:loss"], first["sharded:loss"]) <= 1e-5


def test_a_writer_killed_during_save_leaves_no_torn_checkpoint(tmp_path: Path) -> None:
    began = time.monotonic()
    done = launcher(2, "--grace", "2", str(WORKER), "kill_in_save", str(tmp_path))
    elapsed = time.monotonic() - began
    assert done.returncode != 0, done.stdout
    # (Rank 1 may notice first, through gloo, that its peer is gone: then it is named first.)
    assert "rank 0 (pid" in done.stderr or "rank 0 was killed" in done.stderr, done.stderr
    assert "was killed by SIGKILL" in done.stderr, done.stderr
    assert elapsed < 120, elapsed
    directory = str(tmp_path / "ckpt")
    assert [os.path.basename(p) for p in list_checkpoints(directory)] == ["ckpt-1"]
    assert tj.train.latest_checkpoint(directory).endswith("ckpt-1")  # type: ignore[union-attr]
    tj.train.list_variables(directory)  # the complete one reads back


# The launcher ------------------------------------------------------------------------------------
def test_a_process_that_raises_stops_the_run_quickly(tmp_path: Path) -> None:
    began = time.monotonic()
    done = launcher(2, "--grace", "2", str(WORKER), "raise", str(tmp_path))
    elapsed = time.monotonic() - began
    assert done.returncode == 1, (done.returncode, done.stderr[-3000:])
    assert "[rank 1] ValueError: rank 1 gives up" in done.stderr, done.stderr[-3000:]
    assert "rank 1 (pid" in done.stderr and "exited with status 1; stopping rank(s) 0" in (
        done.stderr
    )
    # jax's shutdown would wait ~30 s for the peer; the launcher's children exit at once.
    assert elapsed < 60, f"the launcher took {elapsed:.0f} s"


def test_launcher_forwards_output_and_status(tmp_path: Path) -> None:
    script = tmp_path / "hello.py"
    script.write_text(
        "import os, sys\n"
        "rank = os.environ['TRACEJIT_PROCESS_ID']\n"
        "print('hello from', rank, 'of', os.environ['TRACEJIT_NUM_PROCESSES'],"
        " os.environ['TRACEJIT_COORDINATOR_ADDRESS'].startswith('127.0.0.1:'), sys.argv[1:])\n"
        "sys.exit(3 if rank == '2' else 0)\n"
    )
    done = launcher(3, str(script), "a", "--b")
    assert done.returncode == 3, done.stderr
    assert "[rank 2] hello from 2 of 3 True ['a', '--b']" in done.stdout, done.stdout
    assert "rank 2 (pid" in done.stderr and "exited with status 3" in done.stderr


def test_launcher_kills_a_process_that_ignores_sigterm(tmp_path: Path) -> None:
    script = tmp_path / "stubborn.py"
    script.write_text(
        "import os, signal, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "if os.environ['TRACEJIT_PROCESS_ID'] == '1':\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "print('waiting', flush=True)\n"
        "time.sleep(600)\n"
    )
    began = time.monotonic()
    done = launcher(2, "--grace", "1", str(script))
    assert time.monotonic() - began < 30
    assert done.returncode == 128 + 9, done.stderr
    assert "rank 1 (pid" in done.stderr and "was killed by SIGKILL; stopping rank(s) 0" in (
        done.stderr
    )


def test_launcher_timeout_stops_every_process(tmp_path: Path) -> None:
    script = tmp_path / "slow.py"
    script.write_text("import time\ntime.sleep(600)\n")
    done = launcher(2, "--timeout", "1", "--grace", "1", str(script))
    assert done.returncode == 124
    assert "passed --timeout 1 s; stopping rank(s) 0, 1" in done.stderr, done.stderr


def test_launcher_arguments_are_checked(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        launch.parse_args(["--nproc", "0", "x.py"])
    assert "--nproc must be at least 1, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        launch.parse_args(["--nproc", "2"])
    assert "give a script to run" in capsys.readouterr().err
    args = launch.parse_args(["--nproc", "2", "-m", "pkg.mod", "--flag"])
    assert args.module == "pkg.mod" and args.script is None and args.args == ["--flag"]
    assert launch.parse_args(["--nproc", "2", "s.py", "--nproc", "9"]).args == ["--nproc", "9"]
    ports = {launch.free_port() for _ in range(3)}
    assert all(0 < p < 65536 for p in ports)


# initialize --------------------------------------------------------------------------------------
def test_initialize_after_a_computation_is_a_clear_error() -> None:
    code = (
        "import tracejit as tj\n"
        "tj.constant(1.0) + 1.0\n"
        "try:\n"
        "    tj.distribute.initialize('127.0.0.1:1', num_processes=1, process_id=0)\n"
        "except tj.distribute.DistributedError as err:\n"
        "    print('refused:', err)\n"
    )
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert "refused: tj.distribute.initialize must be called before any computation" in (
        done.stdout
    ), done.stdout + done.stderr


def test_initialize_reads_the_launcher_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from tracejit.distribute import process

    monkeypatch.setenv(process.COORDINATOR, "127.0.0.1:5")
    monkeypatch.setenv(process.NUM_PROCESSES, "4")
    monkeypatch.setenv(process.PROCESS_ID, "3")
    assert process._from_environment(None, None, None) == ("127.0.0.1:5", 4, 3)
    assert process._from_environment("h:1", 2, 0) == ("h:1", 2, 0)  # arguments win
    monkeypatch.setenv(process.PROCESS_ID, "three")
    with pytest.raises(tj.distribute.DistributedError, match="TRACEJIT_PROCESS_ID='three'"):
        process._from_environment(None, None, None)


def test_one_process_reads_and_gathers_as_before() -> None:
    assert tj.distribute.process_count() == 1 and tj.distribute.process_index() == 0
    t = tj.constant([[1.0, 2.0]])
    np.testing.assert_array_equal(tj.distribute.gather(t), t.numpy())
    assert tj.distribute.gather(np.arange(3)).tolist() == [0, 1, 2]


# The scaling page's command ----------------------------------------------------------------------
def test_the_documented_example_runs_under_the_launcher(tmp_path: Path) -> None:
    example = ROOT / "examples" / "train_processes.py"
    checkpoints = tmp_path / "ckpts"
    done = succeeded(
        launcher(
            2, str(example), "--steps", "3", "--batch", "32", "--checkpoints", str(checkpoints)
        )
    )
    finals = [
        line.split("final loss ")[1] for line in done.stdout.splitlines() if "final loss" in line
    ]
    assert len(finals) == 2 and finals[0] == finals[1], done.stdout
    assert "[rank 0] step 0: loss" in done.stdout and "[rank 0] saved ckpt-1" in done.stdout
    page = (ROOT / "docs" / "scaling.md").read_text()
    assert "python -m tracejit.distribute.launch --nproc 2 examples/train_processes.py" in page


def test_which_variables_shard_parameters_splits() -> None:
    from jax.sharding import PartitionSpec as P

    strategy = tj.distribute.DataParallel(shard_parameters=True)  # one device: data=1
    assert strategy.variable_sharding((784, 64)).spec == P("data")
    assert strategy.variable_sharding(()).spec == P()  # scalars stay replicated
    assert strategy.variable_sharding((4,), np.int32).spec == P()  # counters, generator states
    assert tj.distribute.DataParallel().variable_sharding((784, 64)).spec == P()
    with strategy.scope():
        w = tj.Variable(np.ones((6, 2), np.float32))
        step = tj.Variable(0)
    assert w._value.sharding.spec == P("data") and step._value.sharding.spec == P()
    assert "sharded parameters" in repr(strategy)
