"""The compiled step and the loop around it: nothing retraces, chunks and passes change how, not what."""

import gc
import warnings
import weakref

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import BASELINE, CHUNKED, LINEAR, ONE_STEP, RISE, TWO_STEPS, conv_classifier, watched_model

from xplique_maco import Callback, Channel, Layer, Neuron, Snapshots, StalledWarning, evaluate, fourier, maco
from xplique_maco._rendering.chunk import centre_on_transparency
from xplique_maco._rendering.step import _STEPS, crop_passes, trace_count


def test_no_retrace_for_other_targets_coefficients_seeds_or_rates(model):
    def objective(index, coefficient):
        return Neuron(model, "logits", index) + coefficient * Channel(model, "conv2", index)

    maco(objective(1, 0.5), nb_steps=2, seed=0, **RISE)
    traced = trace_count()
    maco(objective(7, 2.0), nb_steps=2, seed=9, learning_rate=0.3, noise=0.1, **RISE)
    maco(objective(7, 2.0), nb_steps=3, seed=9, learning_rate=(2.0, 0.01), **RISE)
    maco(objective(3, -1.0), nb_steps=4, seed=None, values_range=(-1, 1), **RISE)
    assert trace_count() == traced
    maco(Layer(model, "conv1"), nb_steps=2, seed=0, **RISE)  # another objective structure traces once
    assert trace_count() == traced + 1


def test_fourier_and_maco_use_separate_compiled_steps(model):
    objective = Neuron(model, "logits", 1)
    maco(objective, **BASELINE)
    fourier(objective, **BASELINE)
    traced = trace_count()
    maco(Neuron(model, "logits", 4), **BASELINE)
    fourier(Neuron(model, "logits", 4), **BASELINE)
    assert trace_count() == traced
    assert evaluate(objective, tf.zeros((1, 32, 32, 3))).shape == (1,)


def test_compiled_steps_are_freed_with_their_model():
    model = conv_classifier(name="short_lived")
    maco(Neuron(model, "logits", 0), **ONE_STEP)
    alive = weakref.ref(model.get_layer("conv1"))
    assert model in _STEPS
    del model
    for _ in range(3):  # the cache entry goes first, then the feature model's own reference cycles
        gc.collect()
    assert alive() is None


def test_learning_rate_decays_from_first_to_last(model):
    def changes(learning_rate):
        snapshots = Snapshots(every=1)
        maco(
            Layer(model, "conv2"),
            nb_steps=6,
            seed=3,
            learning_rate=learning_rate,
            callbacks=[snapshots],
            **RISE,
        )
        return np.abs(np.diff(snapshots.images, axis=0)).mean(axis=(1, 2, 3, 4))  # change at steps 1..5

    constant, decaying = changes(0.5), changes((0.5, 1e-6))
    assert decaying[0] > 0.5 * constant[0]  # early steps are close to `first`
    assert decaying[-1] < 1e-3 * constant[-1]  # the last step uses `last`: the image barely moves
    np.testing.assert_array_equal(changes((0.5, 0.5)), constant)  # a constant pair is a constant rate


def test_transparency_shows_where_the_objective_looks():
    # The model sees only the left half of its input.
    keras.utils.set_random_seed(2)
    inputs = keras.Input((32, 32, 3))
    left = keras.layers.Cropping2D(((0, 0), (0, 16)))(inputs)
    features = keras.layers.Conv2D(8, 3, activation="relu", name="conv")(left)
    model = keras.Model(inputs, features)
    _, transparency = maco(
        Layer(model, "conv"),
        nb_steps=5,
        image_shape=(32, 32),
        nb_crops=2,
        crop_size=1.0,
        wrap_crops=False,  # crops that wrap around would shift the image under the model
        seed=0,
    )
    mask = transparency[0, :, :, 0].numpy()
    assert mask.min() >= 0
    assert mask[:, :15].mean() > 100 * mask[:, 17:].mean() + 1e-12


def test_periodic_images_are_returned_centred_on_their_transparency():
    images = np.zeros((2, 20, 30, 3), np.float32)
    masks = np.zeros((2, 20, 30, 1), np.float32)
    masks[0, [19, 0, 1, 2], 28:30] = 1.0  # one blob cut by both edges
    images[0, [19, 0, 1, 2], 28:30] = 5.0
    masks[1, 5, 7] = 1.0
    images[1, 5, 7] = 7.0
    centred_images, centred_masks = centre_on_transparency(tf.constant(images), tf.constant(masks))
    rows, columns = np.nonzero(centred_masks.numpy()[0, :, :, 0])
    assert (rows.min(), rows.max(), columns.min(), columns.max()) == (9, 12, 14, 15)  # whole, in the middle
    np.testing.assert_array_equal(centred_images.numpy()[0, 9:13, 14:16, 0], 5.0)  # moved with its mask
    assert np.argwhere(centred_masks.numpy()[1, :, :, 0]).tolist() == [[10, 15]]
    np.testing.assert_allclose(np.sort(centred_images.numpy().ravel()), np.sort(images.ravel()))  # a roll


def test_maco_centres_what_the_model_looked_at(model):
    _, transparency = maco(
        Layer(model, "conv1"), nb_steps=6, image_shape=(48, 48), nb_crops=4, seed=2, verbose=0
    )
    weights = transparency[0, :, :, 0].numpy()
    for axis in (0, 1):
        profile = weights.sum(axis=1 - axis)
        angle = 2 * np.pi * np.arange(48) / 48
        centre = (
            np.arctan2((profile * np.sin(angle)).sum(), (profile * np.cos(angle)).sum()) * 48 / (2 * np.pi)
        )
        assert abs(centre % 48 - 24) <= 1.0


