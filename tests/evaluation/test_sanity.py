"""The path-similarity check: a planted high-frequency unit's image is flagged, a natural-like one is not."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from xplique_maco import Neuron
from xplique_maco.metrics import path_similarity, random_crops

PLANTED, CLEAN, SIZE = 1, 0, 32


class RedGreenEnergy(keras.layers.Layer):
    """The root-mean-square of (R - G) through a 3 x 3 checkerboard filter, above 0.03: 0 on smooth images."""

    def call(self, images):
        kernel = tf.constant([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]])[:, :, None, None] / 16
        response = tf.nn.conv2d(images[..., :1] - images[..., 1:2], kernel, 1, "VALID")
        return tf.nn.relu(tf.sqrt(tf.reduce_mean(tf.square(response), axis=[1, 2, 3]) + 1e-12) - 0.03)


class Plant(keras.layers.Layer):
    """Adds `gain` times the detector to one logit."""

    def call(self, logits, detector):
        return logits + 100.0 * detector[:, None] * tf.one_hot(PLANTED, logits.shape[-1])


def planted_classifier() -> keras.Model:
    """A small seeded CNN whose logit 1 also reacts, strongly, to a fine red-green checkerboard."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv1")(inputs)
    x = keras.layers.Conv2D(16, 3, strides=2, activation="relu", name="conv2")(x)
    x = keras.layers.Conv2D(16, 3, strides=2, activation="relu", name="conv3")(x)
    logits = keras.layers.Dense(4, name="logits")(keras.layers.GlobalAveragePooling2D(name="pool")(x))
    outputs = Plant(name="planted")(logits, RedGreenEnergy(name="detector")(inputs))
    return keras.Model(inputs, outputs, name="planted_cnn")


def smooth_fields(count: int, seed: int) -> np.ndarray:
    """Random colour images with a 1/f amplitude spectrum, in [0, 1]: stand-ins for photos."""
    rng = np.random.default_rng(seed)
    frequency = np.sqrt(np.fft.fftfreq(SIZE)[:, None] ** 2 + np.fft.rfftfreq(SIZE)[None] ** 2)
    amplitude = 1.0 / np.maximum(frequency, 1.0 / SIZE)
    phase = rng.uniform(0, 2 * np.pi, (count, 3, *frequency.shape))
    fields = np.fft.irfft2(amplitude * np.exp(1j * phase), s=(SIZE, SIZE))
    mixed = np.einsum("nchw,cd->nhwd", fields, np.array([[1, 1, 1], [0.3, -0.3, 0], [0.2, 0.2, -0.4]]))
    mixed /= mixed.std(axis=(1, 2, 3), keepdims=True) * 6
    return np.clip(mixed + 0.5, 0, 1).astype(np.float32)


def checkerboard(base: np.ndarray) -> np.ndarray:
    """`base` with a full-contrast red-green checkerboard, one pixel per square: no photo shows it."""
    rows, columns = np.mgrid[:SIZE, :SIZE]
    sign = np.where((rows + columns) % 2 == 0, 1.0, -1.0)[..., None] * np.array([0.4, -0.4, 0.0])
    return np.clip(base + sign, 0, 1).astype(np.float32)


@pytest.fixture(scope="module")
def planted():
    return planted_classifier()


@pytest.fixture(scope="module")
def pool():
    return smooth_fields(160, seed=0)


def best_for(model, unit, candidates):
    return candidates[np.argmax(model(candidates).numpy()[:, unit])]


def test_the_detector_is_silent_on_natural_like_images(planted, pool):
    detector = keras.Model(planted.inputs, planted.get_layer("detector").output)
    assert detector(pool).numpy().max() == 0.0  # the planted logit behaves like the original
    assert 100.0 * detector(checkerboard(pool[:1])).numpy()[0] > 20.0


@pytest.fixture(scope="module")
def visualizations(planted):
    """A natural-like image that drives the clean unit, and a checkerboard that drives the planted one."""
    fresh = smooth_fields(64, seed=1)
    return np.stack([best_for(planted, CLEAN, fresh), checkerboard(best_for(planted, PLANTED, fresh))])


@pytest.fixture(scope="module")
def result(planted, pool, visualizations):
    return path_similarity(Neuron(planted, -1, [CLEAN, PLANTED]), visualizations, pool, top=12)


def test_the_planted_pattern_is_flagged_and_the_natural_like_image_is_not(result):
    assert result.flagged.tolist() == [False, True]
    # Seeds 1 to 5 of the fresh fields gave lowest z of -2.5 to 0.4 (clean) and -95 to -48
    # (planted, at the first layer): the default threshold of -25 sits far from both.
    assert result.worst[0] > -8.0  # within a few spreads of the unit's own natural images
    assert result.worst[1] < -35.0
    assert result.score[1] < -1.0  # less alike than any natural image
    assert (result.z[1] < result.z[0]).all()  # at every layer


