"""Eager tensors and variables, and the eager interpreter.

Importing this package installs ``EagerInterpreter`` as the base of every thread's interpreter
stack (``context.set_base_interpreter``): the interpreter lives here, above the ops it runs, and
the bottom layer only holds the slot ``bind`` reads.
"""

from tracejit.eager.execute import EagerInterpreter
from tracejit.tracing import context

context.set_base_interpreter(EagerInterpreter())
