"""The argument checks of _settings.py: each bad setting is refused by name before any step runs."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import CHUNKED, TWO_STEPS, assert_refused

from xplique_maco import Channel, Layer, Neuron, maco


def neuron_with(**kwargs):
    """maco on the tiny classifier's logit 1, two steps, with the given settings."""
    return lambda m: maco(Neuron(m, -1, 1), **{"nb_steps": 2, **kwargs})


def layer_with(**kwargs):
    """maco on the tiny classifier's first layer, default settings but the given ones."""
    return lambda m: maco(Layer(m, "conv1"), **kwargs)


def chunked_with(**kwargs):
    """maco on four logits of the tiny classifier, one step, in chunks."""
    return lambda m: maco(Neuron(m, "logits", [0, 1, 2, 3]), nb_steps=1, **CHUNKED, **kwargs)


# (bad call on the tiny classifier, error type, words the message must contain)
ERRORS = [
    pytest.param(
        neuron_with(nb_steps=0), ValueError, "`nb_steps` must be a positive int, received 0", id="nb_steps 0"
    ),
    pytest.param(
        neuron_with(nb_steps=2.5), ValueError, "`nb_steps` must be a positive int", id="nb_steps 2.5"
    ),
    pytest.param(
        layer_with(nb_steps=1e9), ValueError, "`nb_steps` must be a positive int", id="huge nb_steps type"
    ),
    pytest.param(neuron_with(nb_crops=-1), ValueError, "`nb_crops` must be a positive int", id="nb_crops -1"),
    pytest.param(
        layer_with(nb_crops=True), ValueError, "`nb_crops` must be a positive int", id="bool nb_crops"
    ),
    pytest.param(
        neuron_with(image_shape=(10, 10)), ValueError, "`image_shape` (10, 10) is too small", id="image 10x10"
    ),
    pytest.param(layer_with(image_shape=(3, 3)), ValueError, "is too small", id="tiny image"),
    pytest.param(
        neuron_with(image_shape=(64,)),
        ValueError,
        "`image_shape` must be a pair of ints",
        id="image_shape (64,)",
    ),
    pytest.param(
        layer_with(image_shape=(32.0, 32.0)), ValueError, "pair of ints", id="image_shape of floats"
    ),
    pytest.param(layer_with(image_shape=(-32, 32)), ValueError, "at least (1, 1)", id="image_shape negative"),
    pytest.param(
        neuron_with(values_range=(1, 0)),
        ValueError,
        "`values_range` must satisfy low < high",
        id="range (1, 0)",
    ),
    pytest.param(
        neuron_with(values_range=(0, 0)),
        ValueError,
        "`values_range` must satisfy low < high",
        id="range (0, 0)",
    ),
    pytest.param(
        neuron_with(values_range="0-1"),
        ValueError,
        "`values_range` must be a pair (low, high)",
        id="range '0-1'",
    ),
    pytest.param(
        layer_with(values_range=("a", "b")), ValueError, "pair (low, high)", id="values_range of strings"
    ),
    pytest.param(
        layer_with(values_range=(0, float("nan"))), ValueError, "finite", id="values_range with NaN"
    ),
    pytest.param(
        layer_with(values_range=(0, 1, 2)), ValueError, "pair (low, high)", id="values_range of three"
    ),
    pytest.param(
        neuron_with(crop_size=(0.8, 0.2)),
        ValueError,
        "`crop_size` must satisfy 0 < smallest <= largest <= 1",
        id="crop_size backward",
    ),
    pytest.param(layer_with(crop_size=0), ValueError, "0 < smallest <= largest <= 1", id="crop_size zero"),
    pytest.param(layer_with(crop_size=(0.5, 2)), ValueError, "<= 1", id="crop_size above one"),
    pytest.param(
        neuron_with(noise=-0.1), ValueError, "`noise` must be a finite number >= 0", id="noise -0.1"
    ),
    pytest.param(
        layer_with(noise=float("nan")), ValueError, "`noise` must be a finite number", id="NaN noise"
    ),
    pytest.param(
        neuron_with(wrap_crops="yes"),
        ValueError,
        "`wrap_crops` must be True, False or None, received 'yes'",
        id="wrap_crops 'yes'",
    ),
    pytest.param(
        neuron_with(antialias=None),
        ValueError,
        "`antialias` must be True or False, received None",
        id="antialias None",
    ),
    pytest.param(
        neuron_with(glance=1.5),
        ValueError,
        "`glance` must be a share of the crops in [0, 1], received 1.5",
        id="glance 1.5",
    ),
    pytest.param(
        neuron_with(glance="all"),
        ValueError,
        "`glance` must be a share of the crops in [0, 1], received 'all'",
        id="glance 'all'",
    ),
    pytest.param(
        neuron_with(learning_rate=0), ValueError, "`learning_rate` must be a finite number > 0", id="rate 0"
    ),
    pytest.param(
        neuron_with(learning_rate=(1.0, -0.1)),
        ValueError,
        "or a pair (first, last) of them for a cosine decay",
        id="rate pair with a negative",
    ),
    pytest.param(
        neuron_with(learning_rate=(1.0, 0.5, 0.1)),
        ValueError,
        "`learning_rate` must be a finite number > 0",
        id="rate of three",
    ),
    pytest.param(neuron_with(learning_rate="fast"), ValueError, "received 'fast'", id="rate 'fast'"),
    pytest.param(
        layer_with(learning_rate=float("inf")), ValueError, "`learning_rate`", id="inf learning rate"
    ),
    pytest.param(neuron_with(seed=-3), ValueError, "`seed` must be None or an int", id="seed -3"),
    pytest.param(layer_with(seed=2**64), ValueError, "`seed` must be None or an int", id="seed too large"),
    pytest.param(layer_with(seed="0"), ValueError, "`seed` must be None or an int", id="seed string"),
    pytest.param(layer_with(verbose=2), ValueError, "`verbose` must be 0, 1 or 'auto'", id="verbose 2"),
    pytest.param(
        layer_with(batch_size=0), ValueError, "`batch_size` must be a positive int", id="batch_size zero"
    ),
    pytest.param(
        chunked_with(batch_size=0),
        ValueError,
        "`batch_size` must be a positive int",
        id="chunks batch_size 0",
    ),
    pytest.param(
        chunked_with(crops_per_pass=0),
        ValueError,
        "`crops_per_pass` must be a positive int, received 0",
        id="crops_per_pass 0",
    ),
]


@pytest.mark.parametrize("call, error, message", ERRORS)
def test_bad_input_gets_a_clear_error_before_any_computation(model, call, error, message):
    assert_refused(lambda: call(model), error, message)


def two_output_model():
    inputs = keras.Input((16, 16, 3))
    a = keras.layers.Conv2D(2, 3, name="a")(inputs)
    b = keras.layers.Conv2D(3, 3, name="b")(inputs)
    return keras.Model(inputs, [a, b], name="two_outputs")


def test_integer_values_range_and_multi_output_models_are_accepted(model):
    images, _ = maco(Layer(model, "conv1"), values_range=(0, 255), **TWO_STEPS)
    assert 0 <= float(tf.reduce_min(images)) and float(tf.reduce_max(images)) <= 255
    images, _ = maco(Channel(two_output_model(), "b", 2), **TWO_STEPS)
    assert np.isfinite(images.numpy()).all()
