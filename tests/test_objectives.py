"""Objectives: what they compute on each kind of layer, their algebra, and their errors."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from xplique_maco import Channel, Custom, Direction, History, Layer, Neuron, evaluate, maco
from xplique_maco._engine import trace_count
from xplique_maco._model import feature_model


def activations(model, layer, inputs):
    return keras.Model(model.inputs[0], model.get_layer(layer).output)(inputs).numpy()


@pytest.fixture(scope="module")
def inputs():
    return np.random.default_rng(0).uniform(size=(3, 32, 32, 3)).astype("float32")


def test_neuron_on_dense_output_is_the_unit(model, inputs):
    logits = activations(model, "logits", inputs)
    values = evaluate(Neuron(model, "logits", [4, 7, 9]), inputs)
    np.testing.assert_allclose(values, logits[[0, 1, 2], [4, 7, 9]], rtol=1e-5)


def test_neuron_on_conv_output_defaults_to_the_centre(model, inputs):
    conv = activations(model, "conv2", inputs)  # (3, 15, 15, 16)
    values = evaluate(Neuron(model, "conv2", [0, 5, 6]), inputs)
    np.testing.assert_allclose(values, conv[[0, 1, 2], 7, 7, [0, 5, 6]], rtol=1e-5)
    values = evaluate(Neuron(model, "conv2", 5, position=(2, 11)), inputs[:1])
    np.testing.assert_allclose(values, conv[0, 2, 11, 5], rtol=1e-5)


def test_channel_averages_over_positions(model, tokens, inputs):
    conv = activations(model, "conv1", inputs)
    np.testing.assert_allclose(
        evaluate(Channel(model, "conv1", [1, 2, 3]), inputs),
        conv.mean(axis=(1, 2))[[0, 1, 2], [1, 2, 3]],
        rtol=1e-5,
    )
    mlp = activations(tokens, "mlp", inputs)  # (3, 16, 12)
    np.testing.assert_allclose(
        evaluate(Channel(tokens, "mlp", [0, 4, 11]), inputs),
        mlp.mean(axis=1)[[0, 1, 2], [0, 4, 11]],
        rtol=1e-5,
    )


def test_neuron_on_tokens_takes_one_token(tokens, inputs):
    mlp = activations(tokens, "mlp", inputs)
    np.testing.assert_allclose(
        evaluate(Neuron(tokens, "mlp", 3, position=0), inputs[:1]), mlp[0, 0, 3], rtol=1e-5
    )
    np.testing.assert_allclose(evaluate(Neuron(tokens, "mlp", 3), inputs[:1]), mlp[0, 8, 3], rtol=1e-5)


def test_layer_is_the_mean_squared_activation(model, tokens, inputs):
    conv = activations(model, "conv2", inputs[:1])
    np.testing.assert_allclose(evaluate(Layer(model, "conv2"), inputs[:1]), (conv**2).mean(), rtol=1e-5)
    mlp = activations(tokens, "mlp", inputs[:1])
    np.testing.assert_allclose(evaluate(Layer(tokens, "mlp"), inputs[:1]), (mlp**2).mean(), rtol=1e-5)


def test_direction_is_dot_weighted_by_cosine(model, tokens, inputs):
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(2, 16))
    conv = activations(model, "conv2", inputs[:2])
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    dot = np.einsum("nhwc,nc->nhw", conv, unit)
    cosine = dot / (np.linalg.norm(conv, axis=-1) + 1e-6)
    expected = (dot * np.clip(cosine, 0.1, 1) ** 2).mean(axis=(1, 2))
    np.testing.assert_allclose(evaluate(Direction(model, "conv2", vectors), inputs[:2]), expected, rtol=1e-4)
    logits = activations(tokens, "logits", inputs[:1])
    plain = evaluate(Direction(tokens, "logits", np.ones(5), cossim_power=0), inputs[:1])
    np.testing.assert_allclose(plain, logits.sum() / np.sqrt(5), rtol=1e-5)


def test_sum_computes_the_sum(model, inputs):
    a = Channel(model, "conv1", 2)
    b = Neuron(model, "logits", 3)
    np.testing.assert_allclose(
        evaluate(a + 2 * b, inputs[:1]), evaluate(a, inputs[:1]) + 2 * evaluate(b, inputs[:1]), rtol=1e-5
    )
    np.testing.assert_allclose(
        evaluate(a - b / 4, inputs[:1]), evaluate(a, inputs[:1]) - evaluate(b, inputs[:1]) / 4, rtol=1e-5
    )
    np.testing.assert_allclose(evaluate(-a, inputs[:1]), -evaluate(a, inputs[:1]), rtol=1e-5)
    np.testing.assert_allclose(
        evaluate(sum([a, b, a]), inputs[:1]), 2 * evaluate(a, inputs[:1]) + evaluate(b, inputs[:1]), rtol=1e-5
    )


def test_batch_of_one_broadcasts_against_a_batch(model, inputs):
    batch = Neuron(model, "logits", [1, 2, 3])
    single = 0.5 * Layer(model, "conv2")
    combined = batch + single
    assert combined.batch_size == 3
    np.testing.assert_allclose(
        evaluate(combined, inputs),
        evaluate(batch, inputs) + 0.5 * (activations(model, "conv2", inputs) ** 2).mean(axis=(1, 2, 3)),
        rtol=1e-5,
    )


def test_repr_composes(model):
    objective = Channel(model, "conv2", 12) + 0.5 * Layer(model, "conv1") - Neuron(model, -1, [1, 2])
    assert repr(objective) == "Channel(conv2, 12) + 0.5 * Layer(conv1) - Neuron(logits, [1, 2])"
    assert repr(-Layer(model, "conv1") / 2) == "-0.5 * Layer(conv1)"


def test_layers_found_by_index(model):
    assert Neuron(model, -1, 0).layer_names == ("logits",)
    assert Layer(model, 1).layer_names == ("conv1",)  # index 0 is the InputLayer of a functional model


def test_one_feature_model_outputs_each_layer_once(model):
    objective = Channel(model, "conv2", 1) + Channel(model, "conv2", 3) + Neuron(model, "logits", 2)
    assert objective.layer_names == ("conv2", "logits")
    extractor = feature_model(model, objective.taps)
    assert len(extractor.outputs) == 2
    assert feature_model(model, objective.taps) is extractor


@pytest.mark.parametrize(
    "build, error, message",
    [
        (
            lambda m: Channel(m, "conv3", 1),
            ValueError,
            "Layer 'conv3' not found in model 'tiny_cnn'. Did you mean 'conv2' or 'conv1'",
        ),
        (
            lambda m: Channel(m, 7, 1),
            ValueError,
            "Layer index 7 is out of range for model 'tiny_cnn' with 5 layers",
        ),
        (
            lambda m: Channel(m, 2.0, 1),
            TypeError,
            "`layer` must be a layer name or path (str), an index (int), a keras layer or a symbolic tensor",
        ),
        (
            lambda m: Channel(m, "conv2", 16),
            ValueError,
            "Index [16] out of range for layer 'conv2' with 16 units (accepted: 0 to 15)",
        ),
        (lambda m: Neuron(m, "logits", [1, -1]), ValueError, "Index [-1] out of range"),
        (lambda m: Neuron(m, "logits", []), ValueError, "`index` must be an int or a non-empty list of ints"),
        (lambda m: Neuron(m, "logits", 1.5), ValueError, "`index` must be an int"),
        (lambda m: Neuron(m, "logits", 1, position=(0, 0)), ValueError, "it has no positions"),
        (
            lambda m: Neuron(m, "conv2", 1, position=(15, 0)),
            ValueError,
            "Position (15, 0) is outside layer 'conv2'",
        ),
        (lambda m: Neuron(m, "conv2", 1, position=3), ValueError, "must be a (row, column) pair"),
        (
            lambda m: Direction(m, "conv2", np.ones(8)),
            ValueError,
            "must have shape (16,) or (N, 16); received shape (8,)",
        ),
        (lambda m: Direction(m, "conv2", np.zeros(16)), ValueError, "must be non-zero"),
        (lambda m: Direction(m, "conv2", np.full(16, np.nan)), ValueError, "must be finite"),
        (
            lambda m: Neuron(m, "logits", [1, 2]) + Neuron(m, "logits", [1, 2, 3]),
            ValueError,
            "Cannot combine objectives with batch sizes 2 and 3",
        ),
        (lambda m: Neuron(m, "logits", 1) * Neuron(m, "logits", 1), TypeError, "multiplied by a scalar only"),
        (lambda m: Neuron(m, "logits", 1) / 0, ZeroDivisionError, "Cannot divide an objective by zero"),
        (lambda m: Neuron("not a model", "logits", 1), TypeError, "Expected a keras.Model, received str"),
    ],
)
def test_errors_name_the_problem(model, build, error, message):
    with pytest.raises(error) as raised:
        build(model)
    assert message in str(raised.value)


def test_objectives_on_different_models_do_not_mix(model, other_model):
    with pytest.raises(ValueError, match="different models"):
        Neuron(model, "logits", 1) + Neuron(other_model, "logits", 1)


def test_unsupported_output_rank_is_refused():
    inputs = keras.Input((8, 8, 3))
    volume = keras.layers.Reshape((2, 4, 8, 3), name="volume")(inputs)
    model = keras.Model(inputs, volume)
    with pytest.raises(
        ValueError, match=r"outputs shape \(None, 2, 4, 8, 3\) \(rank 5\), which is not supported"
    ):
        Layer(model, "volume")


def test_a_direction_pointing_away_from_the_activations_still_climbs():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    flat = keras.layers.Flatten(name="flat")(keras.layers.Conv2D(4, 5, strides=4)(inputs))
    model = keras.Model(inputs, flat)  # signed features, as concept vectors or logits give
    vector = np.random.default_rng(0).uniform(0.0, 1.0, 36)
    objective = Direction(model, "flat", vector)

    def cosine(image):
        activation = model(image[None]).numpy()[0]
        return activation @ vector / np.linalg.norm(activation) / np.linalg.norm(vector)

    settings = dict(image_shape=(16, 16), nb_crops=4, crop_size=(0.9, 1.0), seed=0, verbose=0)
    start, _ = maco(objective, nb_steps=1, learning_rate=1e-9, **settings)  # the initial image
    end, _ = maco(objective, nb_steps=64, **settings)
    assert cosine(start.numpy()[0]) < -0.3  # pointing away at the start
    assert cosine(end.numpy()[0]) > cosine(start.numpy()[0]) + 0.3


def mean_channel(activation, index):
    """A user's own objective: the mean of one channel per crop, as Channel computes it."""
    return tf.gather(tf.reduce_mean(activation, axis=(1, 2)), index, axis=1, batch_dims=1)


