"""pytest, for the whole repository: tracejit's own tests (and the docs' doctests) run with the
IR verifier on after tracing and after every pass (``tj.config.set_debug_checks``); users get
it with ``TRACEJIT_DEBUG=1``."""

import tracejit

tracejit.config.set_debug_checks(True)

# A worker script the multi-process tests launch (it joins a jax.distributed cluster when
# imported), not a test module.
collect_ignore = ["tests/multiprocess_worker.py"]
