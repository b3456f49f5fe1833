"""Inversion: the rendered image's activations approach a reference image's."""

import keras
import numpy as np
import pytest

from xplique_maco import Channel, Inversion, evaluate, maco
from xplique_maco._engine import trace_count


def photo_like(seed: int, size: int = 32) -> np.ndarray:
    """A smooth random image in [0, 1]: blobs, so a conv layer has structure to keep."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(size=(4, 4, 3))
    return np.kron(coarse, np.ones((size // 4, size // 4, 1))).astype("float32")


def cosine(model, layer, first, second):
    extractor = keras.Model(model.inputs[0], model.get_layer(layer).output)
    a, b = (extractor(x[None]).numpy().ravel() for x in (first, second))
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_value_is_the_cosine_similarity(model):
    first, second = photo_like(0), photo_like(1)
    objective = Inversion(model, "conv2", first)
    np.testing.assert_allclose(evaluate(objective, first[None]), 1.0, atol=1e-5)
    np.testing.assert_allclose(
        evaluate(objective, second[None]), cosine(model, "conv2", first, second), rtol=1e-4
    )


def test_rendering_approaches_each_reference(model):
    references = np.stack([photo_like(0), photo_like(1)])
    objective = Inversion(model, "conv2", references)
    assert objective.batch_size == 2 and "2 images" in repr(objective)
    images, _ = maco(objective, nb_steps=48, image_shape=(32, 32), nb_crops=2, crop_size=(0.9, 1.0), seed=0)
    images = images.numpy()
    start, _ = maco(objective, nb_steps=1, image_shape=(32, 32), nb_crops=2, learning_rate=1e-9, seed=0)
    for item, other in ((0, 1), (1, 0)):
        reached = cosine(model, "conv2", images[item], references[item])
        assert reached > cosine(model, "conv2", start.numpy()[item], references[item]) + 0.05
        assert reached > cosine(model, "conv2", images[item], references[other])


def test_combines_with_other_objectives_and_items_keep_their_reference(model):
    references = np.stack([photo_like(0), photo_like(1), photo_like(2)])
    objective = Inversion(model, "conv2", references) + 0.1 * Channel(model, "conv1", 2)
    settings = dict(nb_steps=3, image_shape=(32, 32), nb_crops=2, seed=4)
    whole, _ = maco(objective, **settings)
    part, _ = maco(objective, items=[2], **settings)
    np.testing.assert_allclose(part.numpy()[0], whole.numpy()[2], atol=1e-5)
    traced = trace_count()
    maco(Inversion(model, "conv2", photo_like(5)) + 0.1 * Channel(model, "conv1", 2), items=[0], **settings)
    assert trace_count() == traced  # another reference is another tensor, not another graph


@pytest.mark.parametrize(
    "image, message",
    [
        (np.zeros((32, 32, 1), "float32"), "must have shape (32, 32, 3)"),
        (np.zeros((2, 16, 16, 3), "float32"), "received shape (2, 16, 16, 3)"),
        (np.zeros((32, 3), "float32"), "must have shape"),
        (np.full((32, 32, 3), np.nan, "float32"), "finite"),
        ("photo.png", "array of numbers"),
    ],
)
def test_bad_references_are_refused(model, image, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Inversion(model, "conv2", image)


def test_all_zero_activation_is_refused():
    inputs = keras.Input((8, 8, 3))
    outputs = keras.layers.Conv2D(4, 3, use_bias=False, activation="relu", name="conv")(inputs)
    model = keras.Model(inputs, outputs)
    with pytest.raises(ValueError, match="nothing to invert"):
        Inversion(model, "conv", np.zeros((8, 8, 3), "float32"))


def test_reference_size_must_match_the_crops_of_a_fully_convolutional_model():
    inputs = keras.Input((None, None, 3))
    outputs = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    model = keras.Model(inputs, outputs)
    objective = Inversion(model, "conv", photo_like(0, size=48))
    traced = trace_count()
    with pytest.raises(ValueError, match="set `model_input_size`"):
        maco(objective, nb_steps=2, image_shape=(64, 64), model_input_size=(32, 32))
    assert trace_count() == traced
    images, _ = maco(objective, nb_steps=2, image_shape=(48, 48), model_input_size=(48, 48), nb_crops=2)
    assert images.shape == (1, 48, 48, 3)
