"""Buffer ownership (issue 11 section 1): donation never destroys a buffer someone else can
still see, and concurrent compiled calls on shared Variables lose no update."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
import numpy as np
import pytest

import tracejit as tj


def _bump(v: tj.Variable) -> Callable[[], Any]:
    @tj.function
    def step() -> Any:
        v.assign_add(tj.ones(v.shape))
        return v.value() * 1.0

    return step


SOURCES: dict[str, Callable[[], Any]] = {
    "tensor": lambda: tj.constant([1.0, 2.0]),
    "jax_array": lambda: jnp.array([1.0, 2.0]),
    "variable": lambda: tj.Variable([1.0, 2.0]),
    "variable_value": lambda: tj.Variable([1.0, 2.0]).value(),
    "compiled_output": lambda: tj.function(lambda: tj.constant([1.0, 2.0]) * 1.0)(),
    "eager_output": lambda: tj.constant([0.5, 1.0]) * 2.0,
}


@pytest.mark.parametrize("source", sorted(SOURCES))
@pytest.mark.parametrize("how", ["construct", "assign"])
def test_source_survives_compiled_steps(source: str, how: str) -> None:
    x = SOURCES[source]()
    if how == "construct":
        v = tj.Variable(x)
    else:
        v = tj.Variable([0.0, 0.0])
        v.assign(x)
    step = _bump(v)
    step()
    step()
    np.testing.assert_array_equal(np.asarray(x), [1.0, 2.0])
    np.testing.assert_array_equal(v.numpy(), [3.0, 4.0])


def test_issue_example_assign_from_variable() -> None:
    w = tj.Variable([1.0, 2.0])
    v = tj.Variable([0.0, 0.0])
    v.assign(w)
    _bump(v)()
    np.testing.assert_array_equal(w.numpy(), [1.0, 2.0])
    _bump(w)()  # w donating its (shared) buffer must not destroy v's
    np.testing.assert_array_equal(v.numpy(), [2.0, 3.0])
    np.testing.assert_array_equal(w.numpy(), [2.0, 3.0])


def test_variable_copied_from_variable_survives_the_source_steps() -> None:
    w = tj.Variable([1.0, 2.0])
    v = tj.Variable(w)  # tf.Variable(w): a new variable that starts from w's value
    _bump(w)()  # w's buffer is shared with v now: it must not be donated
    np.testing.assert_array_equal(v.numpy(), [1.0, 2.0])
    np.testing.assert_array_equal(w.numpy(), [2.0, 3.0])


def test_two_variables_from_one_tensor_updated_in_one_call() -> None:
    t = tj.constant([1.0, 2.0])
    a, b = tj.Variable(t), tj.Variable(t)

    @tj.function
    def step() -> None:
        a.assign_add(tj.ones((2,)))
        b.assign_add(tj.ones((2,)))

    step()
    step()
    np.testing.assert_array_equal(a.numpy(), [3.0, 4.0])
    np.testing.assert_array_equal(b.numpy(), [3.0, 4.0])
    np.testing.assert_array_equal(t.numpy(), [1.0, 2.0])


NO_OPS: dict[str, Callable[[tj.Variable], Any]] = {
    "stop_gradient": lambda v: tj.stop_gradient(v),
    "reshape_same": lambda v: tj.reshape(v, v.shape),
    "cast_same": lambda v: tj.cast(v, v.dtype),
    "slice_all": lambda v: v[:],
    "ellipsis": lambda v: v[...],
}


@pytest.mark.parametrize("name", sorted(NO_OPS))
def test_no_op_results_of_a_variable_survive_steps(name: str) -> None:
    v = tj.Variable([0.0, 1.0, 2.0])
    held = NO_OPS[name](v)
    step = _bump(v)
    step()
    step()
    np.testing.assert_array_equal(np.asarray(held), [0.0, 1.0, 2.0])
    np.testing.assert_array_equal(v.numpy(), [2.0, 3.0, 4.0])


@pytest.mark.parametrize("index", ["slice", "ellipsis"])
def test_full_index_is_a_snapshot_not_an_alias(index: str) -> None:
    v = tj.Variable([0.0, 1.0, 2.0])

    def body() -> Any:
        old = v[:] if index == "slice" else v[...]
        v.assign(old * 10.0)
        return old + 0.0

    np.testing.assert_array_equal(tj.function(body)().numpy(), [0.0, 1.0, 2.0])
    v.assign([0.0, 1.0, 2.0])
    np.testing.assert_array_equal(body().numpy(), [0.0, 1.0, 2.0])  # eagerly too


def test_inside_compiled_step_variable_from_input_keeps_input() -> None:
    v = tj.Variable([0.0, 0.0])

    @tj.function
    def load(x: Any) -> None:
        v.assign(x)

    x = tj.constant([5.0, 6.0])
    load(x)
    _bump(v)()
    _bump(v)()
    np.testing.assert_array_equal(x.numpy(), [5.0, 6.0])
    np.testing.assert_array_equal(v.numpy(), [7.0, 8.0])


def test_adam_train_step_keeps_shared_buffers() -> None:
    init = tj.constant([[1.0, -2.0], [0.5, 3.0]])
    w = tj.Variable(init)
    w2 = tj.Variable(init)
    opt = tj.optim.Adam(0.1)

    @tj.function
    def train(x: Any) -> Any:
        with tj.GradientTape() as tape:
            loss = tj.sum((x @ w) ** 2) + tj.sum(w2 * w2)
        grads = tape.gradient(loss, [w, w2])
        opt.apply_gradients(zip(grads, [w, w2]))
        return loss

    x = tj.constant([[1.0, 0.0], [0.0, 1.0]])
    for _ in range(3):
        train(x)
    np.testing.assert_array_equal(init.numpy(), [[1.0, -2.0], [0.5, 3.0]])
    assert not np.allclose(w.numpy(), init.numpy())


def test_unshared_variable_is_still_donated() -> None:
    v = tj.Variable([0.0, 0.0])
    step = _bump(v)
    step()
    buffer = v._value
    step()
    assert buffer.is_deleted()  # owned alone: updated in place, no second copy


def test_two_threads_lose_no_update() -> None:
    v = tj.Variable(0.0)

    @tj.function
    def add_one() -> None:
        v.assign_add(1.0)

    add_one()
    v.assign(0.0)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(2000):
                add_one()
        except BaseException as err:  # noqa: BLE001 - reported by the main thread
            errors.append(err)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert float(v.numpy()) == 4000.0


def test_threads_with_reads_and_two_variables_in_opposite_orders() -> None:
    a, b = tj.Variable(0.0), tj.Variable(0.0)

    @tj.function
    def ab() -> None:
        a.assign_add(1.0)
        b.assign_add(1.0)

    @tj.function
    def ba() -> None:
        b.assign_add(1.0)
        a.assign_add(1.0)

    def worker(fn: Any) -> None:
        for _ in range(500):
            float(a.value())
            fn()

    threads = [threading.Thread(target=worker, args=(f,)) for f in (ab, ba)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert float(a.numpy()) == 1000.0 and float(b.numpy()) == 1000.0
