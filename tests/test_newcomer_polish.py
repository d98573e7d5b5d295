"""Small things a newcomer hit in the first hour (issue 18 section 2), each checked."""

from __future__ import annotations

import numpy as np
import pytest

import tracejit as tj
from tracejit.errors import IndexOutOfRangeError, OpError


def test_tolist_gives_python_scalars_like_numpy() -> None:
    x = np.array([[1.5, 2.0], [3.0, -4.0]], np.float32)
    assert tj.constant(x).tolist() == x.tolist()
    assert tj.Variable(x).tolist() == x.tolist()
    assert tj.constant(3).tolist() == 3 and isinstance(tj.constant(3).tolist(), int)


@pytest.mark.parametrize("traced", [False, True])
@pytest.mark.parametrize("index", [5, (0, 0, 0), (slice(None), -3)])
def test_an_out_of_range_index_is_an_index_error(traced: bool, index: object) -> None:
    x = tj.ones((2, 2))
    with pytest.raises(IndexError) as info:
        (tj.function(lambda t: t[index]) if traced else (lambda t: t[index]))(x)
    assert isinstance(info.value, IndexOutOfRangeError) and isinstance(info.value, OpError)
    assert "test_newcomer_polish.py" in str(info.value)  # located at the user's line
    with pytest.raises(IndexError):
        np.ones((2, 2))[index]  # the same mistake numpy reports the same way


def test_a_list_of_tensors_is_stacked_when_traced_as_eagerly() -> None:
    x = tj.constant([[1.0, 2.0], [3.0, 4.0]])

    def f(t):
        return tj.sin([t, t * 2.0]) + tj.add([[t[0, 0], 1.0], [2.0, t[1, 1]]], 0.0)[0, 0]

    eager, traced = f(x), tj.function(f)(x)
    expected = np.sin(np.stack([x.numpy(), x.numpy() * 2])) + 1.0
    np.testing.assert_allclose(eager.numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(traced.numpy(), expected, rtol=1e-6)
    assert "stack[axis=0]" in str(tj.function(f).get_concrete_function(x).ir)


def test_lower_with_an_unknown_dimension_gives_dynamic_stablehlo() -> None:
    f = tj.function(lambda x: x * 2.0)
    assert "tensor<?x3xf32>" in f.lower(tj.TensorSpec((None, 3))).as_text()
    cf = f.get_concrete_function(tj.TensorSpec((None, 3)))
    assert "tensor<?x3xf32>" in cf.lower(tj.TensorSpec((None, 3))).as_text()
    assert "tensor<5x3xf32>" in cf.lower(tj.ones((5, 3))).as_text()
    with pytest.raises(tj.errors.SignatureError, match="unknown dimensions"):
        cf.compiled_text(tj.TensorSpec((None, 3)))  # XLA compiles concrete shapes only


def test_the_bool_error_says_when_autograph_is_off() -> None:
    def branchy(x):
        return x if x.sum() > 0 else -x

    with pytest.raises(tj.errors.TracerConversionError, match="AutoGraph is off"):
        tj.function(branchy, autograph=False)(tj.ones((2,)))
    assert tj.function(branchy)(tj.ones((2,))).tolist() == [1.0, 1.0]  # converted by default


def test_a_loaded_function_refusing_a_new_size_says_how_to_save_one(tmp_path) -> None:
    f = tj.function(lambda x: x * 2.0)
    f(np.ones((4, 3), np.float32))
    loaded = tj.saved.load(tj.saved.save(f, str(tmp_path / "f")))
    (function,) = loaded.signatures.values()
    with pytest.raises(tj.errors.SignatureError) as info:
        function(np.ones((5, 3), np.float32))
    assert "input_signature=[tj.TensorSpec((None, 3), 'float32')]" in str(info.value)
    with pytest.raises(tj.errors.SignatureError) as other:
        function(np.ones((4, 5), np.float32))  # a feature size, not the batch: no such hint
    assert "batch" not in str(other.value)


def test_every_error_class_is_reachable_from_tracejit_errors() -> None:
    import importlib
    import pkgutil

    for info in pkgutil.walk_packages(tj.__path__, "tracejit."):
        if info.name.startswith("tracejit.report"):
            continue  # (imports nothing new; keeps the walk light)
        importlib.import_module(info.name)

    def subclasses(cls: type) -> set[type]:
        found = set(cls.__subclasses__())
        return found.union(*(subclasses(c) for c in list(found)))

    for cls in subclasses(tj.errors.TracejitError):
        if cls.__module__.startswith("tracejit."):
            assert getattr(tj.errors, cls.__name__) is cls, cls
    assert tj.errors.AutoGraphWarning.__module__ == "tracejit.autograph.exceptions"


def test_the_autograph_warning_points_at_the_users_line() -> None:
    import warnings

    namespace: dict = {}
    source = "def step(x):\n    if x.shape[0] > 1:\n        return x * 2\n    return x\n"
    exec(source, {"tj": tj}, namespace)  # no source file, so AutoGraph cannot convert it
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tj.function(namespace["step"])(tj.ones((2,)))  # MARK-call
    (warning,) = [w for w in caught if issubclass(w.category, tj.errors.AutoGraphWarning)]
    assert warning.filename == __file__


def _tracejit_frames(err: BaseException) -> list[str]:
    import traceback

    from tracejit.errors import is_internal_frame

    return [f.name for f in traceback.extract_tb(err.__traceback__) if is_internal_frame(f.filename)]


def test_checkpoint_loaded_function_and_optimizer_errors_end_at_the_users_line(tmp_path) -> None:
    tj.config.set_full_traceback(False)
    with pytest.raises(tj.errors.CheckpointError) as restore:
        tj.train.Checkpoint(v=tj.Variable(1.0)).restore(None)
    f = tj.function(lambda x: x * 2.0)
    f(np.ones((4, 3), np.float32))
    (loaded,) = tj.saved.load(tj.saved.save(f, str(tmp_path / "f"))).signatures.values()
    with pytest.raises(tj.errors.SignatureError) as call:
        loaded(np.ones((4,), np.int32))
    with pytest.raises(ValueError) as apply:
        tj.optim.SGD(0.1).apply_gradients([(tj.ones((3,)), tj.Variable(tj.ones((2,))))])
    for info in (restore, call, apply):
        assert _tracejit_frames(info.value) == [], info.value
