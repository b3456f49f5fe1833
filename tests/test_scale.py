"""At scale: chunks share one compiled step, subsets and chunks give the same images as the whole."""

import numpy as np
import pytest
import tensorflow as tf

from xplique_maco import Callback, History, Neuron, maco
from xplique_maco.engine import trace_count

FAST = dict(image_shape=(40, 40), nb_crops=2, crop_size=(0.5, 1.0), seed=3, verbose=0)


def test_chunks_reuse_one_compiled_step_and_match_the_whole_batch(model):
    objective = Neuron(model, "logits", [0, 1, 2, 3, 4])
    whole, whole_masks = maco(objective, nb_steps=4, **FAST)
    maco(Neuron(model, "logits", [5, 6]), nb_steps=1, **FAST)  # the 2-item shape
    maco(Neuron(model, "logits", 7), nb_steps=1, **FAST)  # the 1-item shape
    traced = trace_count()
    chunked, chunked_masks = maco(objective, nb_steps=4, batch_size=2, **FAST)  # chunks of 2, 2 and 1
    assert trace_count() == traced
    assert chunked.shape == (5, 40, 40, 3) and chunked_masks.shape == (5, 40, 40, 1)
    np.testing.assert_allclose(chunked.numpy(), whole.numpy(), atol=1e-4)
    np.testing.assert_allclose(chunked_masks.numpy(), whole_masks.numpy(), rtol=1e-3, atol=1e-7)


@pytest.mark.skipif(
    bool(tf.config.list_logical_devices("GPU")), reason="on a GPU the whole batch runs at once"
)
def test_on_cpu_the_default_batch_runs_in_chunks_of_about_32_crops(model):
    class Chunks(Callback):
        def __init__(self):
            self.sizes = []

        def on_start(self, info):
            self.sizes.append(info["batch_size"])

    chunks = Chunks()
    settings = {**FAST, "nb_crops": 16}
    images, _ = maco(Neuron(model, "logits", [0, 1, 2, 3, 4]), nb_steps=2, callbacks=[chunks], **settings)
    assert chunks.sizes == [2, 2, 1]  # 32 crops per model pass at most
    whole, _ = maco(Neuron(model, "logits", [0, 1, 2, 3, 4]), nb_steps=2, batch_size=5, **settings)
    np.testing.assert_allclose(images.numpy(), whole.numpy(), atol=1e-4)


def test_a_subset_of_items_renders_the_same_images(model):
    objective = Neuron(model, "logits", [0, 1, 2, 3])
    whole, _ = maco(objective, nb_steps=3, **FAST)
    subset, _ = maco(objective, nb_steps=3, items=[3, 1], **FAST)
    np.testing.assert_allclose(subset.numpy(), whole.numpy()[[3, 1]], atol=1e-4)


def test_history_joins_chunks(model):
    history = History()
    maco(Neuron(model, "logits", [0, 1, 2]), nb_steps=3, batch_size=2, callbacks=[history], **FAST)
    assert history.values.shape == (3, 3)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(batch_size=0), "`batch_size` must be a positive int"),
        (dict(items=[0, 4]), "`items` must be a non-empty list of batch positions in 0..3"),
        (dict(items=[]), "`items` must be a non-empty list"),
    ],
)
def test_bad_chunking_arguments(model, kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
        maco(Neuron(model, "logits", [0, 1, 2, 3]), nb_steps=1, **FAST, **kwargs)
