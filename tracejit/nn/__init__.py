"""``tj.nn``: the neural-network library, built on tracejit's public ops only.

Activations and normalizers (each one op), layers (Modules that own Variables) and losses.
"""

from tracejit.nn import initializers
from tracejit.nn.base import Layer, unique_name
from tracejit.nn.layers import (
    AvgPool2D,
    Conv2D,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    MaxPool2D,
    Sequential,
    SpatialDropout1D,
    SpatialDropout2D,
    get_activation,
)
from tracejit.nn.losses import (
    binary_cross_entropy,
    cosine_similarity,
    hinge,
    huber,
    kl_divergence,
    mean_absolute_error,
    mean_squared_error,
    sigmoid_binary_cross_entropy,
    softmax_cross_entropy,
    sparse_softmax_cross_entropy,
)
from tracejit.nn.normalization import (
    BatchNormalization,
    GroupNormalization,
    LayerNormalization,
    RMSNormalization,
)
from tracejit.nn.shaping import (
    Activation,
    Add,
    Average,
    Concatenate,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalMaxPooling1D,
    GlobalMaxPooling2D,
    Maximum,
    Minimum,
    Multiply,
    Permute,
    Reshape,
    Subtract,
)
from tracejit.ops.activations import (
    elu,
    hard_sigmoid,
    leaky_relu,
    log_sigmoid,
    mish,
    selu,
    silu,
    softsign,
    swish,
)
from tracejit.ops.conv import avg_pool2d, conv2d, max_pool2d
from tracejit.ops.nn import gelu, log_softmax, logsumexp, relu, sigmoid, softmax, softplus
from tracejit.ops.normalization import batch_norm, group_norm, layer_norm, rms_norm

__all__ = [
    "AvgPool2D",
    "Conv2D",
    "Dense",
    "MaxPool2D",
    "avg_pool2d",
    "conv2d",
    "max_pool2d",
    "Dropout",
    "Flatten",
    "Sequential",
    "gelu",
    "get_activation",
    "log_softmax",
    "logsumexp",
    "mean_squared_error",
    "relu",
    "sigmoid",
    "sigmoid_binary_cross_entropy",
    "softmax",
    "softmax_cross_entropy",
    "softplus",
    "elu",
    "hard_sigmoid",
    "leaky_relu",
    "log_sigmoid",
    "mish",
    "selu",
    "silu",
    "softsign",
    "swish",
    # normalization (issue 13)
    "batch_norm",
    "group_norm",
    "layer_norm",
    "rms_norm",
    # layers and initializers (issue 13)
    "Layer",
    "initializers",
    "Activation",
    "Add",
    "Average",
    "BatchNormalization",
    "Concatenate",
    "Embedding",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "GroupNormalization",
    "LayerNormalization",
    "Maximum",
    "Minimum",
    "Multiply",
    "Permute",
    "RMSNormalization",
    "Reshape",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "Subtract",
    "unique_name",
    # losses (issue 13)
    "binary_cross_entropy",
    "cosine_similarity",
    "hinge",
    "huber",
    "kl_divergence",
    "mean_absolute_error",
    "sparse_softmax_cross_entropy",
]

# sequence models (issue 13): attention and recurrent layers
from tracejit.nn.attention import MultiHeadAttention  # noqa: E402
from tracejit.nn.recurrent import GRU, LSTM, Bidirectional, SimpleRNN  # noqa: E402
from tracejit.ops.attention import dot_product_attention  # noqa: E402

__all__ += [
    "Bidirectional",
    "GRU",
    "LSTM",
    "MultiHeadAttention",
    "SimpleRNN",
    "dot_product_attention",
]
