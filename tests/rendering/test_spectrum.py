"""The Fourier magnitude MACO imposes: shipped, resized and computed spectra are natural; files are safe."""

import io

import numpy as np
import pytest
import tensorflow as tf
from helpers import assert_refused
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from skimage import data

from xplique_maco import Layer, Spectrum, compute_spectrum, load_spectrum, maco, natural_spectrum
from xplique_maco._rendering.parametrization import phase_to_decorrelated
from xplique_maco._rendering.spectrum import _full_spectrum, _radial_frequency
from xplique_maco._rendering.spectrum_of_images import _periodic_component


def radial_slope(spectrum: Spectrum, channel: int = 0) -> float:
    height, width = spectrum.image_shape
    full = _full_spectrum(spectrum.magnitude, width)[channel]
    radius = _radial_frequency(height, width)
    band = (radius > 0.02) & (radius < 0.4)
    return np.polyfit(np.log(radius[band]), np.log(full[band]), 1)[0]


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


def test_generators_are_read_twice_safely():
    images = (np.random.default_rng(i).uniform(size=(40, 40, 1)) for i in range(2))
    assert compute_spectrum(images, size=32).magnitude.shape == (1, 32, 17)


def test_load_spectrum_refuses_other_files(tmp_path):
    np.save(tmp_path / "x.npy", np.ones(3))
    with pytest.raises(ValueError, match="not a .npz archive"):
        load_spectrum(tmp_path / "x.npy")


@settings(max_examples=100, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=3000))
def test_spectrum_loader_refuses_random_bytes(tmp_path, payload):
    path = tmp_path / "random.npz"
    path.write_bytes(payload)
    try:
        load_spectrum(path)
    except ValueError:
        pass


def test_spectrum_loader_refuses_hostile_npz(tmp_path):
    for arrays, message in [
        (
            dict(magnitude=np.ones((1, 4, 3)), mean=[0.5], recorrelation=[[1.0]], width=np.array([4, 4])),
            "malformed width",
        ),
        (dict(magnitude=np.full((1, 4, 3), np.inf), mean=[0.5], recorrelation=[[1.0]], width=4), "finite"),
        (dict(magnitude=np.ones((1, 4, 3)), mean=[0.5], recorrelation=[[1.0]]), "lacks arrays"),
    ]:
        path = tmp_path / "hostile.npz"
        np.savez(path, **arrays)
        with pytest.raises(ValueError, match=message):
            load_spectrum(path)


def magnitude_of(magnitude):
    """maco on the tiny classifier's first layer with the given magnitude."""
    return lambda m: maco(Layer(m, "conv1"), magnitude=magnitude)


# (bad call on the tiny classifier, error type, words the message must contain)
ERRORS = [
    pytest.param(lambda m: compute_spectrum([], size=32), ValueError, "`images` is empty", id="no images"),
    pytest.param(
        lambda m: compute_spectrum(np.zeros((10, 10, 3)), size=32),
        ValueError,
        "No image is at least 32x32",
        id="images too small",
    ),
    pytest.param(
        lambda m: compute_spectrum(np.zeros((40, 40, 3)), values_range=(1, 0)),
        ValueError,
        "low < high",
        id="values_range backward",
    ),
    pytest.param(
        lambda m: compute_spectrum(np.full((64, 64, 3), 200, np.uint8), size=32),
        ValueError,
        "pass the range your images use",
        id="uint8 images in the default range",
    ),
    pytest.param(
        lambda m: compute_spectrum(np.zeros((1, 1, 8, 8, 1))), ValueError, "Images must be", id="5-D images"
    ),
    pytest.param(
        lambda m: compute_spectrum(np.zeros((8, 8)), size=4),
        ValueError,
        "`size` must be an int >= 8",
        id="spectrum size 4",
    ),
    pytest.param(
        lambda m: Spectrum(np.full((1, 4, 3), -1.0), [0.5], [[1.0]], 4),
        ValueError,
        "non-negative",
        id="negative spectrum",
    ),
    pytest.param(
        lambda m: Spectrum(np.ones((1, 4, 3)), [0.5], [[1.0]], 6),
        ValueError,
        "does not match width 6",
        id="spectrum of another width",
    ),
    pytest.param(
        lambda m: Spectrum(np.ones((1, 4, 3)), [0.5], [[1.0]], 4.5),
        ValueError,
        "`width` must be an int >= 2",
        id="spectrum width float",
    ),
    pytest.param(
        lambda m: natural_spectrum(1).resized(0, 0),
        ValueError,
        "`height` must be an int >= 2",
        id="spectrum resized to 0",
    ),
    pytest.param(
        lambda m: natural_spectrum(0),
        ValueError,
        "`channels` must be a positive int",
        id="spectrum channels 0",
    ),
    pytest.param(
        magnitude_of(np.full((3, 8, 5), np.nan)),
        ValueError,
        "finite and non-negative",
        id="magnitude with NaN",
    ),
    pytest.param(magnitude_of(-np.ones((3, 8, 5))), ValueError, "non-negative", id="negative magnitude"),
    pytest.param(
        magnitude_of(np.ones((8, 5))), ValueError, "(C, H, W // 2 + 1)", id="magnitude of wrong rank"
    ),
]


@pytest.mark.parametrize("call, error, message", ERRORS)
def test_bad_input_gets_a_clear_error_before_any_computation(model, call, error, message):
    assert_refused(lambda: call(model), error, message)
