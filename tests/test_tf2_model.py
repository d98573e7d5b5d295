"""TF2 programming-model behaviour (issue 14, section 1), each test written from TF's documented
behaviour of tf.Module, tf.Variable, tf.GradientTape, tf.train.Checkpoint and optimizers."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

import tracejit as tj
from tracejit.eager.variable import name_scope


class Dense(tj.Module):
    def __init__(self, n_in: int, n_out: int, name: str | None = None) -> None:
        super().__init__(name=name)
        with self.name_scope:
            self.w = tj.Variable(np.ones((n_in, n_out), np.float32), name="w")
            self.b = tj.Variable(np.zeros((n_out,), np.float32), name="b")

    def __call__(self, x):
        return x @ self.w + self.b


class Lazy(tj.Module):
    """Creates its variable on the first call, as TF's guides' FlexibleDenseModule."""

    def __init__(self, name: str | None = None) -> None:
        super().__init__(name=name)
        self.w = None

    def __call__(self, x):
        if self.w is None:
            self.w = tj.Variable(np.zeros((x.shape[-1], 2), np.float32), name="w")
        return x @ self.w


def test_module_name_scopes_its_variables():
    layer = Dense(2, 3, name="fc1")
    assert layer.name == "fc1"
    assert [v.name for v in layer.variables] == ["fc1/w", "fc1/b"]
    assert Dense(1, 1).name == "Dense"
    with name_scope("outer"):
        assert Dense(1, 1, name="inner").w.name == "outer/inner/w"
    with pytest.raises(ValueError, match="identifier"):
        Dense(1, 1, name="not a name")


def test_assign_converts_to_the_variables_dtype():
    v = tj.Variable([0.0, 0.0])
    v.assign([1, 2])
    assert v.dtype == np.float32
    np.testing.assert_array_equal(v.numpy(), np.array([1.0, 2.0], np.float32))

    @tj.function
    def step():
        v.assign([3, 4])
        return v.value()

    np.testing.assert_array_equal(step().numpy(), [3.0, 4.0])
    i = tj.Variable([0, 0])
    with pytest.raises(tj.errors.OpError, match="int32"):
        i.assign([1.5, 2.5])  # lossy: TF refuses too


def test_variable_from_variable_copies_the_value():
    a = tj.Variable([1.0, 2.0])
    b = tj.Variable(a)
    a.assign([5.0, 5.0])
    np.testing.assert_array_equal(b.numpy(), [1.0, 2.0])
    assert b is not a and b.dtype == a.dtype


def test_watched_variables_answer_after_gradient():
    v = tj.Variable(2.0)
    with tj.GradientTape() as tape:
        y = v * v
    assert float(tape.gradient(y, v)) == 4.0
    assert tape.watched_variables() == [v] or tape.watched_variables()[0] is v


def test_save_prefix_then_restore_latest(tmp_path):
    v = tj.Variable([1.0, 2.0])
    ckpt = tj.train.Checkpoint(v=v)
    first = ckpt.save(os.path.join(tmp_path, "ckpt"))
    assert first == os.path.join(tmp_path, "ckpt-1")
    v.assign([3.0, 4.0])
    second = ckpt.save(os.path.join(tmp_path, "ckpt"))
    assert second.endswith("ckpt-2")
    v.assign([0.0, 0.0])
    assert tj.train.latest_checkpoint(str(tmp_path)) == second
    ckpt.restore(tj.train.latest_checkpoint(str(tmp_path))).assert_consumed()
    np.testing.assert_array_equal(v.numpy(), [3.0, 4.0])
    other = tj.train.Checkpoint(v=v).save(os.path.join(tmp_path, "model"))
    assert tj.train.latest_checkpoint(str(tmp_path)) == other  # any prefix, newest wins


def test_restore_none_raises_unless_opted_in(tmp_path):
    ckpt = tj.train.Checkpoint(v=tj.Variable(1.0))
    with pytest.raises(tj.train.CheckpointError, match="allow_none"):
        ckpt.restore(tj.train.latest_checkpoint(str(tmp_path)))
    assert ckpt.restore(None, allow_none=True).restored == []


def test_write_read_and_list_variables(tmp_path):
    layer = Dense(2, 3, name="fc")
    ckpt = tj.train.Checkpoint(model=layer)
    path = str(tmp_path / "exact")
    assert ckpt.write(path) == path
    assert ckpt.write(path) == path  # no numbering: written again in place
    assert tj.train.list_variables(path) == [("model/b", (3,)), ("model/w", (2, 3))]
    layer.w.assign(np.zeros((2, 3), np.float32))
    ckpt.read(path).assert_consumed()
    np.testing.assert_array_equal(layer.w.numpy(), np.ones((2, 3)))


@pytest.mark.parametrize("compiled", [False, True])
def test_deferred_restoration_of_lazily_created_variables(tmp_path, compiled):
    source = Lazy()
    source(tj.ones((1, 3)))
    source.w.assign(np.arange(6, dtype=np.float32).reshape(3, 2))
    path = tj.train.Checkpoint(model=source).save(str(tmp_path))

    fresh = Lazy()
    status = tj.train.Checkpoint(model=fresh).restore(path)
    assert status.unused == ["model/w"]  # not created yet: kept for later, as in TF
    call = tj.function(fresh) if compiled else fresh
    out = call(tj.ones((1, 3)))
    np.testing.assert_array_equal(fresh.w.numpy(), source.w.numpy())
    np.testing.assert_allclose(out.numpy(), np.ones((1, 3)) @ source.w.numpy())


def test_apply_gradients_with_some_none_warns_once_naming_them():
    a, b = tj.Variable(1.0, name="a"), tj.Variable(1.0, name="unused_b")
    opt = tj.optim.SGD(0.5)
    with pytest.warns(UserWarning, match="unused_b"):
        opt.apply_gradients([(tj.constant(1.0), a), (None, b)])
    assert float(a.numpy()) == 0.5 and float(b.numpy()) == 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt.apply_gradients([(tj.constant(1.0), a), (None, b)])
