"""The phase optimizers: their hyperparameters and the names maco accepts are checked."""

import keras
import pytest
from helpers import assert_refused

from xplique_maco import Adam, Layer, Nadam, Neuron, maco
from xplique_maco._rendering.optimizers import SGD

# (bad call on the tiny classifier, error type, words the message must contain)
ERRORS = [
    pytest.param(
        lambda m: Adam(beta_1=1.0), ValueError, "Adam `beta_1` must be a number in [0, 1)", id="Adam beta_1 1"
    ),
    pytest.param(
        lambda m: SGD(momentum=5),
        ValueError,
        "SGD `momentum` must be a number in [0, 1)",
        id="SGD momentum 5",
    ),
    pytest.param(
        lambda m: Nadam(epsilon=0),
        ValueError,
        "Nadam `epsilon` must be a small positive number",
        id="Nadam epsilon 0",
    ),
    pytest.param(
        lambda m: maco(Neuron(m, -1, 1), nb_steps=2, optimizer="rmsprop"),
        ValueError,
        "Unknown optimizer 'rmsprop'. Accepted: one of ['adam', 'nadam', 'sgd']",
        id="optimizer rmsprop",
    ),
    pytest.param(
        lambda m: maco(Layer(m, "conv1"), optimizer=keras.optimizers.Adam()),
        ValueError,
        "Unknown optimizer",
        id="keras optimizer object",
    ),
]


@pytest.mark.parametrize("call, error, message", ERRORS)
def test_bad_input_gets_a_clear_error_before_any_computation(model, call, error, message):
    assert_refused(lambda: call(model), error, message)
