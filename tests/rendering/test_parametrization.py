"""Phase -> image: the imposed magnitude is exactly the image's, values stay in range, Fourier drifts;
every parametrisation and optimizer keeps its protocol."""

import numpy as np
import pytest
import tensorflow as tf
from helpers import BASELINE, RISE, assert_implements, assert_refused

from xplique_maco import Channel, Neuron, Spectrum, compute_spectrum, fourier, maco, natural_spectrum
from xplique_maco._rendering.optimizers import SGD, Adam, Nadam, Optimizer
from xplique_maco._rendering.parametrization import (
    FourierBaseline,
    MagnitudeConstrained,
    Parametrization,
    decorrelated_to_image,
    phase_to_decorrelated,
)
from xplique_maco._rendering.photo import PhotoSeeded
from xplique_maco.metrics import spectrum_statistics


@pytest.mark.parametrize("shape", [(16, 16), (15, 22), (33, 17), (8, 9)])
def test_image_has_exactly_the_imposed_magnitude(shape):
    height, width = shape
    rng = np.random.default_rng(0)
    raw = rng.uniform(0.5, 2.0, size=(3, height, width // 2 + 1))
    magnitude = Spectrum.from_magnitude(raw, width).magnitude  # made realisable by a real image
    phase = rng.uniform(-np.pi, np.pi, size=(2, 3, height, width // 2 + 1)).astype("float32")
    image = phase_to_decorrelated(tf.constant(phase), tf.constant(magnitude), width).numpy()
    assert image.shape == (2, height, width, 3)
    measured = np.abs(np.fft.rfft2(image, axes=(1, 2))).transpose(0, 3, 1, 2)
    # Bins that are their own conjugate must be real: there the magnitude is |m cos(phase)|.
    real_rows = [0] + ([height // 2] if height % 2 == 0 else [])
    real_cols = [0] + ([width // 2] if width % 2 == 0 else [])
    expected = np.broadcast_to(magnitude, measured.shape).copy()
    for row in real_rows:
        for col in real_cols:
            expected[:, :, row, col] = magnitude[:, row, col] * np.abs(np.cos(phase[:, :, row, col]))
    np.testing.assert_allclose(measured, expected, rtol=1e-3, atol=1e-4)


def test_images_stay_inside_the_value_range():
    decorrelated = tf.constant(np.random.default_rng(0).normal(scale=50, size=(1, 8, 8, 3)), tf.float32)
    image = decorrelated_to_image(
        decorrelated, tf.eye(3), tf.fill((3,), 0.5), tf.constant([-2.0, 3.0])
    ).numpy()
    assert image.min() >= -2.0 and image.max() <= 3.0
    assert image.min() < -1.9 and image.max() > 2.9  # the whole range is reachable


def test_user_spectrum_and_bare_magnitude(model):
    photos = np.random.default_rng(0).uniform(size=(2, 64, 64, 3)).astype("float32")
    spectrum = compute_spectrum(photos, size=32)
    images, _ = maco(Channel(model, "conv1", 0), nb_steps=2, magnitude=spectrum, seed=0, **RISE)
    assert images.shape == (1, 48, 48, 3)
    bare = natural_spectrum(3).magnitude
    images, _ = maco(Channel(model, "conv1", 0), nb_steps=2, magnitude=bare, seed=0, **RISE)
    assert np.isfinite(images.numpy()).all()


def test_fourier_changes_magnitudes_where_maco_keeps_them(model):
    objective = Neuron(model, "logits", 3)

    def high_frequency_share(render, steps):
        images, _ = render(objective, **{**BASELINE, "nb_steps": steps})
        return spectrum_statistics(images)["high_frequency_share"][0]

    # MACO's spectrum is the natural one whatever the optimisation does; Fourier's drifts far.
    assert abs(np.log(high_frequency_share(maco, 30) / high_frequency_share(maco, 1))) < 0.5
    assert abs(np.log(high_frequency_share(fourier, 30) / high_frequency_share(fourier, 1))) > 1.0


# (bad call on the tiny classifier, error type, words the message must contain)
ERRORS = [
    pytest.param(
        lambda m: maco(Neuron(m, -1, 1), nb_steps=2, magnitude=np.ones((1, 16, 9))),
        ValueError,
        "The magnitude has 1 channels but the model takes 3",
        id="grey magnitude for a colour model",
    ),
]


@pytest.mark.parametrize("call, error, message", ERRORS)
def test_bad_input_gets_a_clear_error_before_any_computation(model, call, error, message):
    assert_refused(lambda: call(model), error, message)


def test_every_parametrisation_has_the_four_methods_of_the_protocol():
    for parametrization in (MagnitudeConstrained, FourierBaseline, PhotoSeeded):
        assert_implements(parametrization, Parametrization)

    class NoImage:  # a newcomer's parametrisation that forgot `to_image`
        def spectrum(self, magnitude, channels, image_shape): ...
        def initial(self, spectrum, item_seeds, positions, image_shape): ...
        def tensors(self, spectrum, positions): ...

    with pytest.raises(AssertionError, match="lacks 'to_image'"):
        assert_implements(NoImage, Parametrization)


def test_every_optimizer_has_the_methods_of_the_protocol():
    for optimizer in (SGD, Adam, Nadam):
        assert_implements(optimizer, Optimizer)
