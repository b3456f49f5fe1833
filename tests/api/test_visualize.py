"""maco() and fourier(): the objective rises, results are reproducible, items and chunks as asked."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import (
    BASELINE,
    CHUNKED,
    LINEAR,
    ONE_STEP,
    RISE,
    assert_refused,
    at_input_size,
    conv_classifier,
    fully_convolutional,
    watched_model,
)

from xplique_maco import Callback, Channel, History, Layer, Neuron, evaluate, fourier, maco


def test_objective_rises(model):
    objective = Neuron(model, "logits", [2, 6])
    optimised, frozen = History(), History()
    start, _ = maco(objective, nb_steps=40, seed=3, learning_rate=1e-9, callbacks=[frozen], **RISE)
    end, _ = maco(objective, nb_steps=40, seed=3, callbacks=[optimised], **RISE)
    # Same seed, so the same crops and noise at every step: only the updates differ.
    last, unmoved = optimised.values[-5:].mean(axis=0), frozen.values[-5:].mean(axis=0)
    # Each item rises; together they rise by a tenth of where they started (class 6 of this
    # small model starts close to the highest value it reaches, whatever the seed).
    assert (last > unmoved).all(), (unmoved, last)
    assert (last - unmoved).sum() > 0.1 * np.abs(unmoved).sum(), (unmoved, last)
    # The whole image, which the run never shows the model whole, scores higher too.
    before = evaluate(objective, at_input_size(start))
    after = evaluate(objective, at_input_size(end))
    assert (after > before).all(), (before, after)
    assert (after - before).sum() > 0.1 * np.abs(before).sum(), (before, after)


def test_minimising_by_negation_lowers_the_objective(model):
    objective = Channel(model, "conv2", 5)
    up, _ = maco(objective, nb_steps=30, seed=1, **RISE)
    down, _ = maco(-objective, nb_steps=30, seed=1, **RISE)
    assert evaluate(objective, at_input_size(up)) > evaluate(objective, at_input_size(down))


def test_results_follow_the_attribution_api(model):
    images, transparencies = maco(
        Neuron(model, -1, [0, 1, 2]), nb_steps=3, values_range=(-1, 1), seed=0, **RISE
    )
    assert isinstance(images, tf.Tensor) and isinstance(transparencies, tf.Tensor)
    assert images.shape == (3, 48, 48, 3) and transparencies.shape == (3, 48, 48, 1)
    assert float(tf.reduce_min(images)) >= -1 and float(tf.reduce_max(images)) <= 1
    assert float(tf.reduce_min(transparencies)) >= 0


@pytest.mark.parametrize("image_shape", [(47, 61), (33, 33), (64, 40)])
def test_odd_and_non_square_sizes(model, image_shape):
    images, transparencies = maco(
        Layer(model, "conv1"), nb_steps=2, image_shape=image_shape, nb_crops=2, seed=0
    )
    assert images.shape == (1, *image_shape, 3) and transparencies.shape == (1, *image_shape, 1)


def test_same_seed_same_images_other_seed_other_images(model):
    objective = Channel(model, "conv2", [1, 2])
    first, first_mask = maco(objective, nb_steps=5, seed=11, **RISE)
    again, again_mask = maco(objective, nb_steps=5, seed=11, **RISE)
    other, _ = maco(objective, nb_steps=5, seed=12, **RISE)
    np.testing.assert_array_equal(first.numpy(), again.numpy())
    np.testing.assert_array_equal(first_mask.numpy(), again_mask.numpy())
    assert np.abs(first.numpy() - other.numpy()).mean() > 0.01


def test_a_unit_renders_the_same_image_alone_and_anywhere_in_any_batch(model):
    together, together_mask = maco(Neuron(model, "logits", [4, 8, 9]), nb_steps=8, seed=5, **RISE)
    # Each image's random stream is keyed on what it renders, not on its position: class 8 alone
    # and as item 0 of another batch give the image of item 1 above.
    alone, alone_mask = maco(Neuron(model, "logits", 8), nb_steps=8, seed=5, **RISE)
    moved, _ = maco(Neuron(model, "logits", [8, 0, 3, 5]), nb_steps=8, seed=5, **RISE)
    for image, mask in ((alone[0], alone_mask[0]), (moved[0], None)):
        np.testing.assert_allclose(together[1].numpy(), image.numpy(), atol=1e-4)
        if mask is not None:
            np.testing.assert_allclose(together_mask[1].numpy(), mask.numpy(), rtol=1e-3, atol=1e-6)
    assert np.abs(together[0].numpy() - moved[1].numpy()).mean() > 0.01  # another unit, another image


def test_a_unit_asked_for_twice_gets_two_different_images(model):
    images, _ = maco(Neuron(model, "logits", [8, 8]), nb_steps=8, seed=5, **RISE)
    alone, _ = maco(Neuron(model, "logits", 8), nb_steps=8, seed=5, **RISE)
    np.testing.assert_allclose(images[0].numpy(), alone[0].numpy(), atol=1e-4)  # the first is the unit's
    assert np.abs(images[0].numpy() - images[1].numpy()).mean() > 0.01


def test_a_subset_of_items_renders_the_same_images(model):
    objective = Neuron(model, "logits", [0, 1, 2, 3])
    whole, _ = maco(objective, nb_steps=3, **CHUNKED)
    subset, _ = maco(objective, nb_steps=3, items=[3, 1], **CHUNKED)
    np.testing.assert_allclose(subset.numpy(), whole.numpy()[[3, 1]], atol=1e-4)


def test_grayscale_and_many_channel_models_need_no_dataset():
    for channels in (1, 5):
        model = conv_classifier(channels=channels, name=f"cnn_{channels}")
        objective = Neuron(model, "logits", 3)
        start, _ = maco(objective, nb_steps=1, seed=0, **RISE)
        images, _ = maco(objective, nb_steps=30, seed=0, **RISE)
        assert images.shape == (1, 48, 48, channels)
        assert evaluate(objective, at_input_size(images)) > evaluate(objective, at_input_size(start))


def test_fully_convolutional_model_uses_model_input_size():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(4, 3, name="conv")(inputs))
    images, _ = maco(
        Neuron(model, "conv", 1),
        nb_steps=2,
        image_shape=(40, 40),
        nb_crops=2,
        model_input_size=(16, 16),
        seed=0,
    )
    assert images.shape == (1, 40, 40, 3)


def small_cnn(head: str, seed: int = 0) -> keras.Model:
    """Two conv blocks, then a Flatten (each position its own weights) or a global pooling."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(16, 3, activation="relu", padding="same", name="conv1")(inputs)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(32, 3, activation="relu", padding="same", name="conv2")(x)
    x = keras.layers.MaxPooling2D()(x)
    pooled = (keras.layers.Flatten if head == "flatten" else keras.layers.GlobalAveragePooling2D)(name=head)(
        x
    )
    return keras.Model(inputs, keras.layers.Dense(10, name="logits")(pooled))