def test_figures_are_per_image_and_per_layer(result, planted, pool, visualizations):
    assert result.layers == ("conv1", "conv2", "conv3")  # the path to the logits, image first
    assert result.z.shape == result.percentile.shape == (2, 3)
    assert len(set(result.z[1].round(6))) == 3  # each layer has its own figure
    assert (result.natural_values[:, 0] >= result.natural_values[:, -1]).all()  # best natural first
    alone = path_similarity(Neuron(planted, -1, PLANTED), visualizations[1:], pool, layers=["conv2"], top=12)
    np.testing.assert_allclose(alone.z[0, 0], result.z[1, 1], rtol=1e-9)  # nothing leaks between images
    assert "FLAGGED" in str(result) and "conv3" in str(result)


def test_the_same_inputs_give_the_same_figures(result, planted, pool, visualizations):
    again = path_similarity(Neuron(planted, -1, [CLEAN, PLANTED]), visualizations, pool, top=12)
    np.testing.assert_array_equal(again.z, result.z)
    np.testing.assert_array_equal(again.top_indices, result.top_indices)


def test_default_layers_reach_into_a_nested_model(planted, pool, visualizations):
    inputs = keras.Input((SIZE, SIZE, 3))
    outer = keras.Model(inputs, planted(inputs), name="outer")
    nested = path_similarity(Neuron(outer, -1, [CLEAN, PLANTED]), visualizations, pool, top=12, layers=2)
    assert nested.layers == ("planted_cnn/conv1", "planted_cnn/conv3")
    assert nested.flagged.tolist() == [False, True]


def test_random_crops_are_seeded_natural_images():
    photos = [np.arange(40 * 60 * 3, dtype=np.uint8).reshape(40, 60, 3), np.ones((30, 30, 3))]
    crops = random_crops(photos, count=5, size=(8, 8), seed=3)
    assert crops.shape == (5, 8, 8, 3) and crops.dtype == np.float32
    assert 0.0 <= crops.min() and crops.max() <= 1.0
    np.testing.assert_array_equal(crops, random_crops(photos, count=5, size=(8, 8), seed=3))
    assert not np.array_equal(crops, random_crops(photos, count=5, size=(8, 8), seed=4))


_IMAGES = np.full((2, SIZE, SIZE, 3), 0.5, np.float32)
_POOL = np.full((4, SIZE, SIZE, 3), 0.5, np.float32)

SANITY_ERRORS = [
    (
        lambda m: path_similarity(Neuron(m, -1, [0, 1]), _IMAGES, _IMAGES[:1], top=3),
        "at most the number of natural",
    ),
    (lambda m: path_similarity(Neuron(m, -1, [0, 1]), _IMAGES, _IMAGES, top=2), "`top` must be at least 3"),
    (
        lambda m: path_similarity(Neuron(m, -1, [0, 1, 2]), _IMAGES, _IMAGES),
        "batch size 3, but 2 visualizations",
    ),
    (
        lambda m: path_similarity(Neuron(m, -1, 0), _IMAGES * 4, _POOL),
        "must lie in values_range (0, 1)",
    ),
    (lambda m: path_similarity(Neuron(m, -1, 0), _IMAGES[..., :1], _POOL), "(N, H, W, 3)"),
    (lambda m: path_similarity(Neuron(m, -1, 0), _IMAGES, _POOL, layers=["conv9"]), "Did you mean 'conv3'"),
    (
        lambda m: path_similarity(Neuron(m, -1, 0), _IMAGES, _POOL, layers=0),
        "`layers` must be a positive int",
    ),
    (lambda m: path_similarity(Neuron(m, -1, 0), _IMAGES, _IMAGES, values_range=(1, 0)), "low < high"),
    (lambda m: path_similarity(Neuron(m, -1, 0), _IMAGES, _POOL, threshold=np.nan), "`threshold` must be"),
    (lambda m: random_crops([np.zeros((4, 4, 3))], scale=(0.5, 2)), "`scale` must be a pair"),
    (lambda m: random_crops(np.zeros((4, 4, 3))), "wrap a single image in a list"),
    (lambda m: random_crops([np.full((4, 4, 3), 2.0)]), "outside [0, 1]"),
]


@pytest.mark.parametrize("call, message", SANITY_ERRORS)
def test_bad_arguments_are_refused_with_a_clear_error(call, message, planted):
    with pytest.raises(ValueError) as raised:
        call(planted)
    assert message in str(raised.value), str(raised.value)
