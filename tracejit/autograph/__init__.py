"""AutoGraph: Python control flow on symbolic tensors, by rewriting the function's source.

``tj.function`` traces a Python function with symbolic tensors, which have no value, so a plain
``if``/``while`` on one cannot be decided while tracing. Converted functions instead call
runtime operators that decide when the statement runs: a Python condition (or an eager tensor)
runs the statement as Python — unrolled at trace time, as before — and a symbolic condition
builds one ``cond``/``while_loop``/``scan`` node.

- ``convert(fn)``: the converted function (``fn`` itself when it cannot be converted: library
  code, generators, no source — with a warning when its bytecode branches);
- ``to_code(fn)``: the converted source, to read;
- ``range``: ``tj.range``, Python's ``range`` unless a bound is symbolic.

See ``transformer.py`` for the rewrite, ``operators.py`` for the run-time dispatch.
"""

from tracejit.autograph.conversion import convert, is_converted, to_code
from tracejit.autograph.exceptions import AutoGraphWarning, ConversionError, LoopUnrollWarning
from tracejit.autograph.ranges import range

__all__ = [
    "AutoGraphWarning",
    "ConversionError",
    "LoopUnrollWarning",
    "convert",
    "is_converted",
    "range",
    "to_code",
]
