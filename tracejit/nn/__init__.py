"""``tj.nn``: the neural-network library built on tracejit's public ops.

For now it holds the activation and normalization functions (each one op); it will also hold the
training library — layers, losses and initializers — written with public ops only.
"""

from tracejit.ops.nn import gelu, log_softmax, logsumexp, relu, sigmoid, softmax, softplus

__all__ = ["gelu", "log_softmax", "logsumexp", "relu", "sigmoid", "softmax", "softplus"]
