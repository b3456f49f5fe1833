"""The imposed magnitude is exactly the image's; the shipped and computed spectra are natural."""

import io

import numpy as np
import pytest
import tensorflow as tf
from skimage import data

from xplique_maco import Spectrum, compute_spectrum, load_spectrum, natural_spectrum
from xplique_maco._parametrization import decorrelated_to_image, phase_to_decorrelated
from xplique_maco._spectrum import _full_spectrum, _periodic_component, _radial_frequency


def radial_slope(spectrum: Spectrum, channel: int = 0) -> float:
    height, width = spectrum.image_shape
    full = _full_spectrum(spectrum.magnitude, width)[channel]
    radius = _radial_frequency(height, width)
    band = (radius > 0.02) & (radius < 0.4)
    return np.polyfit(np.log(radius[band]), np.log(full[band]), 1)[0]


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


def test_shipped_spectrum_is_natural():
    colour, gray, five = natural_spectrum(3), natural_spectrum(1), natural_spectrum(5)
    assert colour.magnitude.shape == (3, 256, 129) and gray.magnitude.shape == (1, 256, 129)
    assert five.channels == 5 and np.allclose(five.recorrelation, five.recorrelation[0, 0] * np.eye(5))
    # Natural images: amplitude falls roughly as 1 / f (slopes between -0.8 and -1.6 are typical).
    assert -1.6 < radial_slope(colour, 0) < -0.8
    assert -1.6 < radial_slope(gray, 0) < -0.8
    # Luminance carries most of the energy; colour-opponent channels far less.
    assert (colour.recorrelation[:, 0] ** 2).sum() > 5 * (colour.recorrelation[:, 1] ** 2).sum()


@pytest.mark.parametrize("shape", [(512, 512), (97, 301), (64, 64)])
def test_resizing_keeps_the_power_law_and_pixel_contrast(shape):
    spectrum = natural_spectrum(3)
    resized = spectrum.resized(*shape)
    assert resized.magnitude.shape == (3, shape[0], shape[1] // 2 + 1)
    assert abs(radial_slope(resized) - radial_slope(spectrum)) < 0.1
    rng = np.random.default_rng(0)

    def pixel_std(spec):
        phase = rng.uniform(-np.pi, np.pi, size=(4, 3, *spec.magnitude.shape[1:])).astype("float32")
        return (
            phase_to_decorrelated(tf.constant(phase), tf.constant(spec.magnitude), spec.width).numpy().std()
        )

    # Pixel contrast changes only through the frequencies a smaller image cannot hold.
    assert 0.6 < pixel_std(resized) / pixel_std(spectrum) < 1.3


def test_computed_spectrum_matches_the_shipped_one_on_its_photos():
    photos = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket()]
    spectrum = compute_spectrum(photos, values_range=(0, 255))
    shipped = natural_spectrum(3)
    assert spectrum.magnitude.shape == shipped.magnitude.shape
    assert abs(radial_slope(spectrum) - radial_slope(shipped)) < 0.2
    np.testing.assert_allclose(spectrum.mean, shipped.mean, atol=0.08)


def test_spectrum_from_a_dataset_equals_spectrum_from_arrays():
    images = np.random.default_rng(0).uniform(size=(3, 40, 48, 1)).astype("float32")
    from_arrays = compute_spectrum(images, size=32)
    from_dataset = compute_spectrum(tf.data.Dataset.from_tensor_slices(images).batch(2), size=32)
    np.testing.assert_allclose(from_arrays.magnitude, from_dataset.magnitude, rtol=1e-4)
    np.testing.assert_allclose(from_arrays.mean, from_dataset.mean, rtol=1e-5)


def test_periodic_component_removes_the_border_cross():
    ramp = np.tile(np.linspace(0, 1, 64), (64, 1))[..., None]  # a jump between left and right borders
    raw = np.abs(np.fft.fft2(ramp[..., 0] - ramp.mean()))
    periodic = np.abs(np.fft.fft2(_periodic_component(ramp)[..., 0]))
    assert periodic[0, 1:].sum() < 0.03 * raw[0, 1:].sum()


def test_save_and_load_round_trip_and_refuse_pickles(tmp_path):
    spectrum = natural_spectrum(1).resized(33, 20)
    path = tmp_path / "spectrum.npz"
    spectrum.save(path)
    loaded = load_spectrum(path)
    np.testing.assert_array_equal(loaded.magnitude, spectrum.magnitude)
    assert loaded.width == 20
    hostile = io.BytesIO()
    np.savez(hostile, magnitude=np.array([object()], dtype=object), mean=0, recorrelation=0, width=1)
    hostile.seek(0)
    with pytest.raises(ValueError, match="allow_pickle"):
        load_spectrum(hostile)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: compute_spectrum([], size=32), "`images` is empty"),
        (lambda: compute_spectrum(np.zeros((10, 10, 3)), size=32), "No image is at least 32x32"),
        (lambda: compute_spectrum(np.zeros((40, 40, 3)), values_range=(1, 0)), "low < high"),
        (lambda: Spectrum(np.full((1, 4, 3), -1.0), [0.5], [[1.0]], 4), "non-negative"),
        (lambda: Spectrum(np.ones((1, 4, 3)), [0.5], [[1.0]], 6), "does not match width 6"),
        (lambda: natural_spectrum(0), "`channels` must be a positive int"),
    ],
)
def test_spectrum_errors(call, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call()
