"""Bad input gets a clear error naming the problem, before any optimisation (found in review)."""

import gc
import os
import weakref

import keras
import numpy as np
import pytest
from conftest import conv_classifier

from xplique_maco import Adam, Direction, Nadam, Neuron, compute_spectrum, load_spectrum, maco, plot_maco
from xplique_maco._engine import _STEPS, trace_count
from xplique_maco._optimizers import SGD
from xplique_maco._plots import save_image

FAST = dict(nb_steps=1, image_shape=(32, 32), nb_crops=1, verbose=0)


def fully_convolutional():
    inputs = keras.Input((None, None, 3))
    return keras.Model(inputs, keras.layers.Conv2D(4, 3, name="conv")(inputs), name="fcn")


def integer_input():
    inputs = keras.Input((16, 16, 3), dtype="uint8")
    x = keras.layers.Rescaling(1 / 255)(inputs)
    return keras.Model(inputs, keras.layers.Conv2D(2, 3, name="conv")(x), name="uint8_model")


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: maco(Neuron(integer_input(), "conv", 0), **FAST), "takes uint8 input"),
        (
            lambda: maco(
                Neuron(fully_convolutional(), "conv", 0, position=(40, 0)), model_input_size=(16, 16), **FAST
            ),
            "Position (40, 0) is outside layer 'conv', whose positions span (14, 14)",
        ),
        (
            lambda: maco(Neuron(fully_convolutional(), "conv", 0), model_input_size=(2, 2), **FAST),
            "cannot take crops of size (2, 2)",
        ),
        (
            lambda: Direction(conv_classifier(), "conv2", np.ones(16), cossim_power=float("nan")),
            "finite number >= 0",
        ),
        (lambda: Adam(beta_1=1.0), "Adam `beta_1` must be a number in [0, 1)"),
        (lambda: SGD(momentum=5), "SGD `momentum` must be a number in [0, 1)"),
        (lambda: Nadam(epsilon=0), "Nadam `epsilon` must be a small positive number"),
        (
            lambda: compute_spectrum(np.full((64, 64, 3), 200, np.uint8), size=32),
            "pass the range your images use",
        ),
    ],
)
def test_clear_errors_before_optimising(call, message):
    traced = trace_count()
    with pytest.raises(ValueError) as raised:
        call()
    assert message in str(raised.value)
    assert trace_count() == traced


def test_huge_direction_vectors_do_not_overflow(model):
    objective = Direction(model, "conv2", np.full(16, 1e30))
    np.testing.assert_allclose(np.linalg.norm(objective.arguments()[0]["vector"]), 1.0, rtol=1e-6)


def test_generators_are_read_twice_safely():
    images = (np.random.default_rng(i).uniform(size=(40, 40, 1)) for i in range(2))
    assert compute_spectrum(images, size=32).magnitude.shape == (1, 32, 17)


def test_load_spectrum_refuses_other_files(tmp_path):
    np.save(tmp_path / "x.npy", np.ones(3))
    with pytest.raises(ValueError, match="not a .npz archive"):
        load_spectrum(tmp_path / "x.npy")


def test_plot_errors_and_file_modes(tmp_path):
    with pytest.raises(ValueError, match="does not match image shape"):
        plot_maco(np.zeros((8, 8, 3)), np.zeros((4, 4, 1)))
    axes = plot_maco(np.zeros((2, 8, 8, 3)), np.ones((2, 8, 8, 1)))  # a batch: one axes per image
    assert len(axes) == 2 and axes[1].get_images()[0].get_array().shape == (8, 8, 4)
    path = save_image(tmp_path / "x.png", np.zeros((4, 4, 3)))
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask


def test_compiled_steps_are_freed_with_their_model():
    model = conv_classifier(name="short_lived")
    maco(Neuron(model, "logits", 0), **FAST)
    alive = weakref.ref(model.get_layer("conv1"))
    assert model in _STEPS
    del model
    for _ in range(3):  # the cache entry goes first, then the feature model's own reference cycles
        gc.collect()
    assert alive() is None
