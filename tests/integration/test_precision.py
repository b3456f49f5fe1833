"""Mixed precision: models computing in bfloat16 (or float16) render float32 images that climb."""

import contextlib

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import RISE, at_input_size, conv_classifier

from xplique_maco import Channel, Direction, History, Layer, Neuron, evaluate, maco, metrics
from xplique_maco._objectives.extractor import computes_in_float16, feature_model
from xplique_maco.metrics import spectrum_statistics

BFLOAT16 = "mixed_bfloat16"


@pytest.fixture(autouse=True)
def float32_afterwards():
    """A policy left set would build every later test's models in it."""
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy("float32")


@contextlib.contextmanager
def policy(name: str):
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy("float32")


def built_under(name: str, build, weights_of: keras.Model | None = None) -> keras.Model:
    """`build()` under the policy `name`, with the weights of `weights_of` if given; checked to
    compute in the policy, so the tests really exercise it."""
    with policy(name):
        model = build()
    if weights_of is not None:
        model.set_weights(weights_of.get_weights())
    compute = keras.mixed_precision.Policy(name).compute_dtype
    assert all(layer.compute_dtype == compute for layer in model.layers[1:]), name
    assert all(variable.dtype == "float32" for variable in model.weights)
    return model


@pytest.fixture(scope="module")
def pair():
    """The tiny classifier in float32 and in mixed_bfloat16, with the same weights."""
    reference = conv_classifier()
    return reference, built_under(BFLOAT16, conv_classifier, weights_of=reference)


OBJECTIVES = {
    "neuron": (lambda m: Neuron(m, "logits", [2, 6]), None),
    # Channels that climb by a quarter in 20 steps whatever the seed (channel 5, used before,
    # starts close to its highest value and climbs 2 to 20% depending on the random stream).
    "channel": (lambda m: Channel(m, "conv2", [2, 13]), None),
    "layer": (lambda m: Layer(m, "conv1"), None),
    "direction": (lambda m: Direction(m, "conv2", [np.cos(np.arange(16)), np.sin(np.arange(16))]), None),
    # Two model passes of two crops each, whose gradients add up.
    "combination in passes": (
        lambda m: Channel(m, "conv2", 5) + 0.5 * Layer(m, "conv1") - 0.2 * Direction(m, "conv2", np.ones(16)),
        2,
    ),
}


def _checked_run(objective, crops_per_pass, steps: int = 20):
    history = History()
    images, transparencies = maco(
        objective,
        nb_steps=steps,
        seed=0,
        verbose=0,
        callbacks=[history],
        crops_per_pass=crops_per_pass,
        **RISE,
    )
    assert images.dtype == tf.float32 and transparencies.dtype == tf.float32
    assert np.isfinite(images.numpy()).all() and np.isfinite(transparencies.numpy()).all()
    assert float(tf.reduce_min(images)) >= 0.0 and float(tf.reduce_max(images)) <= 1.0
    assert float(tf.reduce_min(transparencies)) >= 0.0 and float(tf.reduce_max(transparencies)) > 0.0
    assert history.values.dtype == np.float64 and np.isfinite(history.values).all()
    return images, history.values


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_bfloat16_model_renders_float32_images_that_climb_as_far_as_float32(pair, name):
    reference, model = pair
    make, crops_per_pass = OBJECTIVES[name]
    with policy(BFLOAT16):  # as users run it: the policy still set
        images, values = _checked_run(make(model), crops_per_pass)
        assert keras.mixed_precision.global_policy().name == BFLOAT16
    _, reference_values = _checked_run(make(reference), crops_per_pass)

    first, last = values[:3].mean(axis=0), values[-5:].mean(axis=0)
    reference_first, reference_last = reference_values[:3].mean(axis=0), reference_values[-5:].mean(axis=0)
    assert (last > first + 0.1 * np.abs(first)).all(), (first, last)
    # The same weights, seed, crops and noise: the runs start from the same image, so their first
    # values differ by bfloat16's rounding (8 bits of mantissa, 0.4%) through two convolutions.
    # Nadam then normalises each phase's gradient, so rounding sends the runs on different paths:
    # they are only asked to climb comparably: here 0.98 to 1.01 times as far, asked 0.75.
    scale = np.abs(reference_values).max(axis=0)
    assert (np.abs(values[0] - reference_values[0]) <= 0.03 * scale).all(), (values[0], reference_values[0])
    assert (last - first >= 0.75 * (reference_last - reference_first)).all(), (
        (first, last),
        (reference_first, reference_last),
    )
    # The whole image, which the run never showed the model whole, scores higher than the start.
    start, _ = maco(make(model), nb_steps=1, seed=0, verbose=0, crops_per_pass=crops_per_pass, **RISE)
    before, after = (evaluate(make(reference), at_input_size(x)) for x in (start, images))
    assert (after > before).all(), (before, after)


