"""``tj.Module``: a container that finds the Variables and sub-modules in its attributes."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
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

    # A tj.nn layer sets these on its first call (a plain Module has nothing to build).
    built: bool = True
    output_shape: Any = None

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
        """The variables an optimizer trains (``trainable=True``)."""
        return [v for v in self.variables if v.trainable]

    @property
    def non_trainable_variables(self) -> list[Variable]:
        """The other variables (BatchNormalization's moving statistics, counters...)."""
        return [v for v in self.variables if not v.trainable]

    def count_params(self) -> int:
        """The number of elements of all variables (trainable or not)."""
        return _size(self.variables)

    def summary(self, print_fn: Callable[[str], Any] = print) -> None:
        """Print a table of the layers (for ``Sequential`` its ``layers``, else the modules in
        this one's attributes), their output shapes (batch dim as None) and parameter counts,
        then the totals, trainable and non-trainable, as Keras' ``model.summary()``. Lazy layers
        must have been built (call the model once first).

        >>> import tracejit as tj
        >>> model = tj.nn.Sequential([tj.nn.Dense(4, activation="relu", name="hidden"),
        ...                           tj.nn.Dense(2, name="out")])
        >>> _ = model(tj.ones((1, 3)))
        >>> model.summary()
        Model: "Sequential"
        _______________________________________
         Layer (type)    Output Shape  Param #
        =======================================
         hidden (Dense)  (None, 4)     16
         out (Dense)     (None, 2)     10
        =======================================
        Total params: 26
        Trainable params: 26
        Non-trainable params: 0
        _______________________________________
        """
        print_fn(_summary(self))

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


def _size(variables: list[Variable]) -> int:
    """The number of elements of ``variables`` (a variable's shape is always known)."""
    return sum(math.prod(d or 0 for d in variable.shape) for variable in variables)


def _shape_text(shape: Any) -> str:
    if shape is None:
        return "?"
    if isinstance(shape, list):
        return "[" + ", ".join(_shape_text(s) for s in shape) + "]"
    if isinstance(shape, tuple) and all(d is None or isinstance(d, int) for d in shape):
        return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"
    return "?"


def _summary(module: Module) -> str:
    layers = getattr(module, "layers", None)
    if not (isinstance(layers, list) and all(isinstance(m, Module) for m in layers)):
        layers = [child for child in module._children() if isinstance(child, Module)]
    unbuilt = [layer.name for layer in layers if not layer.built]
    if unbuilt:
        raise ValueError(
            f"{module.name}.summary(): {', '.join(unbuilt)} not built yet -- its variables are "
            "created on its first call; call the model once on an input first"
        )
    rows = [("Layer (type)", "Output Shape", "Param #")]
    rows += [
        (f"{m.name} ({type(m).__name__})", _shape_text(m.output_shape), f"{m.count_params():,}")
        for m in layers
    ]
    widths = [max(len(row[i]) for row in rows) + 2 for i in range(2)]
    lines = [" " + row[0].ljust(widths[0]) + row[1].ljust(widths[1]) + row[2] for row in rows]
    width = max(len(line) for line in lines) + 1
    variables = module.variables
    trainable = _size([v for v in variables if v.trainable])
    total = _size(variables)
    return "\n".join(
        [f'Model: "{module.name}"', "_" * width, lines[0], "=" * width, *lines[1:], "=" * width,
         f"Total params: {total:,}", f"Trainable params: {trainable:,}",
         f"Non-trainable params: {total - trainable:,}", "_" * width]
    )  # fmt: skip
