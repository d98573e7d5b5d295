"""Placeholders for variables that have no value yet.

Converted code binds every name it passes between branch and loop functions up front, to an
``Undefined``; a name still undefined when it is used raises ``UnboundLocalError``, as Python
would. ``UndefinedReturnValue`` is the initial value of the lowered ``return`` (``retval_``):
unlike other variables it may be defined in one branch of a tensor ``if`` only (the other branch
continues and returns later), and it is then filled with zeros there.
"""

from __future__ import annotations

from typing import Any, NoReturn


class Undefined:
    """The value of a converted function's variable before its first assignment."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<undefined {self.name!r}>"

    def _fail(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise UnboundLocalError(
            f"local variable '{self.name}' is used before it is assigned a value"
        )

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        self._fail()

    __bool__ = __call__ = __iter__ = __len__ = __getitem__ = __setitem__ = _fail
    __index__ = __int__ = __float__ = __array__ = _fail
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _fail
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = _fail
    __pow__ = __rpow__ = __matmul__ = __rmatmul__ = __neg__ = __pos__ = __abs__ = _fail
    __lt__ = __le__ = __gt__ = __ge__ = _fail
    __and__ = __rand__ = __or__ = __ror__ = __xor__ = __rxor__ = __invert__ = _fail


class UndefinedReturnValue(Undefined):
    """The return value of a converted function that has not returned yet."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__("return value")


def retval(value: Any) -> Any:
    """The value the converted function returns: None if it never reached a ``return``."""
    return None if isinstance(value, UndefinedReturnValue) else value
