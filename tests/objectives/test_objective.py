"""The Objective value: its algebra computes what it says, composes its repr, and refuses what it cannot."""

import numpy as np
import pytest
from helpers import activations, assert_refused

from xplique_maco import Channel, Layer, Neuron, evaluate


def test_sum_computes_the_sum(model, inputs):
    a = Channel(model, "conv1", 2)
    b = Neuron(model, "logits", 3)
    np.testing.assert_allclose(
        evaluate(a + 2 * b, inputs[:1]), evaluate(a, inputs[:1]) + 2 * evaluate(b, inputs[:1]), rtol=1e-5
    )
    np.testing.assert_allclose(
        evaluate(a - b / 4, inputs[:1]), evaluate(a, inputs[:1]) - evaluate(b, inputs[:1]) / 4, rtol=1e-5
    )
    np.testing.assert_allclose(evaluate(-a, inputs[:1]), -evaluate(a, inputs[:1]), rtol=1e-5)
    np.testing.assert_allclose(
        evaluate(sum([a, b, a]), inputs[:1]), 2 * evaluate(a, inputs[:1]) + evaluate(b, inputs[:1]), rtol=1e-5
    )


def test_batch_of_one_broadcasts_against_a_batch(model, inputs):
    batch = Neuron(model, "logits", [1, 2, 3])
    single = 0.5 * Layer(model, "conv2")
    combined = batch + single
    assert combined.batch_size == 3
    np.testing.assert_allclose(
        evaluate(combined, inputs),
        evaluate(batch, inputs) + 0.5 * (activations(model, "conv2", inputs) ** 2).mean(axis=(1, 2, 3)),
        rtol=1e-5,
    )


def test_repr_composes(model):
    objective = Channel(model, "conv2", 12) + 0.5 * Layer(model, "conv1") - Neuron(model, -1, [1, 2])
    assert repr(objective) == "Channel(conv2, 12) + 0.5 * Layer(conv1) - Neuron(logits, [1, 2])"
    assert repr(-Layer(model, "conv1") / 2) == "-0.5 * Layer(conv1)"


def test_objectives_on_different_models_do_not_mix(model, other_model):
    with pytest.raises(ValueError, match="different models"):
        Neuron(model, "logits", 1) + Neuron(other_model, "logits", 1)


# (bad call on the tiny classifier, error type, words the message must contain)
ERRORS = [
    pytest.param(
        lambda m: Neuron(m, -1, 0) * "2",
        TypeError,
        "multiplied by a real number only",
        id="objective times a string",
    ),
    pytest.param(
        lambda m: "2" * Neuron(m, -1, 0),
        TypeError,
        "multiplied by a real number only",
        id="string times objective",
    ),
    pytest.param(
        lambda m: Neuron(m, -1, 0) / np.ones(2),
        TypeError,
        "divided by a real number only",
        id="objective over an array",
    ),
    pytest.param(
        lambda m: Neuron(m, -1, 0) * float("inf"), ValueError, "must be finite", id="objective times inf"
    ),
    pytest.param(
        lambda m: Neuron(m, -1, 0) + 3, TypeError, "add to objectives only", id="objective plus a number"
    ),
    pytest.param(
        lambda m: Neuron(m, -1, 0) - 1, TypeError, "subtract objectives only", id="objective minus a number"
    ),
    pytest.param(
        lambda m: Neuron(m, "logits", [1, 2]) + Neuron(m, "logits", [1, 2, 3]),
        ValueError,
        "Cannot combine objectives with batch sizes 2 and 3",
        id="batch sizes 2 and 3",
    ),
    pytest.param(
        lambda m: Neuron(m, "logits", 1) * Neuron(m, "logits", 1),
        TypeError,
        "multiplied by a scalar only",
        id="objective times objective",
    ),
    pytest.param(
        lambda m: Neuron(m, "logits", 1) / 0,
        ZeroDivisionError,
        "Cannot divide an objective by zero",
        id="objective over zero",
    ),
]


@pytest.mark.parametrize("call, error, message", ERRORS)
def test_bad_input_gets_a_clear_error_before_any_computation(model, call, error, message):
    assert_refused(lambda: call(model), error, message)
