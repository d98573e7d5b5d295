"""tj.nn layers: Keras-style lazy building (eager, compiled, checkpoints), the issue-13 layers
against numpy references (eager and compiled), BatchNormalization's moving statistics over
compiled steps, and Module.summary()."""

from __future__ import annotations

import numpy as np
import pytest

import tracejit as tj
from tracejit.errors import ShapeError

RNG = np.random.default_rng(13)
X = RNG.standard_normal((6, 5)).astype(np.float32)
IMAGES = RNG.standard_normal((2, 6, 6, 3)).astype(np.float32)
TOL = {"rtol": 1e-5, "atol": 1e-5}


def _both(layer, *args, **kwargs):
    """The layer's output eagerly and through a tj.function (built by whichever runs first)."""
    eager = layer(*args, **kwargs)
    compiled = tj.function(lambda *a: layer(*a, **kwargs))(*args)
    return np.asarray(eager), np.asarray(compiled)


# Lazy building --------------------------------------------------------------------------------
def test_dense_builds_from_its_first_input_eagerly():
    layer = tj.nn.Dense(4, generator=tj.random.Generator(0))
    assert not layer.built and layer.kernel is None and layer.variables == []
    y = layer(X)
    assert layer.built and layer.kernel.shape == (5, 4) and layer.bias.shape == (4,)
    np.testing.assert_allclose(y.numpy(), X @ layer.kernel.numpy() + layer.bias.numpy(), **TOL)
    explicit = tj.nn.Dense(5, 4, generator=tj.random.Generator(0))  # the same draw at once
    assert explicit.built
    np.testing.assert_array_equal(explicit.kernel.numpy(), layer.kernel.numpy())
    assert [v.name for v in layer.variables] == [f"{layer.name}/kernel", f"{layer.name}/bias"]


def test_dense_builds_on_the_first_trace_of_a_function():
    layer = tj.nn.Dense(units=3, activation="relu", generator=tj.random.Generator(1))

    @tj.function
    def f(x):
        return layer(x)

    y = f(X)
    assert layer.kernel.shape == (5, 3) and f.trace_count == 1
    expected = np.maximum(X @ layer.kernel.numpy() + layer.bias.numpy(), 0)
    np.testing.assert_allclose(y.numpy(), expected, **TOL)
    f(X[:2])  # another batch size: a retrace, no new variables
    assert len(layer.variables) == 2


def test_a_layer_called_with_another_input_size_names_itself_and_both_sizes():
    layer = tj.nn.Dense(3, name="head")
    layer(X)
    with pytest.raises(ShapeError) as info:
        layer(np.ones((2, 7), np.float32))
    message = str(info.value)
    assert message.startswith("Dense 'head': was built for inputs whose axis -1 has size 5")
    assert "input of shape (2, 7) (axis -1: 7)" in message
    assert "test_layers.py" in message  # the user's line
    compiled = tj.function(lambda x: layer(x))
    with pytest.raises(ShapeError, match="axis -1 has size 5.*axis -1: 9"):
        compiled(np.ones((2, 9), np.float32))
    conv = tj.nn.Conv2D(4, 3)
    conv(IMAGES)
    with pytest.raises(
        ShapeError, match="Conv2D 'conv2d[^']*': was built .*axis -1 has size 3.*axis -1: 1"
    ):
        conv(np.ones((1, 6, 6, 1), np.float32))
    with pytest.raises(ShapeError, match="expects inputs with 4 dims, got shape"):
        conv(np.ones((6, 6, 3), np.float32))


def test_building_from_an_unknown_dim_is_a_clear_error():
    layer = tj.nn.Dense(3, name="lazy")
    spec = tj.TensorSpec((None, None), "float32")
    f = tj.function(lambda x: layer(x), input_signature=[spec])
    with pytest.raises(ShapeError, match="Dense 'lazy': cannot build from an input of shape"):
        f(X)


