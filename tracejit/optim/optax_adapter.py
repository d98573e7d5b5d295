"""optax gradient transformations as tracejit optimizers: ``tj.optim.from_optax(tx)``.

The optax state (a pytree of arrays) is kept as a flat list of tracejit Variables,
``optimizer.state``, created on the first ``apply_gradients`` (or by ``build``). Being
Variables, they are lifted into compiled train steps, donated, and checkpointed like the native
optimizers' slots (at ``optimizer/state/0``, ``optimizer/state/1``, ... in a Checkpoint). Each
update is one ``tj.jax_function`` call running ``tx.update`` and ``optax.apply_updates``, so it
works eagerly and inside ``tj.function`` (one ``jax_call[fn=optax_update]`` node).

optax itself is optional (``pip install tracejit[optax]``): this module never imports it; the
transformation object brings its own functions, and ``optax.apply_updates`` is written here as
the plain sum it is.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Any

import jax

from tracejit.eager.variable import Variable
from tracejit.errors import trims_tracebacks
from tracejit.ops.jax_call import jax_function
from tracejit.ops.tensor_methods import is_tensor_leaf
from tracejit.optim import Optimizer
from tracejit.tracing import context


def _optax_update(tx: Any, treedef: Any, grads: list[Any], state: list[Any], params: list[Any]):
    """One optax step as a jax function: ``(grads, state leaves, params) -> (new params, new
    state leaves)``."""
    updates, new_state = tx.update(grads, jax.tree_util.tree_unflatten(treedef, state), params)
    new_params = [(p + u).astype(p.dtype) for p, u in zip(params, updates)]
    return new_params, jax.tree_util.tree_leaves(new_state)


def _rate_in_tx(step: Any) -> float:
    """The base class's learning rate for an optax optimizer: unused (tx has its own)."""
    return 0.0


class Optax(Optimizer):
    """An optax ``GradientTransformation`` behind tracejit's optimizer interface.

    >>> import optax
    >>> import tracejit as tj
    >>> w = tj.Variable([1.0, -2.0])
    >>> opt = tj.optim.from_optax(optax.sgd(0.1))
    >>> opt.apply_gradients([(tj.constant([1.0, 1.0]), w)])
    >>> w.numpy()
    array([ 0.9, -2.1], dtype=float32)
    """

    def __init__(self, tx: Any) -> None:
        if not (callable(getattr(tx, "init", None)) and callable(getattr(tx, "update", None))):
            raise TypeError(
                "tj.optim.from_optax needs an optax GradientTransformation (with init and "
                f"update), got {type(tx).__name__}"
            )
        # The rate lives in tx (a callable here, so no learning-rate variable is created);
        # iterations is still counted.
        super().__init__(learning_rate=_rate_in_tx)
        self.tx = tx
        self.state: list[Variable] = []
        self._for: tuple[Variable, ...] | None = None  # the variables the state was built for
        self._update_fn: Any = None

    def build(self, variables: Sequence[Variable]) -> None:
        """Create the optax state for ``variables`` now (before restoring a checkpoint, say);
        ``apply_gradients`` does it on first use otherwise."""
        variables = tuple(variables)
        if self._for is not None:
            self._check_same(variables)
            return
        for v in variables:
            if not isinstance(v, Variable):
                raise TypeError(f"from_optax: expected Variables, got {type(v).__name__}")
        with context.paused_tracing():
            init = jax_function(self.tx.init, name="optax_init")(list(variables))
            leaves, treedef = jax.tree_util.tree_flatten(init, is_leaf=is_tensor_leaf)
            self.state = [
                Variable(leaf, trainable=False, name=f"optimizer/optax/{i}")
                for i, leaf in enumerate(leaves)
            ]
        builder = context.state.builder
        if builder is not None:
            for variable in self.state:
                builder.note_variable_created(variable)
        self._for = variables
        self._update_fn = jax_function(
            functools.partial(_optax_update, self.tx, treedef), name="optax_update"
        )

    def _check_same(self, variables: tuple[Variable, ...]) -> None:
        assert self._for is not None
        if len(variables) != len(self._for) or any(
            a is not b for a, b in zip(variables, self._for)
        ):
            built = [v.name for v in self._for]
            given = [getattr(v, "name", type(v).__name__) for v in variables]
            raise ValueError(
                f"from_optax: this optimizer's state was built for the variables {built}, in "
                f"that order, but apply_gradients got {given}; an optax state belongs to one "
                "list of parameters: use one optimizer per list"
            )

    @property
    def variables(self) -> list[Variable]:
        """The optimizer's own state: step counter and the optax state (for checkpoints)."""
        return [self.iterations, *self.state]

    @trims_tracebacks
    def apply_gradients(self, grads_and_vars: Iterable[tuple[Any, Variable]]) -> None:
        """One optax update of the variables (pairs with a None gradient are left out, as in
        TF; the variables with gradients must be the same on every call)."""
        given = list(grads_and_vars)
        pairs = [(g, v) for g, v in given if g is not None]
        if not pairs:
            raise ValueError(
                "apply_gradients got no gradients (all None): is the loss connected "
                "to the variables?"
            )
        variables = tuple(v for _, v in pairs)
        self.build(variables)
        params = [v.value() for v in variables]
        new_params, new_state = self._update_fn(
            [g for g, _ in pairs], [s.value() for s in self.state], params
        )
        for variable, value in zip(variables, new_params):
            variable.assign(value)
        for slot, value in zip(self.state, new_state):
            slot.assign(value)
        self.iterations.assign_add(1)


def from_optax(tx: Any) -> Optax:
    """Adapt an optax ``GradientTransformation`` (``optax.adamw(1e-3)``, a chain, ...) to
    tracejit's optimizer interface; see ``Optax``."""
    return Optax(tx)
