"""tj.function: the trace cache key, retracing rules, input_signature, reduce_retracing,
concrete functions, methods, threads, and run_functions_eagerly."""

from __future__ import annotations

import dataclasses
import enum
import functools
import gc
import threading
import weakref
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tracejit as tj
from tracejit.errors import SignatureError


def counting(fn=None, **options):
    """A tj.function whose Python body counts how often it runs (= how often it is traced)."""

    def wrap(f):
        runs = []

        @functools.wraps(f)  # keeps f's signature, which the cache key binds arguments to
        def body(*args, **kwargs):
            runs.append(1)
            return f(*args, **kwargs)

        compiled = tj.function(body, **options)
        compiled.runs = runs
        return compiled

    return wrap if fn is None else wrap(fn)


@counting
def scale(x, factor=2.0):
    return x * factor


def f32(*shape):
    return tj.constant(np.arange(np.prod(shape), dtype=np.float32).reshape(shape))


class TestCacheKey:
    def setup_method(self):
        scale.clear_cache()
        scale.runs.clear()

    def test_same_shape_new_values_do_not_retrace(self):
        a = scale(f32(3))
        b = scale(f32(3) + 10.0)
        np.testing.assert_allclose(b.numpy(), (np.arange(3) + 10.0) * 2)
        assert a.shape == (3,)
        assert scale.trace_count == 1 and len(scale.runs) == 1

    def test_new_shape_retraces(self):
        scale(f32(3))
        scale(f32(4))
        scale(f32(2, 2))
        assert scale.trace_count == 3

    def test_new_dtype_retraces(self):
        scale(f32(3))
        scale(tj.constant([1, 2, 3]))
        assert scale.trace_count == 2

    def test_python_scalars_key_by_value_and_type(self):
        scale(f32(3), 3.0)
        scale(f32(3), 3.0)
        scale(f32(3), 4.0)
        scale(f32(3), 4)
        assert scale.trace_count == 3

    def test_numpy_and_jax_arrays_are_tensors(self):
        out = scale(np.ones(3, np.float32))
        scale(jnp.ones(3, jnp.float32))
        scale(tj.ones((3,)))
        assert isinstance(out, tj.Tensor)
        assert scale.trace_count == 1

    def test_float64_numpy_input_is_float32(self):
        out = scale(np.ones(3))
        assert out.dtype == np.float32

    def test_keyword_order_and_defaults_do_not_matter(self):
        scale(f32(3))
        scale(f32(3), 2.0)
        scale(x=f32(3), factor=2.0)
        scale(factor=2.0, x=f32(3))
        assert scale.trace_count == 1

    def test_unhashable_argument_names_it(self):
        with pytest.raises(TypeError, match=r"argument 'factor' is a set, which is neither"):
            scale(f32(3), {1, 2})

    def test_unhashable_nested_argument_names_path(self):
        @tj.function
        def first(pair):
            return pair[0]

        with pytest.raises(TypeError, match=r"pair\[1\] is a set"):
            first((f32(2), {1, 2}))


class Point(NamedTuple):
    x: object
    y: object


@dataclasses.dataclass
class Batch:
    features: object
    labels: object


class Mode(enum.Enum):
    TRAIN = 1
    EVAL = 2


class TestPytrees:
    def test_dict_keys_by_items_not_order(self):
        f = counting(lambda d: d["a"] - d["b"])
        one = f({"a": f32(2), "b": tj.ones((2,))})
        two = f({"b": tj.ones((2,)), "a": f32(2)})
        np.testing.assert_allclose(one.numpy(), two.numpy())
        assert f.trace_count == 1

    def test_lists_tuples_namedtuples_dataclasses(self):
        @tj.function
        def g(items, point, batch):
            return [items[0] + items[1], Point(point.y, point.x), batch.features * batch.labels]

        out = g([f32(2), f32(2)], Point(f32(2), tj.ones((2,))), Batch(f32(2), 3.0))
        assert isinstance(out, list) and isinstance(out[1], Point)
        np.testing.assert_allclose(out[0].numpy(), [0, 2])
        np.testing.assert_allclose(out[1].x.numpy(), [1, 1])
        np.testing.assert_allclose(out[2].numpy(), [0, 3])
        g([f32(2), f32(2)], Point(f32(2), tj.ones((2,))), Batch(f32(2), 4.0))
        assert g.trace_count == 2  # the dataclass field 3.0 -> 4.0 is a Python value

    def test_enum_and_string_and_none_arguments(self):
        f = counting(lambda x, mode, name=None: x * (1.0 if mode is Mode.TRAIN else 0.0))
        f(f32(2), Mode.TRAIN, "a")
        f(f32(2), Mode.TRAIN, "a")
        f(f32(2), Mode.EVAL, "a")
        f(f32(2), Mode.EVAL, None)
        assert f.trace_count == 3

    def test_python_values_in_outputs_come_back_unchanged(self):
        @tj.function
        def g(x):
            return {"y": x + 1, "label": "done", "n": 3, "none": None}

        out = g(f32(2))
        assert out["label"] == "done" and out["n"] == 3 and out["none"] is None
        assert isinstance(out["y"], tj.Tensor)

    def test_returning_an_input_and_a_captured_constant(self):
        captured = tj.constant([5.0, 6.0])

        @tj.function
        def g(x):
            return x, captured

        x, c = g(f32(2))
        np.testing.assert_allclose(x.numpy(), [0, 1])
        np.testing.assert_allclose(c.numpy(), [5, 6])