@pytest.mark.slow
def test_a_flatten_head_gets_crops_inside_the_image_and_its_logits_rise():
    model = small_cnn("flatten")
    units = [1, 2, 3, 4]
    objective = Neuron(model, "logits", units)
    assert objective.fixed_layout == "Neuron(logits, [1, 2, 3, 4]) reads positions through 'flatten'"
    assert Neuron(small_cnn("pooled"), "logits", units).fixed_layout is None
    settings = dict(image_shape=(48, 48), model_input_size=(32, 32), seed=0, verbose=0)
    starts, _ = maco(Neuron(model, "logits", [0] * 16), nb_steps=1, learning_rate=1e-9, **settings)
    start_values = model(tf.image.resize(starts, (32, 32))).numpy()[:, units]  # 16 random starts

    def score(images):  # the whole image, in standard deviations of the random starts
        values = model(tf.image.resize(images, (32, 32))).numpy()[np.arange(4), units]
        return (values - start_values.mean(axis=0)) / start_values.std(axis=0)

    default, _ = maco(objective, nb_steps=24, **settings)
    wrapped, _ = maco(objective, nb_steps=24, wrap_crops=True, **settings)
    # Measured: 4.9 to 7.8 by default, 1.0 to 2.3 with wrapped crops (averaged over every shift).
    assert score(default).min() > 3.5
    assert score(default).mean() > 2 * score(wrapped).mean()


def test_a_neuron_at_one_position_is_one_object_where_a_channel_is_a_texture():
    model = small_cnn("pooled")
    settings = dict(nb_steps=24, image_shape=(48, 48), model_input_size=(32, 32), seed=0, verbose=0)

    def centre_share(objective, **extra):  # of the transparency, in the central third (uniform: 1/9)
        _, transparency = maco(objective, **settings, **extra)
        mask = transparency[0, :, :, 0].numpy()
        return mask[16:32, 16:32].sum() / mask.sum()

    neuron = Neuron(model, "conv2", 5)
    assert neuron.fixed_layout == "Neuron(conv2, 5) reads one position of 'conv2'"
    assert Channel(model, "conv2", 5).fixed_layout is None
    assert centre_share(neuron) > 0.3
    assert centre_share(neuron, wrap_crops=True) < 0.2  # wrapped, a neuron is a weak channel


