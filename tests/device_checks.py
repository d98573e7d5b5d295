"""``tj.device`` on two forced CPU devices, run in its own process by tests/test_tf2_more.py.

XLA_FLAGS must hold ``--xla_force_host_platform_device_count=2`` before jax initializes (the
pytest process has one device). Each check prints one ``CHECK <name> ok|FAIL <message>`` line;
the exit status is the number of failures.

    XLA_FLAGS=--xla_force_host_platform_device_count=2 python tests/device_checks.py
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable

import numpy as np

CHECKS: dict[str, Callable[[], None]] = {}


def check(fn: Callable[[], None]) -> Callable[[], None]:
    CHECKS[fn.__name__] = fn
    return fn


def devices() -> tuple[object, object]:
    import jax

    first, second = jax.devices("cpu")
    return first, second


@check
def eager_tensors_and_ops_land_on_cpu_1() -> None:
    import tracejit as tj

    _, second = devices()
    with tj.device("cpu:1") as placed:
        x = tj.constant([1.0, 2.0, 3.0])
        y = tj.exp(x) * 2.0
    assert placed == second, placed
    assert x.device == second and x.value.devices() == {second}, x.value.devices()
    assert y.device == second, y.device
    np.testing.assert_allclose(y.numpy(), np.exp([1.0, 2.0, 3.0]) * 2.0, rtol=1e-6)
    outside = tj.constant([1.0])
    assert outside.device == devices()[0], outside.device


@check
def tf_spellings_name_the_same_device() -> None:
    import tracejit as tj

    _, second = devices()
    for name in (
        "cpu:1",
        "CPU:1",
        "/device:CPU:1",
        "/CPU:1",
        "/job:localhost/replica:0/task:0/device:CPU:1",
    ):
        with tj.device(name) as placed:
            assert placed == second, (name, placed)
    with tj.device("cpu") as placed:  # no index: the first device of the platform
        assert placed == devices()[0]


@check
def variables_are_pinned_to_their_device() -> None:
    import tracejit as tj

    _, second = devices()
    with tj.device("cpu:1"):
        v = tj.Variable([1.0, 2.0])
    assert v.value().device == second
    v.assign_add([1.0, 1.0])  # eagerly, outside the block: the variable stays where it lives
    assert v.value().device == second
    np.testing.assert_allclose(v.numpy(), [2.0, 3.0])


@check
def compiled_calls_run_on_the_device() -> None:
    import tracejit as tj

    first, second = devices()
    w = tj.Variable([[1.0, 0.0], [0.0, 2.0]])  # on cpu:0

    @tj.function
    def f(x):
        return x @ w + 1.0

    x = tj.constant([[1.0, 1.0]])
    with tj.device("cpu:1"):
        inside = f(x)
    outside = f(x)
    assert f.trace_count == 1  # placement is not part of the trace: one trace, two devices
    assert inside.device == second and outside.device == first, (inside.device, outside.device)
    np.testing.assert_allclose(inside.numpy(), [[2.0, 3.0]])
    np.testing.assert_allclose(outside.numpy(), [[2.0, 3.0]])


@check
def a_train_step_on_cpu_1_updates_its_variables_there() -> None:
    import tracejit as tj

    _, second = devices()
    with tj.device("cpu:1"):
        w = tj.Variable([0.0, 0.0])
        opt = tj.optim.SGD(0.5)

        @tj.function
        def step(x, y):
            with tj.GradientTape() as tape:
                loss = tj.sum((x * w - y) ** 2)
            opt.apply_gradients([(tape.gradient(loss, w), w)])
            return loss

        x, y = tj.constant([1.0, 2.0]), tj.constant([2.0, 2.0])
        losses = [float(step(x, y)) for _ in range(3)]
    # Reference: plain numpy gradient descent on the same loss.
    ref_w, ref_losses = np.zeros(2), []
    for _ in range(3):
        ref_losses.append(float(np.sum((np.array([1.0, 2.0]) * ref_w - 2.0) ** 2)))
        ref_w -= 0.5 * 2 * (np.array([1.0, 2.0]) * ref_w - 2.0) * np.array([1.0, 2.0])
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-6)
    np.testing.assert_allclose(w.numpy(), ref_w, rtol=1e-6)
    assert w.value().device == second


@check
def to_device_copies_to_another_device() -> None:
    import tracejit as tj

    _, second = devices()
    x = tj.constant([1.0, 2.0])
    moved = x.to_device("cpu:1")
    assert moved.device == second and x.device != second
    assert x.to_device(x.device) is x


@check
def the_array_api_device_argument_follows_tj_device() -> None:
    import tracejit as tj

    _, second = devices()
    with tj.device("cpu:1"):
        made = tj.zeros((2,), device=second)  # the device tensors are made on here
        assert made.device == second
    try:
        tj.ones((2,), device=second)  # outside the block: placing is tj.device's job
    except ValueError as err:
        assert "with tj.device" in str(err), str(err)
    else:
        raise AssertionError("device=cpu:1 outside tj.device did not raise")


@check
def unknown_devices_list_the_available_ones() -> None:
    import tracejit as tj

    for name in ("cpu:2", "gpu:0"):
        try:
            with tj.device(name):
                pass
        except ValueError as err:
            assert "Available devices: cpu:0, cpu:1" in str(err), str(err)
        else:
            raise AssertionError(f"tj.device({name!r}) did not raise")


def main(names: list[str]) -> int:
    failures = 0
    for name, fn in CHECKS.items():
        if names and name not in names:
            continue
        try:
            fn()
            print(f"CHECK {name} ok", flush=True)
        except Exception:  # noqa: BLE001 - reported to the test that runs this script
            failures += 1
            message = traceback.format_exc().strip().splitlines()
            print(f"CHECK {name} FAIL {' | '.join(message[-4:])}", flush=True)
    return failures


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