class TestInputSignature:
    def test_traces_once_for_all_matching_shapes(self):
        @counting(input_signature=[tj.TensorSpec(shape=(None, 4), dtype="float32")])
        def rowsum(x):
            return x.sum(axis=1)

        for rows in (1, 3, 7):
            assert rowsum(tj.ones((rows, 4))).shape == (rows,)
        assert rowsum.trace_count == 1
        assert "f32[?,4]" in str(rowsum.get_concrete_function().ir)

    def test_mismatch_names_argument_and_both_specs(self):
        f = tj.function(lambda x: x, input_signature=[tj.TensorSpec((None, 4), "float32")])
        with pytest.raises(SignatureError) as info:
            f(tj.ones((3, 5)))
        message = str(info.value)
        assert "argument 'x'" in message
        assert "TensorSpec(shape=(None, 4), dtype=float32)" in message
        assert "shape (3, 5)" in message

    def test_dtype_mismatch(self):
        f = tj.function(lambda x: x, input_signature=[tj.TensorSpec((2,), "float32")])
        with pytest.raises(SignatureError, match="dtype int32"):
            f(tj.constant([1, 2]))

    def test_python_value_rejected(self):
        f = tj.function(lambda x: x, input_signature=[tj.TensorSpec((), "float32")])
        with pytest.raises(SignatureError, match="the Python value 3.0"):
            f(3.0)

    def test_bad_signature_entry(self):
        with pytest.raises(TypeError, match="must be a TensorSpec"):
            tj.function(lambda x: x, input_signature=[(2, 3)])


class TestReduceRetracing:
    def test_changed_dims_become_unknown(self):
        @counting(reduce_retracing=True)
        def double(x):
            return x * 2

        double(tj.ones((2, 3)))
        double(tj.ones((5, 3)))
        double(tj.ones((9, 3)))
        double(tj.ones((4, 3)))
        assert double.trace_count == 2
        assert "f32[?,3]" in str(double.concrete_functions()[-1].ir)
        np.testing.assert_allclose(double(f32(4, 3)).numpy(), f32(4, 3).numpy() * 2)

    def test_dtype_change_still_retraces(self):
        f = tj.function(lambda x: x + 1, reduce_retracing=True)
        f(tj.ones((2,)))
        f(tj.constant([1, 2]))
        assert f.trace_count == 2

    def test_without_it_every_shape_traces(self):
        f = tj.function(lambda x: x + 1)
        for n in (1, 2, 3):
            f(tj.ones((n,)))
        assert f.trace_count == 3


class TestConcreteFunction:
    def test_specs_and_ir(self):
        f = tj.function(lambda x, y: (x @ y, x.sum()))
        cf = f.get_concrete_function(tj.TensorSpec((None, 3)), tj.TensorSpec((3, 2)))
        assert cf.inputs == [tj.TensorSpec((None, 3)), tj.TensorSpec((3, 2))]
        assert cf.outputs == [tj.TensorSpec((None, 2)), tj.TensorSpec(())]
        assert "matmul" in str(cf.ir)

    def test_call_and_validation(self):
        f = tj.function(lambda x: x * 3)
        cf = f.get_concrete_function(tj.TensorSpec((None,)))
        np.testing.assert_allclose(cf(f32(4)).numpy(), [0, 3, 6, 9])
        with pytest.raises(SignatureError, match="argument 'x'"):
            cf(tj.ones((2, 2)))

    def test_generalized_concrete_function_serves_later_calls(self):
        f = counting(lambda x: x - 1)
        f.get_concrete_function(tj.TensorSpec((None,)))
        f(f32(3))
        f(f32(8))
        assert f.trace_count == 1

    def test_lower_gives_stablehlo(self):
        f = tj.function(lambda x, y: x * y + 1)
        text = f.lower(f32(8), f32(8)).as_text()
        assert "stablehlo.multiply" in text and "tensor<8xf32>" in text

    def test_dead_nodes_are_not_lowered(self):
        @tj.function(optimize=False)  # even without the dce pass
        def g(x):
            _unused = tj.exp(x)
            return x + 1

        assert "exponential" not in g.lower(f32(3)).as_text()
        assert "exp" in str(g.get_concrete_function(f32(3)).ir)