@pytest.mark.skipif(
    bool(tf.config.list_logical_devices("GPU")), reason="on a GPU the whole batch runs at once"
)
@pytest.mark.slow
def test_on_cpu_the_default_batch_runs_in_chunks_of_about_32_crops(model):
    class Chunks(Callback):
        def on_start(self, run):
            self.sizes = [len(chunk) for chunk in run.chunks]

    chunks = Chunks()
    settings = {**CHUNKED, "nb_crops": 16, **LINEAR}  # passes of 8 crops per image (16: last chunk) vs 4
    images, _ = maco(Neuron(model, "logits", [0, 1, 2, 3, 4]), nb_steps=2, callbacks=[chunks], **settings)
    assert chunks.sizes == [2, 2, 1]  # 32 crops per model pass at most
    whole, _ = maco(Neuron(model, "logits", [0, 1, 2, 3, 4]), nb_steps=2, batch_size=5, **settings)
    np.testing.assert_allclose(images.numpy(), whole.numpy(), atol=1e-4)


@pytest.mark.skipif(bool(tf.config.list_logical_devices("GPU")), reason="on a GPU all crops go in one pass")
def test_on_cpu_the_model_passes_hold_about_16_crops():
    seen = []
    model = watched_model(seen)
    maco(Neuron(model, -1, 0), nb_steps=1, **{**CHUNKED, "nb_crops": 32})
    assert [size for size in seen if size not in (None, 1)] == [16, 16]
    seen.clear()
    maco(Neuron(model, -1, [0, 1, 2, 3]), nb_steps=1, **{**CHUNKED, "nb_crops": 8})  # one chunk of 4
    assert [size for size in seen if size not in (None, 1)] == [16, 16]


def test_crops_per_pass_bounds_the_default_chunks(model):
    sizes = []

    class Chunks(Callback):
        def on_start(self, run):
            sizes.extend(len(chunk) for chunk in run.chunks)

    maco(Neuron(model, "logits", [0, 1, 2]), nb_steps=1, crops_per_pass=2, callbacks=[Chunks()], **CHUNKED)
    assert sizes == [2, 1]


def test_fourier_baseline_keeps_the_contract_and_rises(model):
    history = History()
    objective = Neuron(model, "logits", [2, 6])
    images, transparencies = fourier(objective, callbacks=[history], **BASELINE)
    assert images.shape == (2, 48, 48, 3) and transparencies.shape == (2, 48, 48, 1)
    assert float(tf.reduce_min(images)) >= 0 and float(tf.reduce_max(images)) <= 1
    assert (history.values[-5:].mean(axis=0) > history.values[:5].mean(axis=0)).all()
    again, _ = fourier(objective, **BASELINE)
    np.testing.assert_array_equal(images.numpy(), again.numpy())


def test_not_an_objective():
    with pytest.raises(TypeError, match="`objective` must be an Objective"):
        maco(lambda x: x)


def test_passing_the_model_itself_says_what_to_write_instead(model):
    with pytest.raises(TypeError, match=r"received the model .* maco\(Neuron\(model, layer, index\)\)"):
        maco(model)


def chunked_with(**kwargs):
    """maco on four logits of the tiny classifier, one step, in chunks."""
    return lambda m: maco(Neuron(m, "logits", [0, 1, 2, 3]), nb_steps=1, **CHUNKED, **kwargs)


# (bad call on the tiny classifier, error type, words the message must contain)
ERRORS = [
    pytest.param(
        lambda m: maco("Neuron"), TypeError, "`objective` must be an Objective", id="objective of wrong type"
    ),
    pytest.param(
        lambda m: maco(Layer(m, "conv1"), strategy="gpu"),
        TypeError,
        "tf.distribute.Strategy",
        id="strategy of wrong type",
    ),
    pytest.param(
        lambda m: maco(Layer(m, "conv1"), items=[1]),
        ValueError,
        "batch positions in 0..0",
        id="items out of range",
    ),
    pytest.param(
        chunked_with(items=[0, 4]),
        ValueError,
        "`items` must be a non-empty list of batch positions in 0..3",
        id="items [0, 4]",
    ),
    pytest.param(chunked_with(items=[]), ValueError, "`items` must be a non-empty list", id="items []"),
    pytest.param(
        chunked_with(crops_per_pass=2, batch_size=4),
        ValueError,
        "`crops_per_pass` 2 is smaller than the 4 images",
        id="crops_per_pass below batch_size",
    ),
    pytest.param(
        lambda m: maco(Neuron(m, -1, 1), nb_steps=2, model_input_size=(20, 20)),
        ValueError,
        "conflicts with the model's input shape",
        id="model_input_size (20, 20)",
    ),
    pytest.param(
        lambda m: maco(Layer(m, "conv1"), model_input_size=(2, 2)),
        ValueError,
        "conflicts",
        id="model_input_size too small",
    ),
    pytest.param(
        lambda m: maco(Neuron(fully_convolutional(), "conv", 0), model_input_size=(2, 2), **ONE_STEP),
        ValueError,
        "cannot take crops of size (2, 2)",
        id="crops too small for the model",
    ),
]


@pytest.mark.parametrize("call, error, message", ERRORS)
def test_bad_input_gets_a_clear_error_before_any_computation(model, call, error, message):
    assert_refused(lambda: call(model), error, message)
