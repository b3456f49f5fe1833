"""Models with several inputs: the image optimised, the other inputs fixed with `inputs=`."""

import keras
import numpy as np
import pytest
from helpers import ONE_STEP, RISE, assert_refused, at_input_size

from xplique_maco import History, Neuron, evaluate, fourier, maco
from xplique_maco._objectives.extractor import feature_model
from xplique_maco._rendering.memory import crop_cost

META = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 3.0, -2.0]], np.float32)


def image_and_metadata(image_first: bool = True) -> keras.Model:
    """A classifier of an image and a metadata vector: the vector gates the image's features, so
    the logits (and the best image for them) depend on it."""
    keras.utils.set_random_seed(0)
    image, meta = keras.Input((32, 32, 3), name="image"), keras.Input((4,), name="meta")
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv1")(image)
    x = keras.layers.Conv2D(16, 3, strides=2, activation="relu", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    gate = keras.layers.Dense(16, activation="sigmoid", name="gate")(meta)
    logits = keras.layers.Dense(3, name="logits")(keras.layers.Multiply()([x, gate]))
    inputs = {"image": image, "meta": meta} if image_first else [meta, image]
    return keras.Model(inputs, logits, name="image_and_meta")


def siamese() -> keras.Model:
    """Two images through one shared encoder, compared: which image to optimise is the user's."""
    keras.utils.set_random_seed(1)
    encoder = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Conv2D(8, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
        ],
        name="encoder",
    )
    left, right = keras.Input((32, 32, 3), name="left"), keras.Input((32, 32, 3), name="right")
    joined = keras.layers.Concatenate(name="joined")([encoder(left), encoder(right)])
    return keras.Model([left, right], keras.layers.Dense(2, name="score")(joined), name="siamese")


@pytest.fixture(scope="module")
def metadata_model():
    return image_and_metadata()


@pytest.mark.parametrize("image_first", [True, False], ids=["image first", "metadata first"])
def test_the_objective_rises_with_the_other_input_fixed(image_first):
    model = image_and_metadata(image_first)
    objective = Neuron(model, "logits", [1, 1])  # one unit, a row each
    optimised, frozen = History(), History()
    settings = dict(nb_steps=30, seed=0, verbose=0, inputs={"meta": META}, **RISE)
    start, _ = maco(objective, learning_rate=1e-9, callbacks=[frozen], **settings)
    end, _ = maco(objective, callbacks=[optimised], **settings)
    unmoved, last = frozen.values[-5:].mean(axis=0), optimised.values[-5:].mean(axis=0)
    assert (last > unmoved + 0.05 * np.abs(unmoved)).all(), (unmoved, last)
    # The whole image scores higher too, read with the same metadata rows.
    before = evaluate(objective, {"image": at_input_size(start), "meta": META})
    after = evaluate(objective, {"image": at_input_size(end), "meta": META})
    assert (after > before).all(), (before, after)


def test_each_image_goes_in_with_its_own_row_in_chunks_and_passes(metadata_model):
    objective = Neuron(metadata_model, "logits", [1, 1])
    settings = dict(nb_steps=6, seed=2, verbose=0, **RISE)
    # Two images of one unit, each with its row, in one chunk of two passes of two crops ...
    together, _ = maco(objective, inputs={"meta": META}, crops_per_pass=4, batch_size=2, **settings)
    # ... in chunks of one image ...
    chunked, _ = maco(objective, inputs={"meta": META}, batch_size=1, **settings)
    np.testing.assert_allclose(chunked.numpy(), together.numpy(), atol=1e-4)
    # ... and rendered as item 1 alone (its stream and its row).
    alone, _ = maco(objective, inputs={"meta": META}, items=[1], **settings)
    np.testing.assert_allclose(alone.numpy()[0], together.numpy()[1], atol=1e-4)
    # The rows matter: the other row gives another image, and one row for both gives the first twice.
    swapped, _ = maco(objective, inputs={"meta": META[::-1]}, items=[1], **settings)
    assert np.abs(swapped.numpy()[0] - together.numpy()[1]).max() > 0.05
    shared, _ = maco(objective, inputs={"meta": META[0]}, **settings)
    np.testing.assert_allclose(shared.numpy()[0], together.numpy()[0], atol=1e-4)


def test_an_integer_input_is_fixed_too():
    keras.utils.set_random_seed(2)
    image, category = (
        keras.Input((32, 32, 3), name="image"),
        keras.Input((1,), dtype="int32", name="category"),
    )
    x = keras.layers.GlobalAveragePooling2D()(
        keras.layers.Conv2D(8, 3, activation="relu", name="conv")(image)
    )
    embedded = keras.layers.Flatten()(keras.layers.Embedding(5, 8)(category))
    model = keras.Model(
        [image, category], keras.layers.Dense(2, name="out")(keras.layers.Multiply()([x, embedded]))
    )
    history = History()
    maco(
        Neuron(model, "out", [0, 1]),
        inputs={"category": [[3], [1]]},
        nb_steps=20,
        seed=0,
        callbacks=[history],
        **RISE,
        verbose=0,
    )
    assert (history.values[-5:].mean(axis=0) > history.values[:5].mean(axis=0)).all(), history.values
    assert_refused(
        lambda: maco(Neuron(model, "out", 0), inputs={"category": [[2.5]]}, **ONE_STEP),
        ValueError,
        "`inputs['category']` has fractional values, but the input takes int32",
    )


