"""The kinds of objectives: what Neuron, Channel, Layer, Direction, Inversion and Custom compute and check,
and that every kind keeps the `Kind` protocol."""

import importlib
import pkgutil

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import (
    ONE_STEP,
    RISE,
    activations,
    assert_implements,
    assert_refused,
    at_input_size,
    fully_convolutional,
)

from xplique_maco import Channel, Custom, Direction, History, Inversion, Layer, Neuron, evaluate, maco
from xplique_maco._objectives import kinds as kinds_package
from xplique_maco._objectives.objective import Kind, Objective
from xplique_maco._rendering.step import trace_count

# ---- Neuron, Channel, Layer, Direction ----


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


def test_huge_direction_vectors_do_not_overflow(model):
    objective = Direction(model, "conv2", np.full(16, 1e30))
    np.testing.assert_allclose(np.linalg.norm(objective.arguments()[0]["vector"]), 1.0, rtol=1e-6)


def test_tokens_and_directions(tokens):
    objective = Direction(tokens, "mlp", np.eye(12)[[0, 5]]) + 0.5 * Channel(tokens, "mlp", 2)
    start, _ = maco(objective, nb_steps=1, seed=0, **RISE)
    end, _ = maco(objective, nb_steps=30, seed=0, **RISE)
    assert (evaluate(objective, at_input_size(end)) > evaluate(objective, at_input_size(start))).all()


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


# ---- Inversion ----