def centre_of(activation, logits, weight):
    """Two layers at once: the centre of channel 0 plus a weighted logit."""
    centre = activation[:, activation.shape[1] // 2, activation.shape[2] // 2, 0]
    return centre + tf.reduce_sum(logits * weight, axis=-1)


def test_a_custom_objective_computes_what_its_function_says_and_composes(model, inputs):
    custom = Custom(model, "conv2", mean_channel, index=[3, 5])
    assert repr(custom) == "Custom(mean_channel, conv2)" and custom.batch_size == 2
    np.testing.assert_allclose(
        evaluate(custom, inputs[:2]), evaluate(Channel(model, "conv2", [3, 5]), inputs[:2]), rtol=1e-5
    )
    combined = custom - 0.5 * Layer(model, "conv1")
    assert repr(combined) == "Custom(mean_channel, conv2) - 0.5 * Layer(conv1)"
    layer = np.concatenate([evaluate(Layer(model, "conv1"), inputs[i : i + 1]) for i in (0, 1)])
    expected = evaluate(custom, inputs[:2]) - 0.5 * layer  # the batch of 1 is broadcast
    np.testing.assert_allclose(evaluate(combined, inputs[:2]), expected, rtol=1e-5)
    weights = np.eye(10, dtype=np.float32)[[1, 2]]
    two_layers = Custom(model, ["conv2", "logits"], centre_of, weight=weights)
    conv = activations(model, "conv2", inputs[:2])
    logits = activations(model, "logits", inputs[:2])
    h, w = conv.shape[1] // 2, conv.shape[2] // 2
    np.testing.assert_allclose(
        evaluate(two_layers, inputs[:2]), conv[:, h, w, 0] + logits[[0, 1], [1, 2]], rtol=1e-5
    )


def test_a_custom_objective_rises_and_new_arguments_do_not_retrace(model):
    settings = dict(nb_steps=8, image_shape=(32, 32), nb_crops=2, seed=0, verbose=0)
    history = History()
    maco(Custom(model, "conv2", mean_channel, index=[3, 5]), callbacks=[history], **settings)
    assert (history.values[-3:].mean(axis=0) > history.values[:3].mean(axis=0)).all()
    traced = trace_count()
    maco(Custom(model, "conv2", mean_channel, index=[7, 1]), **settings)
    assert trace_count() == traced
    assert Custom(model, "conv2", mean_channel, index=[1]).fixed_layout is None
    positional = Custom(model, "conv2", mean_channel, positional=True, index=[1])
    assert positional.fixed_layout == "Custom(mean_channel, conv2) is positional"


@pytest.mark.parametrize(
    "build, error, message",
    [
        (lambda m: Custom(m, "conv2", "not a function"), TypeError, "`function` must be callable"),
        (lambda m: Custom(m, [], mean_channel), ValueError, "`layers` is empty"),
        (lambda m: Custom(m, ["conv2", "conv2"], mean_channel), ValueError, "names a layer twice"),
        (
            lambda m: Custom(m, "conv2", mean_channel, index=[1, 2], other=[1, 2, 3]),
            ValueError,
            "same number of rows",
        ),
        (lambda m: Custom(m, "conv2", mean_channel, index=3), ValueError, "one row per image"),
        (lambda m: Custom(m, "conv2", mean_channel, index=["a"]), ValueError, "must hold numbers"),
        (lambda m: Custom(m, "conv2", mean_channel, positional="yes", index=[1]), TypeError, "`positional`"),
    ],
)
def test_custom_objective_errors_name_the_problem(model, build, error, message):
    with pytest.raises(error, match=message):
        build(model)


def test_a_custom_function_that_fails_or_returns_a_map_is_refused_before_optimising(model):
    def per_position(activation):
        return activation[..., 0]  # (B, H, W): not one value per crop

    def broken(activation):
        raise RuntimeError("no such unit")

    settings = dict(nb_steps=1, image_shape=(32, 32), nb_crops=1, verbose=0)
    with pytest.raises(ValueError, match=r"must return one value per crop, shape \(B,\).*\(2, \d+, \d+\)"):
        maco(Custom(model, "conv2", per_position), **settings)
    with pytest.raises(
        ValueError, match="Custom.broken, conv2. fails on a batch of 2 crops.*RuntimeError: no such unit"
    ):
        maco(Custom(model, "conv2", broken), **settings)