class TestCacheLifetime:
    def test_clear_cache(self):
        f = tj.function(lambda x: x + 1)
        f(f32(2))
        f(f32(3))
        f.clear_cache()
        assert f.trace_count == 0
        f(f32(2))
        assert f.trace_count == 1

    def test_two_wrappers_never_share_traces(self):
        def body(x):
            return x + 1

        a, b = tj.function(body), tj.function(body)
        a(f32(2))
        b(f32(2))
        assert a.trace_count == 1 and b.trace_count == 1

    def test_traces_freed_with_function(self):
        f = tj.function(lambda x: x + 1)
        f(f32(2))
        graph_ref = weakref.ref(f.concrete_functions()[0].graph)
        del f
        gc.collect()
        assert graph_ref() is None


class Model:
    def __init__(self, scale):
        self.scale = scale

    @tj.function
    def apply(self, x):
        return x * self.scale


class TestMethods:
    def test_bound_method_keys_on_instance(self):
        a, b = Model(2.0), Model(3.0)
        np.testing.assert_allclose(a.apply(f32(2)).numpy(), [0, 2])
        np.testing.assert_allclose(b.apply(f32(2)).numpy(), [0, 3])
        assert a.apply.trace_count == 1 and b.apply.trace_count == 1
        assert a.apply is a.apply

    def test_instance_is_held_weakly(self):
        model = Model(2.0)
        model.apply(f32(2))
        ref = weakref.ref(model)
        del model
        gc.collect()
        assert ref() is None


class TestComposition:
    def test_compiled_calls_compiled_and_helpers(self):
        @tj.function
        def inner(x):
            return x * 2

        def helper(x):
            return inner(x) + 1

        @tj.function
        def outer(x):
            return helper(x) * 10

        np.testing.assert_allclose(outer(f32(3)).numpy(), [10, 30, 50])
        text = str(outer.get_concrete_function(f32(3)).ir)
        assert "multiply" in text and "add" in text  # inner was inlined into outer's graph
        assert inner.trace_count == 0

    def test_captured_eager_tensor_and_numpy_array(self):
        table = tj.constant([1.0, 2.0, 3.0])
        offsets = np.array([10.0, 20.0, 30.0], np.float32)

        @tj.function
        def g(x):
            return x * table + offsets

        np.testing.assert_allclose(g(f32(3)).numpy(), [10, 22, 36])
        assert "%c0: f32[3] = const [1 2 3]" in str(g.get_concrete_function(f32(3)).ir)

    def test_python_side_effects_run_at_trace_time_only(self):
        calls = []

        @tj.function
        def g(x):
            calls.append("traced")
            return x + 1

        g(f32(2))
        g(f32(2))
        assert calls == ["traced"]


class TestEagerMode:
    def test_run_functions_eagerly_gives_identical_results(self):
        seen = []

        @tj.function
        def g(x):
            seen.append(type(x).__name__)
            return tj.exp(x) * 2 - x.sum()

        x = f32(4)
        compiled = g(x).numpy()
        tj.config.run_functions_eagerly(True)
        try:
            eager = g(x).numpy()
        finally:
            tj.config.run_functions_eagerly(False)
        np.testing.assert_allclose(compiled, eager, rtol=1e-6)
        assert seen == ["Tracer", "Tensor"]


class TestThreads:
    def test_concurrent_first_calls_trace_once(self):
        started = threading.Barrier(8)

        @counting
        def slow(x):
            return tj.exp(x) + 1

        results = []

        def worker():
            started.wait()
            results.append(slow(f32(16)).numpy())

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert slow.trace_count == 1 and len(slow.runs) == 1
        for r in results:
            np.testing.assert_allclose(r, np.exp(np.arange(16, dtype=np.float32)) + 1, rtol=1e-6)

    @pytest.mark.filterwarnings("ignore:.*was traced 5 times")  # retracing is the point here
    def test_different_signatures_from_many_threads(self):
        f = tj.function(lambda x: x * x)
        errors = []

        def worker(n):
            try:
                for _ in range(3):
                    out = f(f32(n)).numpy()
                    np.testing.assert_allclose(out, np.arange(n, dtype=np.float32) ** 2)
            except Exception as err:  # noqa: BLE001 - reported below
                errors.append(err)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(1, 9)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert f.trace_count == 8

    def test_tracing_in_one_thread_does_not_capture_eager_ops_in_another(self):
        gate, done = threading.Event(), threading.Event()
        eager_results = []

        @tj.function
        def g(x):
            gate.set()
            done.wait(5)
            return x + 1

        def eager_worker():
            gate.wait(5)
            eager_results.append(tj.add(f32(2), 1.0))
            done.set()

        t = threading.Thread(target=eager_worker)
        t.start()
        g(f32(2))
        t.join()
        assert isinstance(eager_results[0], tj.Tensor)


def test_matches_raw_jax_jit():
    def body(x, y):
        return tj.tanh(x @ y) * 2 - 1

    x = np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32)
    y = np.random.default_rng(1).normal(size=(5, 3)).astype(np.float32)
    ours = tj.function(body)(x, y).numpy()
    theirs = jax.jit(lambda a, b: jnp.tanh(a @ b) * 2 - 1)(x, y)
    np.testing.assert_allclose(ours, np.asarray(theirs), rtol=1e-6, atol=1e-6)
