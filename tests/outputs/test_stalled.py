"""Objectives that never move are said at the end of the run, with the items and likely causes."""

import warnings

import keras

from xplique_maco import Channel, Custom, Neuron, StalledWarning, maco

SETTINGS = dict(nb_steps=6, image_shape=(32, 32), nb_crops=2, seed=0, verbose=0)


def relu_model(dead_bias: float = -50.0) -> keras.Model:
    """A conv layer whose channel 0 is off for every image (a bias of -50), then a ReLU."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    conv = keras.layers.Conv2D(4, 3, name="conv")
    x = keras.layers.ReLU(name="relu")(conv(inputs))
    model = keras.Model(
        inputs, keras.layers.Dense(3, name="logits")(keras.layers.GlobalAveragePooling2D()(x))
    )
    weights, bias = conv.get_weights()
    bias[0] = dead_bias
    conv.set_weights([weights, bias])
    return model


def stalled(objective, **settings) -> list[str]:
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        maco(objective, **{**SETTINGS, **settings})
    return [str(w.message) for w in record if issubclass(w.category, StalledWarning)]


def test_a_dead_unit_is_named_and_a_live_one_is_not():
    (message,) = stalled(Channel(relu_model(), "relu", [1, 0, 2]))
    # Items are batch positions, as in `items=`: channel 0 is item 1.
    assert "item 1 (0 -> 0)" in message and "never moved" in message and "dead unit" in message
    assert "item 0" not in message and "item 2" not in message
    assert stalled(Channel(relu_model(), "relu", [1, 2])) == []


def test_a_tiny_step_size_is_not_taken_for_a_zero_gradient():
    # The images stay the same to float32 precision, but the gradient was there all along.
    assert stalled(Channel(relu_model(), "relu", [1, 2]), learning_rate=1e-12) == []


def test_an_objective_behind_a_stop_gradient_never_moves():
    import tensorflow as tf

    objective = Custom(
        relu_model(),
        "conv",
        lambda activations: tf.reduce_mean(tf.stop_gradient(activations), axis=(1, 2, 3)),
    )
    (message,) = stalled(objective)
    assert "never moved" in message and "stop-gradient" in message


def test_vanishing_values_are_said_with_their_size():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.Rescaling(1e-12)(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, keras.layers.Dense(3, name="logits")(x))
    (message,) = stalled(Neuron(model, "logits", [0, 1]))
    assert "items 0 (" in message and "e-1" in message and "untrained or collapsed model" in message


def test_a_single_step_run_is_not_judged():
    assert stalled(Channel(relu_model(), "relu", 0), nb_steps=1) == []
