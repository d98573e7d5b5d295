"""``tj.Module``: a container that finds the Variables and sub-modules in its attributes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tracejit.eager.variable import Variable, name_scope


def _walk(value: Any, seen: set[int]) -> Iterator[Any]:
    """Variables and Modules reachable from ``value`` through lists, tuples and dicts."""
    if id(value) in seen:
        return
    if isinstance(value, (Variable, Module)):
        seen.add(id(value))
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _walk(item, seen)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _walk(item, seen)


class Module:
    """Base class for models and layers: collects Variables from attributes, nested modules,
    lists, tuples and dicts (in attribute order, each once).

    >>> import tracejit as tj
    >>> class Affine(tj.Module):
    ...     def __init__(self):
    ...         self.w = tj.Variable(tj.ones((2, 3)))
    ...         self.b = tj.Variable(tj.zeros((3,)))
    >>> [v.shape for v in Affine().trainable_variables]
    [(2, 3), (3,)]
    """

    def __init__(self, name: str | None = None) -> None:
        if name is not None and (not isinstance(name, str) or not name.isidentifier()):
            raise ValueError(
                f"{type(self).__name__}(name={name!r}): a module name must be a valid Python "
                "identifier, as in TF"
            )
        self._name = name

    @property
    def name(self) -> str:
        return self.__dict__.get("_name") or type(self).__name__

    @property
    def name_scope(self) -> Any:
        """A context manager: Variables created inside it are named ``<module name>/...``.

        >>> import tracejit as tj
        >>> class Dense(tj.Module):
        ...     def __init__(self, name=None):
        ...         super().__init__(name=name)
        ...         with self.name_scope:
        ...             self.w = tj.Variable(tj.ones((2, 2)), name="w")
        >>> Dense(name="fc1").w.name
        'fc1/w'
        """
        return name_scope(self.name)

    def __setattr__(self, key: str, value: Any) -> None:
        object.__setattr__(self, key, value)
        pending = self.__dict__.get("__deferred_restore__")
        if pending is not None and not key.startswith("__"):
            pending.attach(key, value)

    def _children(self) -> Iterator[Any]:
        seen: set[int] = {id(self)}
        for key, value in vars(self).items():
            if not key.startswith("__"):
                yield from _walk(value, seen)

    @property
    def submodules(self) -> list[Module]:
        """Every module nested inside this one (depth first)."""
        found: list[Module] = []
        for child in self._children():
            if isinstance(child, Module):
                found.append(child)
                found.extend(m for m in child.submodules if all(m is not f for f in found))
        return found

    @property
    def variables(self) -> list[Variable]:
        """Every variable of this module and its submodules, each once, in attribute order."""
        found: dict[int, Variable] = {}
        for child in self._children():
            for variable in [child] if isinstance(child, Variable) else child.variables:
                found.setdefault(id(variable), variable)
        return list(found.values())

    @property
    def trainable_variables(self) -> list[Variable]:
        return [v for v in self.variables if v.trainable]

    def count_params(self) -> int:
        total = 0
        for variable in self.variables:
            size = 1
            for dim in variable.shape:
                size *= dim
            total += size
        return total

    def __repr__(self) -> str:
        lines = [f"{self.name} ({self.count_params():,} parameters)"]
        for key, value in vars(self).items():
            if isinstance(value, Variable):
                lines.append(
                    f"  {key}: {value.aval} {'' if value.trainable else '(frozen)'}".rstrip()
                )
            elif isinstance(value, Module):
                child = repr(value).splitlines()
                lines.append(f"  {key}: {child[0]}")
                lines.extend("  " + line for line in child[1:])
            elif isinstance(value, (list, tuple)) and any(isinstance(v, Module) for v in value):
                for i, item in enumerate(value):
                    child = repr(item).splitlines()
                    lines.append(f"  {key}[{i}]: {child[0]}")
                    lines.extend("  " + line for line in child[1:])
        return "\n".join(lines)
