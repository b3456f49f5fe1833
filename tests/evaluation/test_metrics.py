"""Metrics measure what they claim: spectrum statistics, confidence, transferability, plausibility."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from skimage import data

from xplique_maco.metrics import (
    fine_detail,
    plausibility,
    spectrum_statistics,
    target_confidence,
    transferability,
)


def test_spectrum_statistics_tell_noise_from_photos():
    noise = np.random.default_rng(0).uniform(size=(2, 128, 128, 3))
    photo = data.astronaut()[None, :256, :256] / 255.0
    noisy = spectrum_statistics(noise)
    natural = spectrum_statistics(photo)
    assert noisy["high_frequency_share"].min() > 0.6  # most of the plane lies above 0.25 cycles/pixel
    assert abs(noisy["slope"]).max() < 0.2  # white noise: flat amplitude
    assert 0.0 < natural["high_frequency_share"][0] < 0.1
    assert -2.0 < natural["slope"][0] < -0.8
    grey = spectrum_statistics(photo.mean(axis=-1, keepdims=True))
    assert abs(grey["slope"][0] - natural["slope"][0]) < 0.2


def test_fine_detail_tells_a_photos_edges_from_noise_of_the_same_spectrum():
    photo = data.astronaut()[:256, :256] / 255.0
    # The same magnitude with random phases: the same energy per frequency, no edges.
    rng = np.random.default_rng(0)
    spectrum = np.fft.rfft2(photo, axes=(0, 1))
    shuffled = np.fft.irfft2(
        np.abs(spectrum) * np.exp(1j * rng.uniform(-np.pi, np.pi, spectrum.shape)), s=(256, 256), axes=(0, 1)
    )
    shuffled = (shuffled - shuffled.mean()) / shuffled.std() * photo.std() + photo.mean()
    natural, scrambled = fine_detail(np.stack([photo, np.clip(shuffled, 0, 1)]))
    assert natural > 8 and abs(scrambled - 3) < 0.5
    assert abs(fine_detail(rng.normal(0.5, 0.1, (256, 256, 3)))[0] - 3) < 0.1  # white noise
    grey = fine_detail(photo.mean(axis=-1, keepdims=True) * 255, values_range=(0, 255))
    assert abs(grey[0] - natural) < 0.2 * natural  # a single channel and another range: the same figure


def tiny_classifier(seed):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((16, 16, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, activation="relu")(inputs))
    return keras.Model(inputs, keras.layers.Dense(6, name="logits")(pooled))


def test_confidence_and_transferability_match_the_models_own_predictions():
    source, judge = tiny_classifier(0), tiny_classifier(1)
    images = np.random.default_rng(0).uniform(size=(8, 32, 32, 3)).astype("float32")
    resized = tf.image.resize(images, (16, 16), antialias=True)
    classes = np.argmax(judge(resized).numpy(), axis=1)
    classes[:3] = (classes[:3] + 1) % 6  # three of eight are wrong on purpose
    probabilities = tf.nn.softmax(source(resized)).numpy()
    np.testing.assert_allclose(
        target_confidence(source, images, classes), probabilities[np.arange(8), classes], rtol=1e-5
    )
    rates = transferability(images, classes, {"judge": judge})["judge"]
    assert rates["top1"] == pytest.approx(5 / 8)
    assert rates["top5"] >= rates["top1"]


def test_plausibility_prefers_the_matching_class():
    inputs = keras.Input((8, 8, 3))
    colours = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(inputs))  # features = mean colour
    red, blue = np.zeros((1, 8, 8, 3)), np.zeros((1, 8, 8, 3))
    red[..., 0], blue[..., 2] = 1.0, 1.0
    real = np.concatenate([red, red * 0.8, blue])
    reddish = red * 0.9 + 0.05
    scores = plausibility(colours, reddish, [0], real, [0, 0, 1])
    assert scores[0] > 0.5
    assert plausibility(colours, reddish, [1], real, [0, 0, 1])[0] < -0.5
    with pytest.raises(ValueError, match="No real image of classes \\[2\\]"):
        plausibility(colours, reddish, [2], real, [0, 0, 1])


class _Refuses:
    """A model that fails the test if it is ever called: the checks must come before it runs."""

    inputs = [type("Input", (), {"shape": (None, 8, 8, 3)})()]

    def __call__(self, *args, **kwargs):
        raise AssertionError("the model ran before the arguments were checked")


_IMAGES = np.zeros((2, 8, 8, 3), np.float32)
_MODEL = _Refuses()

METRICS_ERRORS = [
    (lambda: target_confidence(_MODEL, _IMAGES, [0, 1], values_range=(1, 1)), "`values_range` must satisfy"),
    (
        lambda: target_confidence(_MODEL, _IMAGES, [0, 1], model_values_range=(0, "x")),
        "`model_values_range` must be a pair",
    ),
    (lambda: target_confidence(_MODEL, _IMAGES, [0, 1], input_size=(0, 8)), "`input_size` must be at least"),
    (lambda: target_confidence(_MODEL, _IMAGES, [0]), "one class index per image (2)"),
    (lambda: transferability(_IMAGES, [0, 1], {"judge": _MODEL}, values_range=(0, np.inf)), "finite"),
    (
        lambda: plausibility(_MODEL, _IMAGES, [0, 1], _IMAGES, [0, 1], input_size=(8,)),
        "`input_size` must be a pair of ints",
    ),
    (lambda: plausibility(_MODEL, _IMAGES, [0, 2], _IMAGES, [0, 1]), "No real image of classes [2]"),
    (
        lambda: plausibility(_MODEL, _IMAGES[:1], [0], _IMAGES, [0, 0]),
        "real images of at least one other class",
    ),
    (lambda: spectrum_statistics(_IMAGES, values_range=(2, 1)), "`values_range` must satisfy"),
    (lambda: fine_detail(_IMAGES[..., :2]), "C in (1, 3)"),
    (lambda: fine_detail(_IMAGES, sigma=0), "`sigma` must be a finite number >= 0.1"),
]


@pytest.mark.parametrize("call, message", METRICS_ERRORS)
def test_bad_metrics_arguments_are_refused_before_any_model_runs(call, message):
    with pytest.raises(ValueError) as raised:
        call()
    assert message in str(raised.value), str(raised.value)
