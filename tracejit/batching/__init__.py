"""``tj.vmap``: batching as a transformation of tracejit's IR (see ``tracejit.batching.vmap``).

Importing this package installs every op's batching rule into the registry: the generic and
per-op rules of ``tracejit.ops.batching_rules`` and the control-flow rules of
``tracejit.batching.control``. It is imported by ``tracejit`` after all op families.
"""

from tracejit.batching import control
from tracejit.batching.vmap import vectorized_map, vmap
from tracejit.ops import batching_rules

batching_rules.install()
control.install()

__all__ = ["vectorized_map", "vmap"]