def test_one_image_of_a_siamese_model_is_optimised_when_the_other_is_fixed():
    model = siamese()
    reference = np.random.default_rng(0).uniform(size=(1, 32, 32, 3)).astype("float32")
    history = History()
    images, _ = maco(
        Neuron(model, "score", 0),
        inputs={"right": reference},
        nb_steps=20,
        seed=0,
        callbacks=[history],
        verbose=0,
        **RISE,
    )
    assert images.shape == (1, 48, 48, 3)
    assert history.values[-5:].mean() > history.values[:5].mean()
    # fourier takes the same argument.
    baseline, _ = fourier(Neuron(model, "score", 0), inputs={"left": reference}, **ONE_STEP)
    assert baseline.shape == (1, 32, 32, 3)


# (bad `inputs`, on the image-and-metadata model unless said, error type, words the message must contain)
INPUT_ERRORS = [
    pytest.param(
        None,
        ValueError,
        "needs the value of every other one. Missing: 'meta' (None, 4). Give them as inputs={'meta': array}",
        id="missing",
    ),
    pytest.param(
        {"metadata": META},
        ValueError,
        "`inputs` names ['metadata'], which model 'image_and_meta' does not have; its inputs are ['image', 'meta']",
        id="unknown name",
    ),
    pytest.param(
        {"meta": np.zeros((2, 5))},
        ValueError,
        "`inputs['meta']` has shape (2, 5); input 'meta' of model 'image_and_meta' takes (None, 4): give (n, 4) with n 1 or 2",
        id="wrong width",
    ),
    pytest.param(
        {"meta": np.zeros((3, 4))}, ValueError, "give (n, 4) with n 1 or 2", id="three rows for two images"
    ),
    pytest.param(
        {"meta": META, "image": np.zeros((1, 32, 32, 3))},
        ValueError,
        "`inputs` fixes every input of model 'image_and_meta'",
        id="every input fixed",
    ),
    pytest.param({"meta": [[np.nan, 0, 0, 0]]}, ValueError, "`inputs['meta']` contains NaN", id="NaN"),
    pytest.param(["meta"], TypeError, "`inputs` must be a dict from input name to array", id="not a dict"),
    pytest.param(
        {"meta": "abcd"}, TypeError, "`inputs['meta']` must be an array of float32 values", id="text"
    ),
]


@pytest.mark.parametrize(("inputs", "error", "message"), INPUT_ERRORS)
def test_bad_inputs_get_a_clear_error_before_any_step(metadata_model, inputs, error, message):
    objective = Neuron(metadata_model, "logits", [0, 1])
    assert_refused(lambda: maco(objective, inputs=inputs, **ONE_STEP), error, message)


def test_which_image_to_optimise_is_asked_of_a_siamese_model():
    assert_refused(
        lambda: maco(Neuron(siamese(), "score", 0), **ONE_STEP),
        ValueError,
        "has 2 image inputs left free ('left', 'right'); MACO optimises one. Fix the others to images "
        "of your own, to optimise the one left: inputs={'right': images} or inputs={'left': images}",
    )


def test_a_single_input_model_takes_no_inputs(model):
    assert_refused(
        lambda: maco(Neuron(model, "logits", 0), inputs={"meta": META}, **ONE_STEP),
        ValueError,
        "Model 'tiny_cnn' has one input, 'image', the image MACO optimises",
    )


def test_evaluate_takes_every_input_by_name(metadata_model, inputs):
    images = inputs[:2]
    logits = keras.ops.convert_to_numpy(metadata_model({"image": images, "meta": META}))
    values = evaluate(Neuron(metadata_model, "logits", [0, 2]), {"image": images, "meta": META})
    np.testing.assert_allclose(values, [logits[0, 0], logits[1, 2]], rtol=1e-5)
    assert_refused(
        lambda: evaluate(Neuron(metadata_model, "logits", 0), {"image": images}),
        ValueError,
        "`inputs` as a dict must hold every input of model 'image_and_meta' by name, ['image', 'meta']",
    )


def test_the_memory_probe_feeds_the_other_inputs(metadata_model):
    extractor = feature_model(metadata_model, Neuron(metadata_model, "logits", 0).taps, image=0)
    cost = crop_cost(extractor, (32, 32, 3), "/device:CPU:0", (((4,), "float32"),))
    # At least the first convolution's activations (30 x 30 x 8 floats) per crop.
    assert cost >= 30 * 30 * 8 * 4