def test_bfloat16_same_seed_same_image(pair):
    _, model = pair
    objective = Channel(model, "conv2", [1, 5]) + 0.5 * Layer(model, "conv1")
    with policy(BFLOAT16):
        first, first_mask = maco(objective, nb_steps=5, seed=11, verbose=0, **RISE)
        again, again_mask = maco(objective, nb_steps=5, seed=11, verbose=0, **RISE)
    np.testing.assert_array_equal(first.numpy(), again.numpy())
    np.testing.assert_array_equal(first_mask.numpy(), again_mask.numpy())


def test_bfloat16_keeps_the_natural_magnitude(pair):
    _, model = pair
    objective = Neuron(model, "logits", 3)

    def high_frequency_share(steps):
        images, _ = maco(objective, nb_steps=steps, seed=0, verbose=0, **RISE)
        return spectrum_statistics(images)["high_frequency_share"][0]

    # As in float32 (test_parametrization): the spectrum is the natural one whatever the steps do.
    with policy(BFLOAT16):
        assert abs(np.log(high_frequency_share(30) / high_frequency_share(1))) < 0.5


def test_the_feature_model_reuses_the_model_layers_in_their_policy(pair):
    _, model = pair
    with policy("float32"):  # built in another policy than the model's: nothing changes dtype
        extractor = feature_model(model, Layer(model, "conv2").taps + Layer(model, "conv1").taps)
    assert [layer.compute_dtype for layer in extractor.layers[1:]] == ["bfloat16"] * 2
    assert [output.dtype for output in extractor.outputs] == ["bfloat16"] * 2
    assert not computes_in_float16(extractor)


def test_metrics_and_evaluate_give_float32_close_to_the_float32_model(pair):
    reference, model = pair
    images = np.random.default_rng(0).uniform(size=(2, 32, 32, 3)).astype("float32")
    real = np.random.default_rng(1).uniform(size=(4, 32, 32, 3)).astype("float32")
    for run in (
        lambda m: evaluate(Neuron(m, "logits", [2, 6]), images),
        lambda m: evaluate(Direction(m, "conv2", np.linspace(-1.0, 1.0, 16)), np.repeat(images, 2, 0)),
        lambda m: metrics.target_confidence(m, images, [2, 6]),
        lambda m: metrics.plausibility(
            keras.Model(m.inputs, m.get_layer("conv2").output), images, [2, 6], real, [2, 6, 1, 2]
        ),
    ):
        value, expected = run(model), run(reference)
        assert value.dtype == np.float32, run
        np.testing.assert_allclose(value, expected, rtol=0.02, atol=0.02 * np.abs(expected).max())
    judged = metrics.transferability(images, [2, 6], {"bf16": model, "f32": reference})
    assert judged["bf16"] == judged["f32"]


def _mobilenet():
    keras.utils.set_random_seed(0)
    return keras.applications.MobileNetV2(
        input_shape=(64, 64, 3), alpha=0.35, weights=None, classifier_activation=None
    )


@pytest.mark.parametrize("name", ["mixed_bfloat16", "mixed_float16"])
def test_the_image_gradient_survives_the_model_policy(name):
    """float16 has float32's precision loss and more: its smallest number is 6e-8, below which the
    gradient of an objective averaged over crops and positions falls on its way to the image."""
    reference = _mobilenet()
    model = built_under(name, _mobilenet, weights_of=reference)
    assert computes_in_float16(model) == (name == "mixed_float16")
    assert not computes_in_float16(reference)

    def transparency(m):  # after one step: |d objective / d image|, the start is the same image
        objective = Direction(m, "block_6_expand_relu", np.linspace(-1.0, 1.0, 96))
        _, transparencies = maco(objective, nb_steps=1, image_shape=(72, 72), nb_crops=4, seed=0, verbose=0)
        assert transparencies.dtype == tf.float32
        return transparencies.numpy().ravel()

    measured, expected = transparency(model), transparency(reference)
    # Random weights leave this layer's activations near 1e-7, where even bfloat16's rounding
    # through seven blocks turns the gradient by about 35 degrees (cosine 0.8); float16 without
    # a gradient scale gave exactly zero everywhere.
    assert np.mean(measured == 0) < 0.01
    cosine = measured @ expected / (np.linalg.norm(measured) * np.linalg.norm(expected))
    assert cosine > 0.6, cosine