def test_size_arguments_are_checked():
    with pytest.raises(TypeError, match=r"Dense takes its output size \(Dense\(units\)\)"):
        tj.nn.Dense(2, 3, 4)
    with pytest.raises(ValueError, match="Dense: units must be a positive int, got 0"):
        tj.nn.Dense(0)
    with pytest.raises(TypeError, match="Conv2D needs a kernel_size"):
        tj.nn.Conv2D()


def test_conv2d_lazy_and_explicit_forms_agree_with_jax():
    import jax

    lazy = tj.nn.Conv2D(4, (3, 2), padding="VALID", generator=tj.random.Generator(2))
    explicit = tj.nn.Conv2D(3, 4, (3, 2), padding="VALID", generator=tj.random.Generator(2))
    eager, compiled = _both(lazy, IMAGES)
    assert lazy.kernel.shape == (3, 2, 3, 4)
    np.testing.assert_array_equal(lazy.kernel.numpy(), explicit.kernel.numpy())
    expected = jax.lax.conv_general_dilated(
        IMAGES, lazy.kernel.numpy(), (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    np.testing.assert_allclose(eager, np.asarray(expected), **TOL)
    np.testing.assert_allclose(compiled, eager, **TOL)
    by_keyword = tj.nn.Conv2D(filters=2, kernel_size=1)
    assert by_keyword(IMAGES).shape == (2, 6, 6, 2)


def _mlp(seed):
    g = tj.random.Generator(seed)  # initial values (drawn when the layers are built)
    return tj.nn.Sequential(
        [
            tj.nn.Dense(16, activation="relu", generator=g),
            tj.nn.BatchNormalization(),
            tj.nn.Dropout(0.25, generator=tj.random.Generator(100)),  # checkpointed state
            tj.nn.Dense(3, generator=g),
        ]
    )


LABELS = RNG.integers(0, 3, (6,)).astype(np.int32)


def _train_step(model, opt):
    def step(x, y):
        with tj.GradientTape() as tape:
            loss = tj.nn.sparse_softmax_cross_entropy(model(x, training=True), y)
        variables = model.trainable_variables  # after the first call: the built variables
        opt.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    return step


def test_sequential_of_lazy_layers_trains_in_a_compiled_step_as_eagerly():
    compiled_model, eager_model = _mlp(3), _mlp(3)
    compiled = tj.function(_train_step(compiled_model, tj.optim.Adam(0.01)))
    eager = _train_step(eager_model, tj.optim.Adam(0.01))
    compiled_losses = [float(compiled(X, LABELS)) for _ in range(5)]
    eager_losses = [float(eager(X, LABELS)) for _ in range(5)]
    assert compiled.trace_count == 1
    np.testing.assert_allclose(compiled_losses, eager_losses, rtol=1e-4)
    untrained = _mlp(3)
    untrained(X)
    trained_kernel = compiled_model.layers[0].kernel.numpy()
    assert not np.allclose(trained_kernel, untrained.layers[0].kernel.numpy())  # it trained
    for a, b in zip(compiled_model.variables, eager_model.variables, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-5)
    # BatchNormalization's moving statistics are variables, but not trainable ones
    bn = compiled_model.layers[1]
    assert [v.name for v in compiled_model.non_trainable_variables] == [
        f"{bn.name}/moving_mean",
        f"{bn.name}/moving_variance",
    ]
    assert all(v.trainable for v in compiled_model.trainable_variables)
    assert len(compiled_model.trainable_variables) == 6


def test_checkpoint_of_a_lazy_model_restores_into_a_fresh_lazy_model(tmp_path):
    model, opt = _mlp(4), tj.optim.Adam(0.01)
    step = tj.function(_train_step(model, opt))
    for _ in range(3):
        step(X, LABELS)
    path = tj.train.Checkpoint(model=model, optimizer=opt).save(str(tmp_path / "ckpt"))
    expected = [float(step(X, LABELS)) for _ in range(3)]  # the uninterrupted run

    fresh, fresh_opt = _mlp(99), tj.optim.Adam(0.01)  # other initial values; nothing built
    status = tj.train.Checkpoint(model=fresh, optimizer=fresh_opt).restore(path)
    assert "model/layers/0/kernel" in status.unused  # kept until the layer is built
    resumed_step = tj.function(_train_step(fresh, fresh_opt))  # builds on its first trace
    resumed = [float(resumed_step(X, LABELS)) for _ in range(3)]
    # the same losses: weights, moving statistics, dropout state AND Adam's slots were restored
    np.testing.assert_allclose(resumed, expected, rtol=1e-5)
    for a, b in zip(fresh.variables, model.variables, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)
    for a, b in zip(fresh_opt.variables, opt.variables, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)


def test_checkpoint_restore_before_an_eager_first_call(tmp_path):
    model = tj.nn.Sequential([tj.nn.Dense(4), tj.nn.LayerNormalization(), tj.nn.Dense(2)])
    model(X)
    path = tj.train.Checkpoint(model=model).save(str(tmp_path / "ckpt"))
    fresh = tj.nn.Sequential([tj.nn.Dense(4), tj.nn.LayerNormalization(), tj.nn.Dense(2)])
    tj.train.Checkpoint(model=fresh).restore(path)
    np.testing.assert_array_equal(fresh(X).numpy(), model(X).numpy())


# Normalization layers ---------------------------------------------------------------------------
def _normalized(x, axes, epsilon):
    mean = x.mean(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(x.var(axis=axes, keepdims=True) + epsilon)


def test_layer_normalization_matches_numpy():
    norm = tj.nn.LayerNormalization(gamma_initializer=tj.nn.initializers.Constant(2.0))
    eager, compiled = _both(norm, X)
    np.testing.assert_allclose(eager, 2.0 * _normalized(X, -1, 1e-3), **TOL)
    np.testing.assert_allclose(compiled, eager, **TOL)
    over_two = tj.nn.LayerNormalization(axis=(1, 2), epsilon=1e-5)
    y = over_two(IMAGES[..., 0]).numpy()
    assert over_two.gamma.shape == (6, 6)
    np.testing.assert_allclose(y, _normalized(IMAGES[..., 0], (1, 2), 1e-5), **TOL)
    bare = tj.nn.LayerNormalization(center=False, scale=False)
    bare(X)
    assert bare.variables == []


def test_rms_normalization_matches_numpy():
    norm = tj.nn.RMSNormalization()
    eager, compiled = _both(norm, X)
    expected = X / np.sqrt((X**2).mean(axis=-1, keepdims=True) + 1e-6)
    np.testing.assert_allclose(eager, expected, **TOL)
    np.testing.assert_allclose(compiled, eager, **TOL)
    assert [v.shape for v in norm.variables] == [(5,)]


def test_group_normalization_matches_numpy():
    x = RNG.standard_normal((2, 4, 4, 6)).astype(np.float32)
    norm = tj.nn.GroupNormalization(groups=3)
    eager, compiled = _both(norm, x)
    grouped = x.reshape(2, 4, 4, 3, 2)
    expected = _normalized(grouped, (1, 2, 4), 1e-3).reshape(x.shape)
    np.testing.assert_allclose(eager, expected, **TOL)
    np.testing.assert_allclose(compiled, eager, **TOL)
    with pytest.raises(ShapeError, match="6 channels .* cannot be split into 4 groups"):
        tj.nn.GroupNormalization(groups=4)(x)


def _bn_reference(batches, momentum, epsilon):
    """Keras' BatchNormalization in numpy: outputs and moving statistics after each batch."""
    moving_mean, moving_var = np.zeros(batches[0].shape[-1]), np.ones(batches[0].shape[-1])
    outputs = []
    for x in batches:
        axes = tuple(range(x.ndim - 1))
        mean, var = x.mean(axis=axes), x.var(axis=axes)
        outputs.append((x - mean) / np.sqrt(var + epsilon))
        moving_mean = moving_mean * momentum + mean * (1 - momentum)
        moving_var = moving_var * momentum + var * (1 - momentum)
    return outputs, moving_mean, moving_var


@pytest.mark.parametrize("shape", [(8, 5), (4, 3, 3, 2)], ids=["dense", "images"])
def test_batch_normalization_statistics_after_compiled_steps_match_numpy(shape):
    batches = [RNG.standard_normal(shape).astype(np.float32) * 3 + 1 for _ in range(6)]
    bn = tj.nn.BatchNormalization(momentum=0.8, epsilon=1e-3)

    @tj.function
    def train(x):
        return bn(x, training=True)

    outputs = [train(x).numpy() for x in batches]
    assert train.trace_count == 1
    expected, moving_mean, moving_var = _bn_reference(batches, 0.8, 1e-3)
    for got, want in zip(outputs, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(bn.moving_mean.numpy(), moving_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn.moving_variance.numpy(), moving_var, rtol=1e-5, atol=1e-6)
    # training=False (the default) uses the moving statistics and changes nothing
    infer = tj.function(lambda x: bn(x))
    y = infer(batches[0]).numpy()
    np.testing.assert_allclose(
        y, (batches[0] - moving_mean) / np.sqrt(moving_var + 1e-3), rtol=1e-4, atol=1e-4
    )
    np.testing.assert_allclose(bn.moving_mean.numpy(), moving_mean, rtol=1e-5, atol=1e-6)


def test_batch_normalization_eager_matches_compiled_and_trains_gamma_beta():
    eager_bn, compiled_bn = tj.nn.BatchNormalization(), tj.nn.BatchNormalization()
    for bn, run in [(eager_bn, lambda f: f), (compiled_bn, tj.function)]:
        opt = tj.optim.SGD(0.1)

        def step(x, bn=bn, opt=opt):
            with tj.GradientTape() as tape:
                loss = tj.sum(bn(x, training=True) * tj.constant(X))
            opt.apply_gradients(zip(tape.gradient(loss, bn.trainable_variables),
                                    bn.trainable_variables))  # fmt: skip
            return loss

        stepper = run(step)
        for _ in range(3):
            stepper(X)
    for a, b in zip(eager_bn.variables, compiled_bn.variables, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)
    assert not np.allclose(eager_bn.gamma.numpy(), 1.0)  # the optimizer moved gamma
    assert [v.name.split("/")[-1] for v in eager_bn.trainable_variables] == ["gamma", "beta"]


def test_batch_normalization_options():
    bn = tj.nn.BatchNormalization(axis=1, center=False, scale=False)
    x = RNG.standard_normal((4, 3, 2)).astype(np.float32)
    y = bn(x, training=True).numpy()
    np.testing.assert_allclose(y, _normalized(x, (0, 2), 1e-3), rtol=1e-4, atol=1e-5)
    assert [v.name.split("/")[-1] for v in bn.variables] == ["moving_mean", "moving_variance"]
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\]"):
        tj.nn.BatchNormalization(momentum=1.5)


# Embedding ------------------------------------------------------------------------------------
def test_embedding_looks_up_rows_and_its_gradient_scatter_adds():
    emb = tj.nn.Embedding(7, 3, mask_zero=True, generator=tj.random.Generator(5))
    ids = np.array([[1, 4, 4], [0, 6, 1]], np.int32)
    table = emb.embeddings.numpy()
    eager, compiled = _both(emb, ids)
    np.testing.assert_array_equal(eager, table[ids])
    np.testing.assert_array_equal(compiled, table[ids])
    assert np.abs(table).max() <= 0.05  # Keras' "uniform": U(-0.05, 0.05)
    weights = RNG.standard_normal((2, 3, 3)).astype(np.float32)
    with tj.GradientTape() as tape:
        loss = tj.sum(emb(ids) * weights)
    grad = tape.gradient(loss, emb.embeddings)
    expected = np.zeros((7, 3), np.float32)
    np.add.at(expected, ids, weights)
    np.testing.assert_allclose(np.asarray(grad), expected, **TOL)
    np.testing.assert_array_equal(emb.compute_mask(ids).numpy(), ids != 0)
    assert tj.nn.Embedding(3, 2).compute_mask(ids) is None
    with pytest.raises(TypeError, match="looks up integer ids, got a tensor of float32"):
        emb(np.ones((2,), np.float32))


# Shape and merge layers -------------------------------------------------------------------------
def test_reshape_and_permute_match_numpy():
    eager, compiled = _both(tj.nn.Reshape((3, -1)), IMAGES.reshape(2, -1))
    np.testing.assert_array_equal(eager, IMAGES.reshape(2, 3, -1))
    np.testing.assert_array_equal(compiled, eager)
    eager, compiled = _both(tj.nn.Permute((3, 1, 2)), IMAGES)
    np.testing.assert_array_equal(eager, IMAGES.transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(compiled, eager)
    with pytest.raises(ShapeError, match=r"cannot reshape examples of shape \(6, 6, 3\)"):
        tj.nn.Reshape((5, -1))(IMAGES)
    with pytest.raises(ValueError, match=r"dims must be a permutation of 1..2"):
        tj.nn.Permute((0, 1))
    with pytest.raises(ShapeError, match="permutes 2 non-batch axes, got an input of rank 4"):
        tj.nn.Permute((2, 1))(IMAGES)


def test_merge_layers_match_numpy():
    a, b, c = (RNG.standard_normal((3, 4)).astype(np.float32) for _ in range(3))
    cases = [
        (tj.nn.Add(), [a, b, c], a + b + c),
        (tj.nn.Subtract(), [a, b], a - b),
        (tj.nn.Multiply(), [a, b, c], a * b * c),
        (tj.nn.Average(), [a, b, c], (a + b + c) / 3),
        (tj.nn.Maximum(), [a, b, c], np.maximum(np.maximum(a, b), c)),
        (tj.nn.Minimum(), [a, b], np.minimum(a, b)),
        (tj.nn.Concatenate(), [a, b], np.concatenate([a, b], -1)),
        (tj.nn.Concatenate(axis=0), [a, b, c], np.concatenate([a, b, c], 0)),
    ]
    for layer, inputs, expected in cases:
        np.testing.assert_allclose(layer(inputs).numpy(), expected, **TOL)
        compiled = tj.function(lambda xs, layer=layer: layer(xs))(inputs)
        np.testing.assert_allclose(compiled.numpy(), expected, **TOL)
    with pytest.raises(ValueError, match="Add 'add.*' is called on a list of at least 2 tensors"):
        tj.nn.Add()(a)
    with pytest.raises(ValueError, match="takes exactly 2 tensors, got 3"):
        tj.nn.Subtract()([a, b, c])


def test_global_pooling_matches_numpy():
    steps = RNG.standard_normal((2, 5, 3)).astype(np.float32)
    cases = [
        (tj.nn.GlobalAveragePooling1D(), steps, steps.mean(axis=1)),
        (tj.nn.GlobalMaxPooling1D(), steps, steps.max(axis=1)),
        (tj.nn.GlobalAveragePooling2D(), IMAGES, IMAGES.mean(axis=(1, 2))),
        (tj.nn.GlobalMaxPooling2D(keepdims=True), IMAGES, IMAGES.max(axis=(1, 2), keepdims=True)),
    ]
    for layer, x, expected in cases:
        eager, compiled = _both(layer, x)
        np.testing.assert_allclose(eager, expected, **TOL)
        np.testing.assert_allclose(compiled, expected, **TOL)
    with pytest.raises(ShapeError, match="expects inputs of rank 4 .* got rank 3"):
        tj.nn.GlobalMaxPooling2D()(steps)


def test_activation_layer():
    eager, compiled = _both(tj.nn.Activation("relu"), X)
    np.testing.assert_array_equal(eager, np.maximum(X, 0))
    np.testing.assert_array_equal(compiled, eager)
    np.testing.assert_array_equal(np.asarray(tj.nn.Activation("linear")(X)), X)
    np.testing.assert_allclose(tj.nn.Activation(tj.tanh)(X).numpy(), np.tanh(X), **TOL)
    with pytest.raises(ValueError, match="unknown activation 'rleu'"):
        tj.nn.Activation("rleu")


@pytest.mark.parametrize(
    "layer_type, shape",
    [(tj.nn.SpatialDropout1D, (4, 6, 5)), (tj.nn.SpatialDropout2D, (4, 3, 3, 5))],
)
def test_spatial_dropout_drops_whole_channels(layer_type, shape):
    drop = layer_type(0.5, generator=tj.random.Generator(6))
    x = np.ones(shape, np.float32)
    y = drop(x, training=True).numpy()
    spatial = tuple(range(1, len(shape) - 1))
    per_channel = y.reshape(shape[0], -1, shape[-1])
    assert set(np.unique(y)) <= {0.0, 2.0}  # kept ones are scaled by 1 / (1 - rate)
    assert (per_channel == per_channel[:, :1]).all()  # one draw per example and channel
    assert 0.2 < (y.max(axis=spatial) == 0).mean() < 0.8
    np.testing.assert_array_equal(np.asarray(drop(x)), x)  # identity when not training
    compiled = tj.function(lambda x: drop(x, training=True))
    first, second = compiled(x).numpy(), compiled(x).numpy()
    assert not np.array_equal(first, second)  # a new mask each compiled call
    with pytest.raises(ValueError, match="expects inputs with"):
        drop(np.ones((2, 2), np.float32), training=True)


# summary ------------------------------------------------------------------------------------------
def test_summary_lists_layers_output_shapes_and_parameter_counts():
    model = tj.nn.Sequential(
        [
            tj.nn.Conv2D(8, 3, activation="relu", name="conv"),
            tj.nn.BatchNormalization(name="bn"),
            tj.nn.MaxPool2D(name="pool"),
            tj.nn.Flatten(name="flat"),
            tj.nn.Dense(10, name="logits"),
        ],
        name="cnn",
    )
    with pytest.raises(ValueError, match="cnn.summary\\(\\): conv, bn, .* not built yet"):
        model.summary()
    model(IMAGES)
    lines = []
    model.summary(print_fn=lines.append)
    assert lines[0] == "\n".join(
        [
            'Model: "cnn"',
            "_" * 51,
            " Layer (type)             Output Shape     Param #",
            "=" * 51,
            " conv (Conv2D)            (None, 6, 6, 8)  224",  # 3 * 3 * 3 * 8 + 8
            " bn (BatchNormalization)  (None, 6, 6, 8)  32",  # gamma, beta, 2 moving stats
            " pool (MaxPool2D)         (None, 3, 3, 8)  0",
            " flat (Flatten)           (None, 72)       0",
            " logits (Dense)           (None, 10)       730",  # 72 * 10 + 10
            "=" * 51,
            "Total params: 986",
            "Trainable params: 970",
            "Non-trainable params: 16",
            "_" * 51,
        ]
    )


def test_summary_of_a_module_lists_its_attribute_layers():
    class Net(tj.Module):
        def __init__(self):
            super().__init__(name="net")
            self.body = tj.nn.Dense(4, name="body")
            self.head = tj.nn.Dense(1, name="head")
            self.scale = tj.Variable(1.0, trainable=False)

        def __call__(self, x):
            return self.head(self.body(x)) * self.scale

    net = Net()
    net(X)
    lines = []
    net.summary(print_fn=lines.append)
    text = lines[0]
    assert " body (Dense)  (None, 4)     24\n head (Dense)  (None, 1)     5\n" in text
    assert text.endswith(
        "Total params: 30\nTrainable params: 29\nNon-trainable params: 1\n" + "_" * 37
    )
