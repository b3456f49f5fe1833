"""The key of each image's random stream: what it renders, not where it sits in the batch."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from xplique_maco import Channel, Direction, Diversity, Neuron
from xplique_maco._objectives.keys import item_keys


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(6, name="logits")(x))


def test_a_unit_has_the_same_key_alone_and_anywhere_in_a_batch(model):
    batch = item_keys(Neuron(model, "logits", [3, 1, 5]))
    assert item_keys(Neuron(model, "logits", 1))[0] == batch[1]
    assert item_keys(Neuron(model, "logits", [5, 3]))[1] == batch[0]
    assert len(set(batch.tolist())) == 3


def test_what_is_rendered_changes_the_key_and_where_the_layer_sits_does_not(model):
    (neuron,) = item_keys(Neuron(model, "logits", 1))
    assert item_keys(Neuron(model, "logits", 2))[0] != neuron
    assert item_keys(2.0 * Neuron(model, "logits", 1))[0] != neuron  # another coefficient
    assert item_keys(Neuron(model, "logits", 1) + Channel(model, "conv", 0))[0] != neuron
    vectors = np.eye(4, dtype=np.float32)
    assert (
        item_keys(Direction(model, "conv", vectors[1]))[0] == item_keys(Direction(model, "conv", vectors))[1]
    )
    inputs = keras.Input((16, 16, 3))
    nested = keras.Model(inputs, model(inputs))
    assert item_keys(Neuron(nested, -1, 1))[0] == neuron


def test_repeated_units_and_diversity_groups_get_distinct_keys(model):
    twice = item_keys(Neuron(model, "logits", [1, 1, 2, 1]))
    assert len(set(twice.tolist())) == 4
    assert twice[0] == item_keys(Neuron(model, "logits", 1))[0]  # the first time is the unit's own key
    group = item_keys(Neuron(model, "logits", [1, 2]) + Diversity(model, "conv", images=3))
    assert group.shape == (6,) and len(set(group.tolist())) == 6


def test_keys_are_non_negative_and_the_same_in_every_process():
    """A render resumed or cut into shards runs in other processes: its keys must not change
    (no memory addresses, no salted string hashes)."""
    script = (
        "import keras\n"
        "from xplique_maco import Custom, Neuron\n"
        "from xplique_maco._objectives.keys import item_keys\n"
        "keras.utils.set_random_seed(0)\n"
        "i = keras.Input((16, 16, 3))\n"
        "x = keras.layers.Conv2D(4, 3, activation='relu', name='conv')(i)\n"
        "x = keras.layers.GlobalAveragePooling2D()(x)\n"
        "m = keras.Model(i, keras.layers.Dense(6, name='logits')(x))\n"
        "print(*item_keys(Neuron(m, 'logits', [0, 4]) + Custom(m, 'conv', lambda a: a.mean())))\n"
    )
    runs = [
        subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": str(salt)},
        ).stdout.split()
        for salt in (1, 2)
    ]
    keys = [int(word) for word in runs[0]]
    assert len(keys) == 2 and runs[0] == runs[1]
    assert all(key >= 0 for key in keys)
