"""Start N processes of one script on this machine, as one multi-process jax run.

    python -m tracejit.distribute.launch --nproc 2 train.py --epochs 3

In the spirit of ``torchrun``: each process gets the coordinator's address, the process count
and its own id in the environment (``TRACEJIT_COORDINATOR_ADDRESS``, ``TRACEJIT_NUM_PROCESSES``,
``TRACEJIT_PROCESS_ID``; ``tj.distribute.initialize()`` reads them), its output lines are
forwarded with a ``[rank k]`` prefix, and if one process fails (a non-zero exit status, a signal)
the launcher stops the others — SIGTERM, then SIGKILL after ``--grace`` seconds — and exits with
that status, naming the process. It never waits on jax's own shutdown, which can block for a
long time when a peer is gone.

The coordinator port is one the system reports free (bound to port 0 and released), so parallel
launches do not collide. ``--cpu-devices K`` gives each process K forced CPU devices
(``--xla_force_host_platform_device_count``), to try several devices per process on a laptop.

The launcher itself runs nothing of jax's: only the processes it starts do.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import IO

from tracejit.distribute.process import COORDINATOR, LAUNCHED, NUM_PROCESSES, PROCESS_ID


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now (the system's pick for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tracejit.distribute.launch",
        description="Run SCRIPT in NPROC processes that form one jax distributed run.",
    )
    parser.add_argument("--nproc", type=int, required=True, help="number of processes")
    parser.add_argument("--port", type=int, default=0, help="coordinator port (default: free)")
    parser.add_argument(
        "--cpu-devices", type=int, default=None, help="forced CPU devices per process"
    )
    parser.add_argument(
        "--grace",
        type=float,
        default=5.0,
        help="seconds the others get to stop after SIGTERM, before SIGKILL (default 5)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="stop every process and fail after this many seconds (default: no limit)",
    )
    parser.add_argument("-m", dest="module", help="run a module (python -m) instead of a script")
    parser.add_argument("script", nargs="?", help="the script to run in every process")
    parser.add_argument("args", nargs="*", help="its arguments (everything after the script)")
    own, rest = _split(list(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(own)
    args.args = rest
    if args.nproc < 1:
        parser.error(f"--nproc must be at least 1, got {args.nproc}")
    if args.module is None and args.script is None:
        parser.error("give a script to run (or -m module)")
    return args


_VALUED = ("--nproc", "--port", "--cpu-devices", "--grace", "--timeout", "-m")


def _split(argv: list[str]) -> tuple[list[str], list[str]]:
    """The launcher's own arguments (up to the script or ``-m module``), and the rest: the
    script's, passed on as they are even when they look like the launcher's options."""
    i = 0
    while i < len(argv):
        word = argv[i]
        if word == "-m":
            return argv[: i + 2], argv[i + 2 :]
        if word in _VALUED:
            i += 2
        elif word.startswith("-"):
            i += 1
        else:
            return argv[: i + 1], argv[i + 1 :]
    return argv, []


def child_environment(rank: int, nproc: int, address: str, cpu_devices: int | None) -> dict:
    env = dict(os.environ)
    env.update({COORDINATOR: address, NUM_PROCESSES: str(nproc), PROCESS_ID: str(rank)})
    env[LAUNCHED] = "1"
    env["PYTHONUNBUFFERED"] = "1"  # lines arrive as they are printed
    if cpu_devices is not None:
        flags = env.get("XLA_FLAGS", "")
        env["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={cpu_devices}".strip()
    return env


def _forward(stream: IO[bytes], rank: int, out: IO[str], lock: threading.Lock) -> None:
    prefix = f"[rank {rank}] "
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", "replace").rstrip("\n")
        with lock:
            out.write(prefix + line + "\n")
            out.flush()
    stream.close()


def describe_status(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)  # the child leads its own group: its children go too
    except (ProcessLookupError, PermissionError):
        pass


def stop(processes: list[subprocess.Popen], grace: float) -> None:
    """SIGTERM every running process, then SIGKILL those still running after ``grace``."""
    running = [p for p in processes if p.poll() is None]
    for p in running:
        _signal_group(p, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for p in running:
        try:
            p.wait(max(deadline - time.monotonic(), 0.0))
        except subprocess.TimeoutExpired:
            pass
    for p in processes:
        if p.poll() is None:
            _signal_group(p, signal.SIGKILL)
            p.wait()


def run(args: argparse.Namespace) -> int:
    """Start the processes, forward their output, and return the exit status of the run."""
    address = f"127.0.0.1:{args.port or free_port()}"
    target = ["-m", args.module] if args.module is not None else [args.script]
    command = [sys.executable, *target, *args.args]
    lock = threading.Lock()
    processes: list[subprocess.Popen] = []
    threads: list[threading.Thread] = []
    for rank in range(args.nproc):
        p = subprocess.Popen(
            command,
            env=child_environment(rank, args.nproc, address, args.cpu_devices),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        processes.append(p)
        for stream, out in ((p.stdout, sys.stdout), (p.stderr, sys.stderr)):
            thread = threading.Thread(target=_forward, args=(stream, rank, out, lock), daemon=True)
            thread.start()
            threads.append(thread)
    status = _supervise(processes, args)
    for thread in threads:
        thread.join(timeout=2.0)
    return status


def _report(message: str) -> None:
    sys.stderr.write(f"tracejit.distribute.launch: {message}\n")
    sys.stderr.flush()


def _supervise(processes: list[subprocess.Popen], args: argparse.Namespace) -> int:
    started = time.monotonic()
    interrupted: list[int] = []

    def on_signal(signum: int, frame: object) -> None:
        interrupted.append(signum)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while True:
            codes = [p.poll() for p in processes]
            failed = [(rank, c) for rank, c in enumerate(codes) if c not in (None, 0)]
            if failed:
                rank, code = failed[0]
                others = [r for r, c in enumerate(codes) if c is None]
                stopping = f"; stopping rank(s) {', '.join(map(str, others))}" if others else ""
                pid = processes[rank].pid
                _report(f"rank {rank} (pid {pid}) {describe_status(code)}{stopping}")
                stop(processes, args.grace)
                for other, p in enumerate(processes):  # how the others ended, for the record
                    if other != rank and p.returncode:
                        stopped = " (stopped)" if other in others else ""
                        _report(f"rank {other} {describe_status(p.returncode)}{stopped}")
                return code if code > 0 else 128 - code
            if all(c == 0 for c in codes):
                return 0
            if interrupted:
                _report(f"got {signal.Signals(interrupted[0]).name}; stopping every rank")
                stop(processes, args.grace)
                return 128 + interrupted[0]
            if args.timeout is not None and time.monotonic() - started > args.timeout:
                running = [r for r, c in enumerate(codes) if c is None]
                _report(
                    f"the run passed --timeout {args.timeout:g} s; stopping rank(s) "
                    f"{', '.join(map(str, running))}"
                )
                stop(processes, args.grace)
                return 124
            time.sleep(0.05)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def main(argv: Sequence[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
