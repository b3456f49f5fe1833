"""Feature accentuation: the run starts at the photo, the unit rises above the photo's value, the
closeness weight keeps the image near its photo, the magnitude stays the photo's, bad inputs fail
early with clear errors."""

import numpy as np
import pytest
import skimage.data
import tensorflow as tf
from helpers import assert_refused

from xplique_maco import Callback, EarlyStopping, Inversion, Neuron, accentuate, evaluate
from xplique_maco._rendering.photo import PhotoSeeds
from xplique_maco._rendering.step import trace_count

LAYER = "conv1"
# 32 x 32 images at the tiny model's input size; 4 nearly whole crops per step.
FAST = dict(nb_crops=4, seed=0, verbose=0)


@pytest.fixture(scope="module")
def photos():
    """Chelsea and coffee, square and shrunk to 32 x 32, in [0, 1]."""

    def square(image):
        side = min(image.shape[:2])
        left = (image.shape[1] - side) // 2
        return tf.image.resize(image[:side, left : left + side] / 255.0, (32, 32), antialias=True).numpy()

    return np.stack([square(skimage.data.chelsea()), square(skimage.data.coffee())]).astype("float32")


def _closeness(model, images, photos):
    """The cosine similarity of each image's conv1 activations with its photo's."""
    return evaluate(Inversion(model, LAYER, photos), images)


def test_the_first_image_is_the_photo(model, photos):
    """One step of 1e-6 radians: the rendered image is the photo, up to float rounding."""
    images, _ = accentuate(Neuron(model, -1, 3), photos, LAYER, nb_steps=1, learning_rate=1e-6, **FAST)
    assert np.abs(images.numpy() - photos).max() < 1e-4


def test_the_unit_rises_above_the_photos_value_and_the_magnitude_stays_the_photos(model, photos):
    objective = Neuron(model, -1, [3, 7])
    images, transparencies = accentuate(
        objective, photos, LAYER, closeness=0.01, nb_steps=24, learning_rate=(0.3, 0.03), **FAST
    )
    before, after = evaluate(objective, photos), evaluate(objective, images)
    assert (after > before + 0.01).all(), (before, after)  # the tiny model's logits are about 0.1
    assert np.abs(images.numpy() - photos).mean() > 0.01  # it did change the photos
    assert transparencies.shape == (2, 32, 32, 1) and (transparencies.numpy() >= 0).all()
    start, end = (PhotoSeeds.from_photos(x, (0.0, 1.0)).magnitude for x in (photos, images.numpy()))
    assert np.abs(end - start).max() < 1e-3 * start.max()


def test_a_larger_closeness_stays_closer_to_the_photo(model, photos):
    objective = Neuron(model, -1, 3)
    loose, _ = accentuate(objective, photos, LAYER, closeness=0.0, nb_steps=24, **FAST)
    tight, _ = accentuate(objective, photos, LAYER, closeness=1.0, nb_steps=24, **FAST)
    # 1 - similarity: about 0.01 and 0.03 (chelsea), 0.01 and 0.08 (coffee)
    assert (1 - _closeness(model, tight, photos) < 0.5 * (1 - _closeness(model, loose, photos))).all()
    pixels = [np.abs(images.numpy() - photos).mean(axis=(1, 2, 3)) for images in (loose, tight)]
    assert (pixels[1] < 0.8 * pixels[0]).all(), pixels


def test_the_same_seed_gives_the_same_images_and_weights_share_one_compiled_step(model, photos):
    objective = Neuron(model, -1, 3)
    first, _ = accentuate(objective, photos, LAYER, closeness=2.0, nb_steps=3, **FAST)
    traced = trace_count()
    again, _ = accentuate(objective, photos, LAYER, closeness=2.0, nb_steps=3, **FAST)
    other_weight, _ = accentuate(objective, photos, LAYER, closeness=0.0, nb_steps=3, **FAST)
    assert trace_count() == traced
    np.testing.assert_array_equal(first.numpy(), again.numpy())
    other_seed, _ = accentuate(objective, photos, LAYER, closeness=2.0, nb_steps=3, **{**FAST, "seed": 1})
    assert np.abs(other_seed.numpy() - first.numpy()).max() > 1e-3
    assert np.abs(other_weight.numpy() - first.numpy()).max() > 1e-4