def test_chunks_reuse_one_compiled_step_and_match_the_whole_batch(model):
    objective = Neuron(model, "logits", [0, 1, 2, 3, 4])
    whole, whole_masks = maco(objective, nb_steps=4, **CHUNKED)
    maco(Neuron(model, "logits", [5, 6]), nb_steps=1, **CHUNKED)  # the 2-item shape
    maco(Neuron(model, "logits", 7), nb_steps=1, **CHUNKED)  # the 1-item shape
    traced = trace_count()
    chunked, chunked_masks = maco(objective, nb_steps=4, batch_size=2, **CHUNKED)  # chunks of 2, 2 and 1
    assert trace_count() == traced
    assert chunked.shape == (5, 40, 40, 3) and chunked_masks.shape == (5, 40, 40, 1)
    np.testing.assert_allclose(chunked.numpy(), whole.numpy(), atol=1e-4)
    np.testing.assert_allclose(chunked_masks.numpy(), whole_masks.numpy(), rtol=1e-3, atol=1e-7)


@pytest.mark.slow
def test_crops_per_pass_splits_the_model_passes_and_keeps_the_images():
    seen = []
    objective = Neuron(watched_model(seen), -1, [0, 1, 2])
    settings = {**CHUNKED, "nb_crops": 5, "batch_size": 3, **LINEAR}

    def passes():  # batch sizes the model was traced with inside a step (not shape inference)
        return [size for size in seen if size not in (None, 1)]

    whole, whole_masks = maco(objective, nb_steps=4, **settings)
    assert passes() == [15]  # all 3 x 5 crops in one pass
    seen.clear()
    split, split_masks = maco(objective, nb_steps=4, crops_per_pass=6, **settings)
    assert passes() == [6, 6, 3]  # crops 0-1, 2-3 and 4 of each of the 3 images
    np.testing.assert_allclose(split.numpy(), whole.numpy(), atol=1e-4)
    np.testing.assert_allclose(split_masks.numpy(), whole_masks.numpy(), rtol=1e-3, atol=1e-7)
    # With glances (crops 0 and 1 of each image) the passes cut through them just the same.
    glanced, _ = maco(objective, nb_steps=4, glance=0.4, **settings)
    split_glanced, _ = maco(objective, nb_steps=4, glance=0.4, crops_per_pass=6, **settings)
    assert np.abs(glanced.numpy() - whole.numpy()).max() > 1e-3
    np.testing.assert_allclose(split_glanced.numpy(), glanced.numpy(), atol=1e-4)


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


def nan_model():
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(2, 3, name="conv")(inputs)
    undefined = keras.layers.Lambda(lambda t: keras.ops.log(t - 100.0), name="log")(
        x
    )  # log of negatives: NaN
    return keras.Model(inputs, undefined)


def dead_model():
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(2, 3, kernel_initializer="zeros", bias_initializer="zeros", name="conv")(inputs)
    return keras.Model(inputs, keras.layers.ReLU(name="relu")(x))


def test_nan_objective_warns_and_never_reaches_the_images():
    with pytest.warns(RuntimeWarning, match="NaN or infinite at the last step for batch items \\[0\\]"):
        images, transparencies = maco(Channel(nan_model(), "log", 0), **{**TWO_STEPS, "nb_steps": 5})
    assert np.isfinite(images.numpy()).all() and np.isfinite(transparencies.numpy()).all()


def test_vanishing_gradient_leaves_a_finite_image():
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        images, transparencies = maco(Channel(dead_model(), "relu", 1), **{**TWO_STEPS, "nb_steps": 5})
    # A zero gradient is no numerical error: the one warning says the unit never moved.
    assert [warning.category for warning in record] == [StalledWarning]
    assert np.isfinite(images.numpy()).all()
    assert float(tf.reduce_max(transparencies)) == 0.0


def resident_megabytes() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


@pytest.mark.slow
def test_fifty_calls_neither_retrace_nor_grow_memory(model):
    def call(index):
        settings = {**TWO_STEPS, "seed": index}
        maco(
            Neuron(model, "logits", index % 10) + 0.1 * index * Channel(model, "conv2", index % 16),
            **settings,
        )

    for index in range(5):  # warm up: traces, caches, allocator pools
        call(index)
    gc.collect()
    traced, before = trace_count(), resident_megabytes()
    for index in range(50):
        call(index)
    gc.collect()
    grown = resident_megabytes() - before
    print(f"RSS growth over 50 maco calls: {grown:.1f} MB")  # shown with pytest -s
    assert trace_count() == traced
    assert grown < 40, f"RSS grew by {grown:.1f} MB over 50 calls"


def test_keyboard_interrupt_leaves_tensorflow_usable(model):
    class Interrupt(Callback):
        def on_step(self, step):
            if step.index == 2:
                raise KeyboardInterrupt

    objective = Neuron(model, "logits", [1, 2])
    with pytest.raises(KeyboardInterrupt):
        maco(objective, callbacks=[Interrupt()], **{**TWO_STEPS, "nb_steps": 6})
    after, _ = maco(objective, **{**TWO_STEPS, "nb_steps": 6})
    fresh, _ = maco(objective, **{**TWO_STEPS, "nb_steps": 6})
    np.testing.assert_array_equal(after.numpy(), fresh.numpy())
