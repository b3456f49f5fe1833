"""At scale: chunks share one compiled step, subsets and chunks give the same images as the whole."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from xplique_maco import Callback, History, Neuron, maco
from xplique_maco._engine import crop_passes, trace_count

FAST = dict(image_shape=(40, 40), nb_crops=2, crop_size=(0.5, 1.0), seed=3, verbose=0)
# For comparing runs whose gradients are summed in a different order (other model passes): with
# plain SGD the images move by the gradient, so they differ by rounding only. Nadam divides each
# phase's gradient by its size, and most phase gradients are about its epsilon (1e-7): a ReLU input
# that rounding puts on the other side of 0 changes them by as much, and Nadam made differences of
# 1e-3 to 0.18 from that for 2% of random weights (4 steps). SGD at 30 moves the images about
# half as far as Nadam's (1, 0.1) in 4 steps.
LINEAR = dict(optimizer="sgd", learning_rate=30.0)


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
        def on_start(self, run):
            self.sizes = [len(chunk) for chunk in run.chunks]

    chunks = Chunks()
    settings = {**FAST, "nb_crops": 16, **LINEAR}  # passes of 8 crops per image (16: last chunk) vs 4
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
        (dict(crops_per_pass=0), "`crops_per_pass` must be a positive int, received 0"),
        (dict(crops_per_pass=2, batch_size=4), "`crops_per_pass` 2 is smaller than the 4 images"),
    ],
)
def test_bad_chunking_arguments(model, kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
        maco(Neuron(model, "logits", [0, 1, 2, 3]), nb_steps=1, **FAST, **kwargs)


class BatchSizes(keras.layers.Layer):
    """Identity that notes the batch size of every model pass it is traced in."""

    def __init__(self, seen, **kwargs):
        super().__init__(**kwargs)
        self.note = seen.append  # not the list itself: Keras would track a copy of it

    def call(self, inputs):
        self.note(inputs.shape[0])
        return inputs


def watched_model(seen: list) -> keras.Model:
    keras.utils.set_random_seed(0)  # the same weights whatever ran before, as conftest's models
    inputs = keras.Input((32, 32, 3))
    features = keras.layers.Conv2D(8, 3, activation="relu")(BatchSizes(seen)(inputs))
    return keras.Model(inputs, keras.layers.Dense(4)(keras.layers.GlobalAveragePooling2D()(features)))


def test_crops_per_pass_splits_the_model_passes_and_keeps_the_images():
    seen = []
    objective = Neuron(watched_model(seen), -1, [0, 1, 2])
    settings = {**FAST, "nb_crops": 5, "batch_size": 3, **LINEAR}

    def passes():  # batch sizes the model was traced with inside a step (not shape inference)
        return [size for size in seen if size not in (None, 1)]

    whole, whole_masks = maco(objective, nb_steps=4, **settings)
    assert passes() == [15]  # all 3 x 5 crops in one pass
    seen.clear()
    split, split_masks = maco(objective, nb_steps=4, crops_per_pass=6, **settings)
    assert passes() == [6, 6, 3]  # crops 0-1, 2-3 and 4 of each of the 3 images
    np.testing.assert_allclose(split.numpy(), whole.numpy(), atol=1e-4)
    np.testing.assert_allclose(split_masks.numpy(), whole_masks.numpy(), rtol=1e-3, atol=1e-7)


@pytest.mark.skipif(bool(tf.config.list_logical_devices("GPU")), reason="on a GPU all crops go in one pass")
def test_on_cpu_the_model_passes_hold_about_16_crops():
    seen = []
    model = watched_model(seen)
    maco(Neuron(model, -1, 0), nb_steps=1, **{**FAST, "nb_crops": 32})
    assert [size for size in seen if size not in (None, 1)] == [16, 16]
    seen.clear()
    maco(Neuron(model, -1, [0, 1, 2, 3]), nb_steps=1, **{**FAST, "nb_crops": 8})  # one chunk of 4
    assert [size for size in seen if size not in (None, 1)] == [16, 16]


def test_crops_per_pass_bounds_the_default_chunks(model):
    sizes = []

    class Chunks(Callback):
        def on_start(self, run):
            sizes.extend(len(chunk) for chunk in run.chunks)

    maco(Neuron(model, "logits", [0, 1, 2]), nb_steps=1, crops_per_pass=2, callbacks=[Chunks()], **FAST)
    assert sizes == [2, 1]


@pytest.mark.parametrize(
    "batch, crops, per_pass, expected",
    [
        (1, 32, None, [(0, 32)]),
        (1, 32, 16, [(0, 16), (16, 32)]),
        (4, 8, 16, [(0, 4), (4, 8)]),
        (3, 5, 6, [(0, 2), (2, 4), (4, 5)]),
        (4, 8, 2, [(k, k + 1) for k in range(8)]),  # at least one crop of each image per pass
        (2, 4, 100, [(0, 4)]),
    ],
)
def test_crop_passes(batch, crops, per_pass, expected):
    assert crop_passes(batch, crops, per_pass) == expected