def test_one_photo_goes_with_every_unit_and_one_unit_with_every_photo(model, photos):
    units, _ = accentuate(Neuron(model, -1, [3, 7]), photos[0], LAYER, nb_steps=12, **FAST)
    assert units.shape == (2, 32, 32, 3)
    assert np.abs(units.numpy()[0] - units.numpy()[1]).max() > 0.01  # two units, two accentuations
    pictures, _ = accentuate(Neuron(model, -1, 3), photos, LAYER, nb_steps=12, **FAST)
    distances = np.abs(pictures.numpy()[:, None] - photos[None]).mean(axis=(2, 3, 4))
    assert (np.diag(distances) < 0.5 * distances[[0, 1], [1, 0]]).all()  # each near its own photo


def test_items_that_stop_early_keep_their_own_photos_spectrum(model, photos):
    """Item 0 stops at step 4 and leaves the compiled step; item 1 runs on with its own magnitude."""

    class Steps(Callback):
        def on_step(self, step):
            self.items = step.items

    steps = Steps()
    stopping = EarlyStopping(
        min_rise=None, criterion=lambda images, values: np.array(steps.items) == 0, every=4, min_steps=4
    )
    images, _ = accentuate(
        Neuron(model, -1, 3), photos, LAYER, nb_steps=12, callbacks=[steps, stopping], **FAST
    )
    assert stopping.stopped_at.tolist() == [4, 12]
    start, end = (PhotoSeeds.from_photos(x, (0.0, 1.0)).magnitude for x in (photos, images.numpy()))
    assert np.abs(end - start).max() < 1e-3 * start.max()


def _bad(model, good_photos, **changes):
    arguments = dict(
        objective=Neuron(model, -1, [3, 7]), photos=good_photos, layer=LAYER, nb_steps=1, verbose=0
    )
    return lambda: accentuate(**{**arguments, **changes})


@pytest.mark.parametrize(
    "changes, error, message",
    [
        (dict(objective="logits"), TypeError, "`objective` must be an Objective"),
        (dict(photos="chelsea"), ValueError, "`photos` must be an array of numbers"),
        (dict(photos=np.zeros((2, 32, 32))), ValueError, "`photos` must have shape (N, H, W, 3)"),
        (dict(photos=np.zeros((2, 32, 32, 1))), ValueError, "`photos` must have shape (N, H, W, 3)"),
        (dict(photos=np.zeros((0, 32, 32, 3))), ValueError, "`photos` must have shape (N, H, W, 3)"),
        (dict(photos=np.full((3, 32, 32, 3), 0.5)), ValueError, "3 photos for an objective of batch size 2"),
        (dict(photos=np.full((2, 32, 32, 3), 255.0)), ValueError, "outside `values_range` (0.0, 1.0)"),
        (dict(photos=np.full((2, 32, 32, 3), np.nan)), ValueError, "`photos` must be finite"),
        (dict(values_range=(1, 0)), ValueError, "`values_range` must satisfy low < high"),
        (dict(closeness=-1.0), ValueError, "`closeness` must be a finite number >= 0"),
        (dict(closeness=np.inf), ValueError, "`closeness` must be a finite number >= 0"),
        (dict(layer="conv_1"), ValueError, "conv_1"),
        (dict(photos=np.full((2, 2, 2, 3), 0.5)), ValueError, "`image_shape` (2, 2) is too small"),
        (dict(nb_steps=0), ValueError, "`nb_steps` must be a positive int"),
    ],
)
def test_bad_arguments_are_refused_before_anything_runs(model, photos, changes, error, message):
    assert_refused(_bad(model, photos, **changes), error, message)
