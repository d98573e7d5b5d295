"""tracejit: TensorFlow 2's programming model on JAX/XLA's speed, with an IR you can read.

Eager ops run at once; ``@tj.function`` traces a Python function into tracejit's SSA IR and
compiles it with ``jax.jit``.

>>> import tracejit as tj
>>> @tj.function
... def f(x, y):
...     return x * y + 1
>>> f(tj.constant([1.0, 2.0]), tj.constant([3.0, 4.0])).numpy()
array([4., 9.], dtype=float32)
"""

from tracejit import config
from tracejit.eager.tensor import Tensor, constant, convert_to_tensor
from tracejit.eager.variable import Variable
from tracejit.autodiff.tape import GradientTape
from tracejit.autodiff.functional import custom_gradient, grad, value_and_grad
from tracejit.ops.control import cond, fori_loop, scan, switch, while_loop
from tracejit.ops.debug import print
from tracejit.ops.creation import (
    arange,
    eye,
    full,
    full_like,
    one_hot,
    ones,
    ones_like,
    zeros,
    zeros_like,
)
from tracejit.ops.elementwise import (
    abs,
    add,
    astype,
    cast,
    clip,
    cos,
    divide,
    equal,
    exp,
    floor_divide,
    greater,
    greater_equal,
    less,
    less_equal,
    log,
    log1p,
    logical_and,
    logical_not,
    logical_or,
    maximum,
    minimum,
    mod,
    multiply,
    negative,
    not_equal,
    power,
    rsqrt,
    sign,
    sin,
    sqrt,
    square,
    stop_gradient,
    subtract,
    tanh,
    where,
)
from tracejit.ops.linalg import dot, matmul
from tracejit.ops.reduction import all, any, argmax, argmin, max, mean, min, prod, sum
from tracejit.ops.shape import (
    broadcast_to,
    concatenate,
    expand_dims,
    reshape,
    split,
    squeeze,
    stack,
    take,
    transpose,
)
from tracejit.module import Module
from tracejit import nn, optim, random
from tracejit import distribute
from tracejit.tracing.function import ConcreteFunction, Function, function
from tracejit import autograph, saved, train
from tracejit.autograph import range
from tracejit.tracing.retracing import explain
from tracejit.tracing.tracer import Tracer
from tracejit.types import (
    AVal,
    TensorSpec,
    bfloat16,
    bool_,
    complex64,
    float16,
    float32,
    float64,
    int8,
    int16,
    int32,
    int64,
    uint8,
    uint32,
)

# Bitwise ops (issue 11): array API names, plus numpy's aliases.
from tracejit.ops.bitwise import (
    bitwise_and,
    bitwise_invert,
    bitwise_left_shift,
    bitwise_or,
    bitwise_right_shift,
    bitwise_xor,
    invert,
    left_shift,
    right_shift,
)

# Array API standard (2024.12) main namespace: elementwise math and constants.
from tracejit.ops.elementwise_math import (
    acos,
    acosh,
    asin,
    asinh,
    atan,
    atanh,
    ceil,
    cosh,
    e,
    expm1,
    floor,
    inf,
    isfinite,
    isinf,
    isnan,
    log2,
    log10,
    nan,
    newaxis,
    pi,
    signbit,
    sinh,
    tan,
    trunc,
    # (and the rest of the standard's elementwise functions)
    atan2,
    conj,
    copysign,
    hypot,
    imag,
    logaddexp,
    logical_xor,
    nextafter,
    positive,
    pow,
    real,
    reciprocal,
    remainder,
    round,
)
from tracejit.ops.creation import empty, empty_like, linspace, meshgrid  # noqa: E402
from tracejit.eager.tensor import asarray, from_dlpack  # noqa: E402
from tracejit.types import can_cast, finfo, iinfo, isdtype, result_type  # noqa: E402

__version__ = "0.1.0"
__array_api_version__ = "2024.12"  # the array API standard tracejit follows

# TF2 programming model (issue 14)
from tracejit.eager.variable import name_scope  # noqa: E402
from tracejit.ops.shape_query import rank, shape, size  # noqa: E402

# Array API standard (2024.12) main namespace: manipulation, statistics, sorting/searching,
# linear algebra and set functions (issue 12).
from tracejit.ops.manipulation import (  # noqa: E402
    broadcast_arrays,
    concat,
    flip,
    matrix_transpose,
    moveaxis,
    permute_dims,
    repeat,
    roll,
    tile,
    tril,
    triu,
    unstack,
)
from tracejit.ops.statistics import (  # noqa: E402
    count_nonzero,
    cumulative_prod,
    cumulative_sum,
    diff,
    std,
    var,
)
from tracejit.ops.sorting import (  # noqa: E402
    argsort,
    nonzero,
    searchsorted,
    sort,
    take_along_axis,
)
from tracejit.ops.contraction import tensordot, vecdot  # noqa: E402
from tracejit.ops.sets import (  # noqa: E402
    unique_all,
    unique_counts,
    unique_inverse,
    unique_values,
)

# HTML compile reports (issue 18)
from tracejit.report import report, report_html  # noqa: E402

# jax functions as tracejit ops (issue 15)
from tracejit.ops.jax_call import jax_function  # noqa: E402

# Gradient clipping (issue 13), as TF's tf.clip_by_norm / tf.clip_by_global_norm.
from tracejit.optim.clipping import clip_by_global_norm, clip_by_norm, global_norm  # noqa: E402

# Forward mode (issue 14): tj.jvp, tj.hvp, and TF's tj.autodiff.ForwardAccumulator.
from tracejit.autodiff.forward import hvp, jvp  # noqa: E402

# TF2's functions, the rest (issue 14): Python code at run time
from tracejit.autodiff.py_function import numpy_function, py_function  # noqa: E402
from tracejit.tracing.context import executing_eagerly, init_scope  # noqa: E402
from tracejit.runtime.placement import device  # noqa: E402

# Array API standard (2024.12) extensions and the namespace info (issue 12).
from tracejit import fft, linalg  # noqa: E402
from tracejit.info import __array_namespace_info__  # noqa: E402
from tracejit.types import bool_ as bool, complex128, uint16, uint64  # noqa: E402, A004

# tj.vmap over tracejit's IR (issue 15): imported after every op family, as it installs the
# batching rule of every op.
from tracejit.batching import vectorized_map, vmap  # noqa: E402

# tj.TensorArray (issue 14): TF's list of tensors for loops, a buffer updated in place.
from tracejit.ops.tensor_array import TensorArray  # noqa: E402

# Keep this block last. The public API is every name imported above, plus the public
# submodules. The stage packages (ops, tracing, eager, ir, passes, lowering, runtime, autodiff)
# and the report package are implementation: their public names are re-exported here.
# tests/test_api_reference.py checks that docs/api.md renders every name listed here.
_PUBLIC_MODULES = (
    "autograph",
    "config",
    "distribute",
    "errors",
    "fft",
    "linalg",
    "nn",
    "optim",
    "random",
    "saved",
    "train",
)
__all__ = sorted(
    [
        name
        for name, value in list(globals().items())
        if not name.startswith("_") and type(value).__name__ != "module"
    ]
    + list(_PUBLIC_MODULES)
)
