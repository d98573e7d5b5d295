"""Export: a concrete function as a jax.export artifact that jax alone can run."""

from __future__ import annotations

import os
import subprocess
import sys

import jax
import numpy as np
import pytest

import tracejit as tj

RNG = np.random.default_rng(0)
X = RNG.normal(size=(16, 4)).astype(np.float32)
Y = (X[:, 0] > 0).astype(np.int32)


@pytest.fixture(scope="module")
def mlp():
    g = tj.random.Generator(0)
    model = tj.nn.Sequential(
        [tj.nn.Dense(4, 8, activation="relu", generator=g), tj.nn.Dense(8, 3, generator=g)]
    )
    opt = tj.optim.Adam(0.05)

    @tj.function(input_signature=[tj.TensorSpec([None, 4]), tj.TensorSpec([None], "int32")])
    def train_step(x, y):
        with tj.GradientTape() as tape:
            loss = tj.nn.softmax_cross_entropy(model(x), y)
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    @tj.function(input_signature=[tj.TensorSpec([None, 4])])
    def predict(x):
        return tj.nn.softmax(model(x))

    train_step(X, Y)  # creates the optimizer's slots
    return model, train_step, predict


JAX_ONLY = r"""
import sys
import numpy as np
import jax
def deserialize(path):
    return jax.export.deserialize(bytearray(open(path, "rb").read()))
data = dict(np.load("in.npz"))
x, y = data.pop("x"), data.pop("y")
names = sorted(data)  # variables: the remaining arrays, by name
(loss,), updated = deserialize("step.bin").call(x, y, {n: data[n] for n in names})
(probs,) = deserialize("predict.bin").call(x)  # weights baked in
assert not [m for m in sys.modules if m.startswith("tracejit")]
np.savez("out.npz", loss=loss, probs=probs, **{"var:" + n: v for n, v in updated.items()})
"""


def test_a_train_step_runs_in_a_jax_only_process(mlp, tmp_path):
    _, train_step, predict = mlp
    cf = train_step.get_concrete_function()
    blob = tj.saved.export(cf)
    assert isinstance(blob, bytes)
    (tmp_path / "step.bin").write_bytes(blob)
    baked = tj.saved.export(predict.get_concrete_function(), variables="constants")
    (tmp_path / "predict.bin").write_bytes(baked)
    state = {name: v.numpy() for name, v in zip(cf.ir.state_names, cf.variables)}
    np.savez(tmp_path / "in.npz", x=X[:10], y=Y[:10], **state)
    subprocess.run([sys.executable, "-c", JAX_ONLY], check=True, cwd=tmp_path, timeout=120,
                   env={**os.environ, "PYTHONPATH": ""})  # fmt: skip
    probs = predict(X[:10])
    loss = train_step(X[:10], Y[:10])  # the same step, in tracejit
    with np.load(tmp_path / "out.npz") as out:
        np.testing.assert_allclose(out["probs"], probs.numpy(), rtol=1e-6)
        np.testing.assert_allclose(out["loss"], loss.numpy(), rtol=1e-6)
        assigned = sorted(cf.ir.state_names[i] for i in cf.ir.updated_state())
        assert "optimizer/learning_rate" in state and "optimizer/learning_rate" not in assigned
        assert sorted(n[4:] for n in out.files if n.startswith("var:")) == assigned
        for name, variable in zip(cf.ir.state_names, cf.variables):
            if name in assigned:
                np.testing.assert_allclose(
                    out["var:" + name], variable.numpy(), rtol=1e-5, atol=1e-7
                )


def test_symbolic_batch_and_calling_convention(mlp):
    _, train_step, predict = mlp
    exported = jax.export.deserialize(tj.saved.export(predict.get_concrete_function()))
    assert str(exported.in_avals[0]) == "float32[batch,4]"
    names = sorted(predict.get_concrete_function().ir.state_names)
    assert list(exported.in_tree.children()[0].children()[1].node_data()[1]) == names
    variables = {
        n: v.numpy()
        for n, v in zip(
            predict.get_concrete_function().ir.state_names,
            predict.get_concrete_function().variables,
        )
    }
    for batch in (1, 7):
        (probs,), updated = exported.call(X[:batch], variables)
        assert updated == {}
        np.testing.assert_allclose(probs, predict(X[:batch]).numpy(), rtol=1e-6)
    step = jax.export.deserialize(tj.saved.export(train_step.get_concrete_function()))
    assert [str(a) for a in step.in_avals[:2]] == ["float32[batch,4]", "int32[batch]"]


def test_constants_mode_bakes_the_variables(mlp):
    _, train_step, predict = mlp
    blob = tj.saved.export(predict.get_concrete_function(), variables="constants")
    (probs,) = jax.export.deserialize(blob).call(X[:3])
    np.testing.assert_allclose(probs, predict(X[:3]).numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="assigns variables .*Export with variables='arguments'"):
        tj.saved.export(train_step.get_concrete_function(), variables="constants")


def test_polymorphic_shapes_and_known_shapes():
    @tj.function
    def pairwise(a, b):
        return a @ b.T

    cf = pairwise.get_concrete_function(tj.TensorSpec([None, 3]), tj.TensorSpec([None, 3]))
    exported = jax.export.deserialize(tj.saved.export(cf, polymorphic_shapes=["(m, 3)", "(n, 3)"]))
    assert [str(a) for a in exported.in_avals] == ["float32[m,3]", "float32[n,3]"]
    (out,), _ = exported.call(np.ones((2, 3), np.float32), np.ones((5, 3), np.float32), {})
    assert out.shape == (2, 5)
    fresh = tj.function(pairwise.python_function)  # (the [?,3] trace would cover [2,3])
    known = fresh.get_concrete_function(np.ones((2, 3), np.float32), np.ones((4, 3), np.float32))
    exported = jax.export.deserialize(tj.saved.export(known))
    assert [str(a) for a in exported.in_avals] == ["float32[2,3]", "float32[4,3]"]
    with pytest.raises(ValueError, match="variables must be"):
        tj.saved.export(known, variables="baked")


def test_export_names_the_problem_when_jax_cannot_export():
    @tj.function
    def needs_equal(a, b):
        return a + b

    cf = needs_equal.get_concrete_function(tj.TensorSpec([2, None]), tj.TensorSpec([2, None]))
    # d0_1 and d1_1 are unrelated symbols: jax cannot prove the shapes broadcast.
    with pytest.raises(ValueError, match="polymorphic_shapes"):
        tj.saved.export(cf)
    exported = tj.saved.export(cf, polymorphic_shapes=["(2, k)", "(2, k)"])
    assert len(exported) > 0


def test_concrete_function_export_method(mlp):
    cf = mlp[2].get_concrete_function()
    if not hasattr(cf, "export"):
        pytest.skip("ConcreteFunction.export is not wired yet (tracejit/tracing/function.py)")
    exported = jax.export.deserialize(cf.export(variables="constants"))
    (probs,) = exported.call(X[:2])
    np.testing.assert_allclose(probs, mlp[2](X[:2]).numpy(), rtol=1e-6)