def photo_like(seed: int, size: int = 32) -> np.ndarray:
    """A smooth random image in [0, 1]: blobs, so a conv layer has structure to keep."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(size=(4, 4, 3))
    return np.kron(coarse, np.ones((size // 4, size // 4, 1))).astype("float32")


def cosine_of_activations(model, layer, first, second):
    a, b = (activations(model, layer, x[None]).ravel() for x in (first, second))
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_inversion_value_is_the_cosine_similarity(model):
    first, second = photo_like(0), photo_like(1)
    objective = Inversion(model, "conv2", first)
    np.testing.assert_allclose(evaluate(objective, first[None]), 1.0, atol=1e-5)
    np.testing.assert_allclose(
        evaluate(objective, second[None]), cosine_of_activations(model, "conv2", first, second), rtol=1e-4
    )


def test_inversion_rendering_approaches_each_reference(model):
    references = np.stack([photo_like(0), photo_like(1)])
    objective = Inversion(model, "conv2", references)
    assert objective.batch_size == 2 and "2 images" in repr(objective)
    images, _ = maco(objective, nb_steps=48, image_shape=(32, 32), nb_crops=2, crop_size=(0.9, 1.0), seed=0)
    images = images.numpy()
    start, _ = maco(objective, nb_steps=1, image_shape=(32, 32), nb_crops=2, learning_rate=1e-9, seed=0)
    for item, other in ((0, 1), (1, 0)):
        reached = cosine_of_activations(model, "conv2", images[item], references[item])
        assert reached > cosine_of_activations(model, "conv2", start.numpy()[item], references[item]) + 0.05
        assert reached > cosine_of_activations(model, "conv2", images[item], references[other])


def test_inversion_combines_with_other_objectives_and_items_keep_their_reference(model):
    references = np.stack([photo_like(0), photo_like(1), photo_like(2)])
    objective = Inversion(model, "conv2", references) + 0.1 * Channel(model, "conv1", 2)
    settings = dict(nb_steps=3, image_shape=(32, 32), nb_crops=2, seed=4)
    whole, _ = maco(objective, **settings)
    part, _ = maco(objective, items=[2], **settings)
    np.testing.assert_allclose(part.numpy()[0], whole.numpy()[2], atol=1e-5)
    traced = trace_count()
    maco(Inversion(model, "conv2", photo_like(5)) + 0.1 * Channel(model, "conv1", 2), items=[0], **settings)
    assert trace_count() == traced  # another reference is another tensor, not another graph


def test_inversion_of_an_all_zero_activation_is_refused():
    inputs = keras.Input((8, 8, 3))
    outputs = keras.layers.Conv2D(4, 3, use_bias=False, activation="relu", name="conv")(inputs)
    model = keras.Model(inputs, outputs)
    with pytest.raises(ValueError, match="nothing to invert"):
        Inversion(model, "conv", np.zeros((8, 8, 3), "float32"))


def test_inversion_reference_size_must_match_the_crops_of_a_fully_convolutional_model():
    inputs = keras.Input((None, None, 3))
    outputs = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    model = keras.Model(inputs, outputs)
    objective = Inversion(model, "conv", photo_like(0, size=48))
    traced = trace_count()
    with pytest.raises(ValueError, match="set `model_input_size`"):
        maco(objective, nb_steps=2, image_shape=(64, 64), model_input_size=(32, 32))
    assert trace_count() == traced
    images, _ = maco(objective, nb_steps=2, image_shape=(48, 48), model_input_size=(48, 48), nb_crops=2)
    assert images.shape == (1, 48, 48, 3)


# ---- Custom ----


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
    # Channels 2 and 13 climb whatever the random stream (channel 3 is off for some starting images).
    maco(Custom(model, "conv2", mean_channel, index=[2, 13]), callbacks=[history], **settings)
    assert (history.values[-3:].mean(axis=0) > history.values[:3].mean(axis=0)).all()
    traced = trace_count()
    maco(Custom(model, "conv2", mean_channel, index=[7, 1]), **settings)
    assert trace_count() == traced
    assert Custom(model, "conv2", mean_channel, index=[1]).fixed_layout is None
    positional = Custom(model, "conv2", mean_channel, positional=True, index=[1])
    assert positional.fixed_layout == "Custom(mean_channel, conv2) is positional"


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


# ---- the bad-input table ----


def inversion_of(image):
    return lambda m: Inversion(m, "conv2", image)


# (bad call on the tiny classifier, error type, words the message must contain)
ERRORS = [
    pytest.param(lambda m: Neuron(m, "logits", 10**9), ValueError, "accepted: 0 to 9", id="index too large"),
    pytest.param(lambda m: Channel(m, "conv1", -1), ValueError, "accepted: 0 to 7", id="negative index"),
    pytest.param(
        lambda m: Channel(m, "conv2", 16),
        ValueError,
        "Index [16] out of range for layer 'conv2' with 16 units (accepted: 0 to 15)",
        id="channel 16 of 16",
    ),
    pytest.param(
        lambda m: Neuron(m, "logits", [1, -1]), ValueError, "Index [-1] out of range", id="-1 in a list"
    ),
    pytest.param(
        lambda m: Neuron(m, "logits", []), ValueError, "non-empty list of ints", id="empty index list"
    ),
    pytest.param(
        lambda m: Neuron(m, "logits", []),
        ValueError,
        "`index` must be an int or a non-empty list of ints",
        id="empty index list, whole message",
    ),
    pytest.param(lambda m: Channel(m, "conv1", 1.0), ValueError, "`index` must be an int", id="float index"),
    pytest.param(lambda m: Neuron(m, "logits", 1.5), ValueError, "`index` must be an int", id="index 1.5"),
    pytest.param(
        lambda m: Neuron(m, "logits", 1, position=(0, 0)),
        ValueError,
        "it has no positions",
        id="position on a dense layer",
    ),
    pytest.param(
        lambda m: Neuron(m, "conv2", 1, position=(15, 0)),
        ValueError,
        "Position (15, 0) is outside layer 'conv2'",
        id="position outside",
    ),
    pytest.param(
        lambda m: maco(
            Neuron(fully_convolutional(), "conv", 0, position=(40, 0)), model_input_size=(16, 16), **ONE_STEP
        ),
        ValueError,
        "Position (40, 0) is outside layer 'conv', whose positions span (14, 14)",
        id="position outside at the crop size",
    ),
    pytest.param(
        lambda m: Neuron(m, "conv2", 1, position=3),
        ValueError,
        "must be a (row, column) pair",
        id="position not a pair",
    ),
    pytest.param(
        lambda m: Direction(m, "conv2", np.full(16, np.nan)), ValueError, "must be finite", id="NaN direction"
    ),
    pytest.param(
        lambda m: Direction(m, "conv2", np.full(16, np.inf)), ValueError, "must be finite", id="inf direction"
    ),
    pytest.param(
        lambda m: Direction(m, "conv2", ["a"] * 16), ValueError, "must be numbers", id="direction of strings"
    ),
    pytest.param(
        lambda m: Direction(m, "conv2", np.ones(3)),
        ValueError,
        "must have shape (16,)",
        id="wrong direction length",
    ),
    pytest.param(
        lambda m: Direction(m, "conv2", np.ones(8)),
        ValueError,
        "must have shape (16,) or (N, 16); received shape (8,)",
        id="direction of 8",
    ),
    pytest.param(
        lambda m: Direction(m, "conv2", np.ones((2, 2, 16))), ValueError, "(N, 16)", id="3-D directions"
    ),
    pytest.param(
        lambda m: Direction(m, "conv2", np.zeros(16)), ValueError, "must be non-zero", id="zero direction"
    ),
    pytest.param(
        lambda m: Direction(m, "conv2", np.ones(16), cossim_power=float("nan")),
        ValueError,
        "finite number >= 0",
        id="NaN cossim_power",
    ),
    pytest.param(
        inversion_of(np.zeros((32, 32, 1), "float32")),
        ValueError,
        "must have shape (32, 32, 3)",
        id="grey reference",
    ),
    pytest.param(
        inversion_of(np.zeros((2, 16, 16, 3), "float32")),
        ValueError,
        "received shape (2, 16, 16, 3)",
        id="references of another size",
    ),
    pytest.param(
        inversion_of(np.zeros((32, 3), "float32")), ValueError, "must have shape", id="reference of rank 2"
    ),
    pytest.param(
        inversion_of(np.full((32, 32, 3), np.nan, "float32")), ValueError, "finite", id="NaN reference"
    ),
    pytest.param(inversion_of("photo.png"), ValueError, "array of numbers", id="reference file name"),
    pytest.param(
        lambda m: Custom(m, "conv2", "not a function"),
        TypeError,
        "`function` must be callable",
        id="custom function not callable",
    ),
    pytest.param(
        lambda m: Custom(m, [], mean_channel), ValueError, "`layers` is empty", id="custom no layer"
    ),
    pytest.param(
        lambda m: Custom(m, ["conv2", "conv2"], mean_channel),
        ValueError,
        "names a layer twice",
        id="custom layer twice",
    ),
    pytest.param(
        lambda m: Custom(m, "conv2", mean_channel, index=[1, 2], other=[1, 2, 3]),
        ValueError,
        "same number of rows",
        id="custom arguments of other lengths",
    ),
    pytest.param(
        lambda m: Custom(m, "conv2", mean_channel, index=3),
        ValueError,
        "one row per image",
        id="custom scalar argument",
    ),
    pytest.param(
        lambda m: Custom(m, "conv2", mean_channel, index=["a"]),
        ValueError,
        "must hold numbers",
        id="custom argument of strings",
    ),
    pytest.param(
        lambda m: Custom(m, "conv2", mean_channel, positional="yes", index=[1]),
        TypeError,
        "`positional`",
        id="custom positional 'yes'",
    ),
]


@pytest.mark.parametrize("call, error, message", ERRORS)
def test_bad_input_gets_a_clear_error_before_any_computation(model, call, error, message):
    assert_refused(lambda: call(model), error, message)


def test_every_kind_reduces_its_own_terms_as_the_protocol_says():
    # Every Objective subclass in _objectives/kinds/ is a kind: it has its own `reduce` (the one
    # member Objective cannot default) and the members of `Kind` by their protocol's names.
    kinds = [
        member
        for module in pkgutil.iter_modules(kinds_package.__path__)
        for member in vars(importlib.import_module(f"{kinds_package.__name__}.{module.name}")).values()
        if isinstance(member, type) and issubclass(member, Objective) and member is not Objective
    ]
    assert {kind.__name__ for kind in kinds} >= {
        "Neuron",
        "Channel",
        "Layer",
        "Direction",
        "Inversion",
        "Custom",
        "Diversity",
    }
    for kind in kinds:
        assert vars(kind).get("reduce") is not None, f"{kind.__name__} does not define reduce"
        assert_implements(kind, Kind)
