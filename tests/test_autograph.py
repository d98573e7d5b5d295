"""AutoGraph: converted Python control flow compared with the same program run eagerly, the IR
it produces (one control-flow node, not an unrolled graph), its errors, and conversion rules
(callees, closures, library code, functions without source)."""

from __future__ import annotations

import inspect
import re
import warnings

import numpy as np
import pytest

import tracejit as tj
from tracejit import autograph
from tracejit.autograph import AutoGraphWarning, ConversionError
from tracejit.ir.printer import unwrap

tj_range = getattr(tj, "range", autograph.range)


@pytest.fixture(autouse=True)
def _no_conversion_warnings():
    """A function the tests convert must convert: a fallback warning is a failure."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", AutoGraphWarning)
        yield


def compiled(fn, **options):
    return tj.function(autograph.convert(fn), **options)


def ir_text(fn, *args, optimized=True):
    concrete = fn.get_concrete_function(*args)
    return str(concrete.ir if optimized else concrete.ir_unoptimized)


def top_level_ops(ir):
    """Op names of the outermost graph's nodes (nested bodies are indented further; a long
    statement wraps onto more lines, which ``unwrap`` joins)."""
    return re.findall(r"^  %\S+(?:, %\S+)*: .*? = (\w+)", unwrap(ir), flags=re.MULTILINE)


def control_flow_ops(ir):
    return [op for op in top_level_ops(ir) if op in ("cond", "while_loop", "scan", "switch")]


def line_of(fn, marker):
    """The file line of the source line of ``fn`` that contains ``marker``."""
    lines, first = inspect.getsourcelines(fn)
    return first + next(i for i, text in enumerate(lines) if marker in text)


def assert_same(got, want):
    got_leaves = got if isinstance(got, tuple) else (got,)
    want_leaves = want if isinstance(want, tuple) else (want,)
    assert len(got_leaves) == len(want_leaves)
    for g, w in zip(got_leaves, want_leaves):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-6)


# The programs -----------------------------------------------------------------------------------
def collatz_steps(n):
    steps = 0
    while n > 1:
        if n % 2 == 0:
            n = n // 2
        else:
            n = 3 * n + 1
        steps += 1
    return steps


def newton_sqrt(a):
    x = a
    while tj.abs(x * x - a) > 1e-5:
        x = 0.5 * (x + a / x)
    return x


def sum_of_rows(x):
    total = 0.0
    for row in x:
        total = total + row.sum()
    return total


def accumulate_until(x, limit, n):
    i = 0
    total = 0.0
    while i < n:
        if total > limit:
            if i > 2:
                break
        total = total + x
        i += 1
    return total, i


def absolute(x):
    if x.sum() > 0:
        return x
    return -x


def first_above(xs, threshold):
    for value in xs:
        if value > threshold:
            return value
    return -1.0


def scale_each(x, factors):
    for factor in factors:
        x = x * factor
    return x


def logic(x, y):
    both = x > 0 and y > 0
    either = x > 0 or not y > 0
    larger = x if x > y else y
    between = 0 < x < 2
    return both, either, larger, between


def odd_sum(x, n):
    total = 0.0
    for i in tj_range(n):
        if i % 2 == 0:
            continue
        total = total + x * tj.cast(i, "float32")
    return total


@pytest.mark.parametrize("n", [1, 6, 27])
def test_collatz_is_one_while_loop(n):
    f = compiled(collatz_steps)
    assert_same(f(tj.constant(n)), collatz_steps(tj.constant(n)))
    ir = ir_text(f, tj.constant(n))
    assert control_flow_ops(ir) == ["while_loop"]
    assert "cond[" in ir  # the inner `if` is a cond node inside the loop body


def test_newton_sqrt_runs_until_tolerance():
    f = compiled(newton_sqrt)
    for a in (2.0, 9.0, 0.25):
        assert_same(f(tj.constant(a)), newton_sqrt(tj.constant(a)))
        np.testing.assert_allclose(f(tj.constant(a)).numpy(), np.sqrt(a), rtol=1e-5)
    assert control_flow_ops(ir_text(f, tj.constant(2.0))) == ["while_loop"]
    assert f.trace_count == 1


def test_for_over_tensor_rows_is_a_scan():
    f = compiled(sum_of_rows)
    x = tj.constant(np.arange(12.0, dtype=np.float32).reshape(4, 3))
    assert_same(f(x), sum_of_rows(x))
    assert control_flow_ops(ir_text(f, x)) == ["scan"]


def test_break_in_nested_if_in_while():
    f = compiled(accumulate_until)
    for x, limit in ((1.5, 4.0), (1.0, -1.0), (0.5, 100.0)):
        args = (tj.constant(x), tj.constant(limit), tj.constant(20))
        assert_same(f(*args), accumulate_until(*args))
    assert control_flow_ops(ir_text(f, *args)) == ["while_loop"]


def test_python_loop_whose_condition_becomes_a_tensor():
    def f(x, limit):
        i = 0
        total = 0.0
        while i < 100:
            if total > limit:
                if i > 2:
                    break
            total = total + x
            i += 1
        return total, i

    for x, limit in ((1.5, 4.0), (1.0, -1.0), (0.5, 10.0)):
        args = (tj.constant(x), tj.constant(limit))
        assert_same(compiled(f)(*args), f(*args))
    assert "while_loop" in control_flow_ops(ir_text(compiled(f), *args))


def test_early_return_in_a_branch():
    f = compiled(absolute)
    for x in ([1.0, -2.0, 4.0], [-1.0, -2.0, 0.5]):
        assert_same(f(tj.constant(x)), absolute(tj.constant(x)))
    assert control_flow_ops(ir_text(f, tj.constant([1.0]))) == ["cond"]


def test_return_inside_a_tensor_loop():
    f = compiled(first_above)
    xs = tj.constant([1.0, 5.0, 3.0, 7.0])
    for threshold in (4.0, 6.0, 40.0):
        assert_same(f(xs, tj.constant(threshold)), first_above(xs, tj.constant(threshold)))
    assert control_flow_ops(ir_text(f, xs, tj.constant(4.0)))[0] == "scan"


def test_for_over_python_list_unrolls_and_over_tensor_loops():
    f = compiled(scale_each)
    x = tj.constant([1.0, 2.0])
    assert_same(f(x, [2.0, 3.0, 0.5]), scale_each(x, [2.0, 3.0, 0.5]))
    unrolled = ir_text(f, x, [2.0, 3.0, 0.5], optimized=False)
    assert control_flow_ops(unrolled) == [] and top_level_ops(unrolled).count("multiply") == 3
    factors = tj.constant([2.0, 3.0, 0.5])
    assert_same(f(x, factors), scale_each(x, factors))
    assert control_flow_ops(ir_text(f, x, factors)) == ["scan"]


@pytest.mark.parametrize("x, y", [(1.0, -2.0), (-1.0, 3.0), (1.5, 0.5), (3.0, 4.0)])
def test_and_or_not_and_conditional_expressions(x, y):
    f = compiled(logic)
    args = (tj.constant(x), tj.constant(y))
    assert_same(f(*args), logic(*args))


def test_logical_operators_keep_python_semantics_on_python_values():
    f = autograph.convert(logic)
    assert f(1.0, -2.0) == logic(1.0, -2.0)
    assert autograph.convert(lambda a, b: a or b)(0, []) == []


def test_python_condition_stays_python():
    def step(x, training):
        if training:
            x = x * 0.5
        else:
            x = x + 1.0
        return x

    f = compiled(step)
    assert_same(f(tj.constant(2.0), True), 1.0)
    assert_same(f(tj.constant(2.0), False), 3.0)
    ir = ir_text(f, tj.constant(2.0), True)
    assert control_flow_ops(ir) == [] and " = cond[" not in ir


def test_python_while_condition_unrolls():
    def repeat(x):
        i = 0
        while i < 3:
            x = x * 2.0
            i += 1
        return x

    f = compiled(repeat)
    assert_same(f(tj.constant(1.0)), 8.0)
    ir = ir_text(f, tj.constant(1.0), optimized=False)
    assert control_flow_ops(ir) == [] and top_level_ops(ir).count("multiply") == 3


def test_tj_range_with_a_tensor_bound_is_one_loop():
    f = compiled(odd_sum)
    for n in (0, 1, 10):
        assert_same(f(tj.constant(1.0), tj.constant(n)), odd_sum(tj.constant(1.0), tj.constant(n)))
    assert control_flow_ops(ir_text(f, tj.constant(1.0), tj.constant(10))) == ["while_loop"]
    assert list(tj_range(2, 7, 2)) == [2, 4, 6]
    assert list(tj_range(tj.constant(3))) == [0, 1, 2]  # eager tensors: Python's range


def test_builtin_range_of_a_tensor_becomes_a_loop():
    def triangle(n):
        total = 0
        for i in range(n):
            total += i
        return total

    f = compiled(triangle)
    assert int(f(tj.constant(5))) == 10
    assert control_flow_ops(ir_text(f, tj.constant(5))) == ["while_loop"]
    assert int(f(4)) == 6  # a Python bound unrolls


def test_python_loop_with_tensor_break_guards_the_rest():
    def grow(x):
        for step in [1.0, 2.0, 3.0, 4.0]:
            if x > 5.0:
                break
            x = x + step
        return x

    f = compiled(grow)
    for x in (1.0, 4.5, 10.0):
        assert_same(f(tj.constant(x)), grow(tj.constant(x)))


def test_continue_and_loop_else():
    def search(xs, target):
        found = 0
        for x in xs:
            if x != target:
                continue
            found = 1
            break
        else:
            found = -1
        return found

    assert autograph.convert(search)([1, 2, 3], 2) == 1
    assert autograph.convert(search)([1, 2, 3], 5) == -1
    f = compiled(search)
    xs = tj.constant([1, 2, 3])
    assert int(f(xs, tj.constant(2))) == 1 and int(f(xs, tj.constant(5))) == -1


def test_elif_chain():
    def sign(x):
        if x > 0:
            s = 1.0
        elif x < 0:
            s = -1.0
        else:
            s = 0.0
        return s

    f = compiled(sign)
    for x in (3.0, -2.0, 0.0):
        assert float(f(tj.constant(x))) == sign(x)


def test_python_number_loop_variable_takes_the_body_type():
    def total(x):
        s = 0
        for row in x:
            s = s + row
        return s

    x = tj.constant(np.arange(6.0, dtype=np.float32).reshape(3, 2))
    assert_same(compiled(total)(x), [6.0, 9.0])


def carry_a_tuple(x):
    acc = (0.0, 1.0)
    for row in x:
        acc = (acc[0] + row.sum(), acc[1] * 2.0)
    return acc


def return_a_pair(x):
    if x.sum() > 0:
        return x, x.sum()
    return -x, -x.sum()


def deep_return(x, n):
    i = 0
    while i < n:
        if x > 100.0:
            if x > 1000.0:
                return x
            x = x * 3.0
        x = x * 2.0
        i += 1
    return -x


def nested_loops(x, n):
    total = 0.0
    for row in x:
        j = 0
        while j < n:
            total = total + row.sum() * tj.cast(j, "float32")
            j += 1
    return total


def fibonacci(n):
    a, b = 0, 1
    i = 0
    while i < n:
        a, b = b, a + b
        i += 1
    return a


def _factorial(n):
    if n <= 1:
        return 1
    return n * _factorial(n - 1)


def recursive_callee(x):
    return x * _factorial(5)


MATRIX = np.arange(6.0, dtype=np.float32).reshape(3, 2)
PROGRAMS = [
    (carry_a_tuple, (MATRIX,)),
    (return_a_pair, ([1.0, -3.0],)),
    (return_a_pair, ([-1.0, -3.0],)),
    (deep_return, (1.0, 5)),
    (deep_return, (200.0, 5)),
    (deep_return, (2000.0, 5)),
    (nested_loops, (MATRIX, 3)),
    (fibonacci, (10,)),
    (recursive_callee, (1.0,)),
]


@pytest.mark.parametrize("fn, args", PROGRAMS, ids=lambda p: getattr(p, "__name__", ""))
def test_programs_match_eager(fn, args):
    tensors = tuple(tj.constant(a) for a in args)
    assert_same(compiled(fn)(*tensors), fn(*tensors))


def test_variables_assigned_in_a_tensor_branch():
    v = tj.Variable(0.0)

    def update(x):
        if x > 0:
            v.assign_add(x)
        else:
            v.assign_sub(1.0)
        return x

    f = compiled(update)
    f(tj.constant(2.0))
    f(tj.constant(-5.0))
    assert float(v.numpy()) == 1.0


def test_lambdas_on_one_line_are_told_apart():
    first, second = (lambda x: x if x > 0 else -x), (lambda x: x * 2 if x > 1 else x)  # noqa: E731
    assert autograph.to_code(first) == "lambda x: ag__.if_exp(x > 0, lambda: x, lambda: -x)"
    assert float(compiled(second)(tj.constant(3.0))) == 6.0


def test_gradients_flow_through_converted_control_flow():
    def f(x):
        if x > 0:
            y = x * x
        else:
            y = -x
        total = 0.0
        for v in tj.stack([x, 2 * x]):
            total = total + v * y
        return total

    for x in (3.0, -2.0):
        assert_same(tj.grad(compiled(f))(tj.constant(x)), tj.grad(f)(tj.constant(x)))


def test_for_over_an_unknown_first_dimension():
    f = compiled(sum_of_rows, input_signature=[tj.TensorSpec((None, 2), "float32")])
    assert float(f(tj.ones((3, 2)))) == 6.0 and float(f(tj.ones((5, 2)))) == 10.0
    assert f.trace_count == 1


# Errors -----------------------------------------------------------------------------------------
def test_name_defined_in_one_branch_only():
    def half(x):
        if x > 0:  # the tensor if
            y = x / 2
        return y

    with pytest.raises(ConversionError) as info:
        compiled(half)(tj.constant(1.0))
    message = str(info.value)
    assert "'y' is defined in the true branch" in message
    assert f"test_autograph.py:{line_of(half, '# the tensor if')}" in message


def test_unused_name_defined_in_one_branch_is_fine():
    def f(x):
        if x > 0:
            scratch = x * 3
            x = scratch - x
        return x

    assert float(compiled(f)(tj.constant(2.0))) == 4.0


def test_loop_variable_undefined_before_the_loop():
    def f(x):
        while x < 10:
            last = x
            x = x * 2
        return last

    with pytest.raises(ConversionError, match="'last' is assigned in this `while` loop"):
        compiled(f)(tj.constant(1.0))


def test_loop_variable_changing_dtype():
    def f(x):
        y = x
        while x < 10.0:
            x = x + 1.0
            y = tj.cast(x, "int32")
        return y

    with pytest.raises(ConversionError, match="'y' enters this `while` loop as a tensor f32"):
        compiled(f)(tj.constant(1.0))


def test_branches_with_different_python_values():
    def f(x):
        mode = "a" if x > 0 else "b"
        return x, mode

    with pytest.raises(ConversionError, match="the Python str 'a' in the true branch"):
        compiled(f)(tj.constant(1.0))


def test_non_scalar_tensor_condition():
    def f(x):
        if x > 0:
            x = -x
        return x

    with pytest.raises(ConversionError, match=r"condition of this `if` is a tensor bool\[2\]"):
        compiled(f)(tj.constant([1.0, 2.0]))


def test_errors_in_converted_code_point_at_the_users_line():
    def f(x):
        if x.sum() > 0:
            y = x + tj.ones((4,))  # the bad add
        else:
            y = x
        return y

    with pytest.raises(tj.errors.ShapeError) as info:
        compiled(f)(tj.constant([1.0, 2.0]))
    assert f"test_autograph.py:{line_of(f, '# the bad add')} in f" in str(info.value)
    frames = [(fr.filename, fr.lineno) for fr in __import__("traceback").extract_tb(info.tb)]
    assert (__file__, line_of(f, "# the bad add")) in frames


def test_ir_locations_name_the_users_function_and_line():
    ir = ir_text(compiled(logic), tj.constant(1.0), tj.constant(2.0))
    assert "in <lambda>" not in ir and "in if_body" not in ir
    assert f"test_autograph.py:{line_of(logic, 'both =')} in logic" in ir


# Conversion rules ---------------------------------------------------------------------------------
def _halve_if_positive(x):
    if x.sum() > 0:
        x = x / 2
    return x


def test_user_callees_are_converted_library_code_is_not():
    def caller(x):
        return _halve_if_positive(x) + tj.exp(x) * 0

    f = compiled(caller)
    assert_same(f(tj.constant([2.0, 4.0])), [1.0, 2.0])
    assert_same(f(tj.constant([-2.0, 1.0])), [-2.0, 1.0])
    assert autograph.convert(tj.exp) is tj.exp
    assert autograph.convert(np.sum) is np.sum
    assert autograph.convert(len) is len


def test_closures_and_globals_stay_live():
    offset = 1.0
    calls = 0

    def add_offset(x):
        nonlocal calls
        calls += 1
        if x > 0:
            x = x + offset + GLOBAL_SCALE
        return x

    f = autograph.convert(add_offset)
    offset = 2.0  # rebinding the enclosing variable is seen by the converted function
    assert float(f(tj.constant(1.0))) == 1.0 + 2.0 + GLOBAL_SCALE
    assert calls == 1  # nonlocal writes reach the original cell
    assert float(compiled(add_offset)(tj.constant(1.0))) == 1.0 + 2.0 + GLOBAL_SCALE


GLOBAL_SCALE = 10.0


class _Base:
    def forward(self, x):
        return x + 1.0


class _Model(_Base):
    def __init__(self):
        self.__scale = 3.0

    def forward(self, x):
        if x > 0:
            x = super().forward(x) * self.__scale
        return x


def test_methods_with_super_and_private_names():
    model = _Model()
    f = compiled(model.forward)
    assert float(f(tj.constant(1.0))) == 6.0
    assert float(f(tj.constant(-1.0))) == -1.0


def test_nested_functions_and_lambdas_are_converted():
    def outer(x):
        def clip(v):
            if v > 1.0:
                v = tj.ones_like(v)
            return v

        magnitude = lambda v: v if v > 0 else -v  # noqa: E731
        return clip(magnitude(x))

    f = compiled(outer)
    for x in (-5.0, -0.5, 0.25, 7.0):
        assert float(f(tj.constant(x))) == min(abs(x), 1.0)
    assert control_flow_ops(ir_text(f, tj.constant(1.0))) == ["cond", "cond"]


def test_to_code_shows_the_operator_calls():
    code = autograph.to_code(absolute)
    assert code.startswith("def absolute(x):")
    assert "ag__.if_stmt(" in code and "def if_body_" in code and "nonlocal" in code
    assert "return ag__.retval(retval_)" in code
    assert "ag__.converted_call(x.sum, (), None) > 0" in code
    compile(code, "<to_code>", "exec")
    assert autograph.to_code(lambda x: x and 1) == "lambda x: ag__.and_(lambda: x, lambda: 1)"


def test_function_without_source_warns_only_with_control_flow():
    namespace: dict = {}
    exec("def branchy(x):\n    return x if x > 0 else -x\n", namespace)
    exec("def straight(x):\n    return x * 2\n", namespace)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert autograph.convert(namespace["straight"]) is namespace["straight"]
        assert autograph.convert(namespace["branchy"]) is namespace["branchy"]
        autograph.convert(namespace["branchy"])  # warned once
        double = tj.function(autograph.convert(namespace["straight"]))
        assert_same(double(tj.constant(2.0)), 4.0)
        lam = eval("lambda x: x * 3")
        assert autograph.convert(lam) is lam
    messages = [str(w.message) for w in caught if issubclass(w.category, AutoGraphWarning)]
    assert len(messages) == 1 and "branchy (<string>:1)" in messages[0]
    assert "source code is not available" in messages[0]


def test_generators_are_not_converted():
    def gen(n):
        for i in range(n):
            yield i * 2

    assert autograph.convert(gen) is gen


def test_converted_functions_run_eagerly_too():
    assert_same(autograph.convert(collatz_steps)(tj.constant(27)), 111)
    assert_same(autograph.convert(first_above)(tj.constant([1.0, 5.0]), 2.0), 5.0)
    converted = autograph.convert(absolute)
    assert autograph.convert(converted) is converted and autograph.is_converted(converted)
