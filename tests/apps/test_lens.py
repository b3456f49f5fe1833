"""The lens on a model with planted concepts: the factorisation finds them, the importance ranks the
one wired to the logit first, each concept's MACO image drives its own detector; bad input is refused."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from xplique_maco import Channel, evaluate
from xplique_maco._apps.lens.concepts import coefficients_of
from xplique_maco._apps.lens.run import lens
from xplique_maco._objectives.head import head_model, last_spatial_layer
from xplique_maco._objectives.taps import find_tap

SIZE = 32
# Concept 0 is red paint, concept 1 vertical stripes (period 4, grey). Class 0's logit weighs the
# stripes three times the red, class 1 the other way round.
WIRING = np.array([[1.0, 3.0], [3.0, 1.0]], np.float32)  # (detectors, classes)
QUICK = dict(nb_steps=24, image_shape=(SIZE, SIZE), nb_crops=4, verbose=0, nb_designs=16)


def planted_model() -> keras.Model:
    """Image -> two detectors (red paint, vertical stripes) -> ReLU -> mean -> two logits."""
    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    detectors = keras.layers.Conv2D(2, (1, 4), padding="same", use_bias=False, name="detectors")
    x = keras.layers.ReLU(name="detected")(detectors(inputs))
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    dense = keras.layers.Dense(2, use_bias=False, name="logits")
    model = keras.Model(inputs, dense(x), name="planted")
    kernel = np.zeros((1, 4, 3, 2), np.float32)
    kernel[0, 1, :, 0] = [1.0, -0.5, -0.5]  # red minus the other colours, at one tap
    kernel[0, :, :, 1] = np.array([1.0, 1.0, -1.0, -1.0])[:, None] / 3.0  # luminance stripes
    detectors.set_weights([kernel])
    dense.set_weights([WIRING])
    return model


def planted_images(count: int, seed: int) -> np.ndarray:
    """Grey images, each with a patch of red paint and a patch of grey stripes in random places."""
    rng = np.random.default_rng(seed)
    images = np.full((count, SIZE, SIZE, 3), 0.5, np.float32)
    stripes = np.where(np.arange(12) % 4 < 2, 0.85, 0.15)[None, :, None]
    for image in images:
        top, left = rng.integers(0, SIZE - 12, size=2)
        image[top : top + 12, left : left + 12] = [0.9, 0.2, 0.2]
        top, left = rng.integers(0, SIZE - 12, size=2)
        image[top : top + 12, left : left + 12] = stripes
    return images


@pytest.fixture(scope="module")
def planted():
    model = planted_model()
    images = planted_images(8, seed=0)
    result = lens(
        model,
        (np.concatenate([images, images]), np.repeat([0, 1], 8)),
        nb_concepts=2,
        crops_per_image=12,
        **QUICK,
    )
    return model, images, result


def test_the_default_layer_is_the_last_spatial_one_and_its_head_is_the_rest(planted):
    model, images, _ = planted
    tap = last_spatial_layer(model)
    assert tap.key == "detected"
    activations = keras.Model(model.inputs, model.get_layer("detected").output)(images)
    np.testing.assert_allclose(head_model(model, tap)(activations), model(images), rtol=1e-5, atol=1e-5)


def test_the_factorisation_finds_the_planted_concepts(planted):
    _, _, result = planted
    for concepts in result:
        unit = concepts.vectors / np.linalg.norm(concepts.vectors, axis=1, keepdims=True)
        # Each concept is one detector: a direction close to one axis of the two channels.
        assert sorted(np.argmax(unit, axis=1).tolist()) == [0, 1]
        assert unit.max(axis=1).min() > 0.95


def test_the_importance_ranks_the_concept_wired_to_the_logit_first(planted):
    _, _, result = planted
    # Class 0 weighs the stripes (channel 1) most, class 1 the red (channel 0).
    assert np.argmax(result[0].vectors[0]) == 1 and np.argmax(result[1].vectors[0]) == 0
    for concepts in result:
        assert concepts.importance[0] > 2 * concepts.importance[1]
        assert concepts.share.sum() == pytest.approx(1.0)


def test_removing_the_most_important_concept_lowers_the_logit_more_than_the_least(planted):
    model, images, result = planted
    tap = find_tap(model, "detected")
    head = head_model(model, tap)
    activations = keras.Model(model.inputs, model.get_layer("detected").output)(images).numpy()
    for concepts in result:
        coefficients = coefficients_of(activations, concepts.vectors)
        whole = head(np.einsum("nhwk,kc->nhwc", coefficients, concepts.vectors)).numpy()[:, concepts.index]
        drops = []
        for rank in (0, 1):
            kept = coefficients.copy()
            kept[..., rank] = 0.0
            without = head(np.einsum("nhwk,kc->nhwc", kept, concepts.vectors)).numpy()[:, concepts.index]
            drops.append(float(np.mean(whole - without)))
        assert drops[0] > drops[1] > 0


def test_each_concepts_image_drives_its_own_detector_more_than_the_other(planted):
    model, _, result = planted
    detectors = Channel(model, "detected", [0, 1])
    for concepts in result:
        for rank, image in enumerate(concepts.images):
            own = int(np.argmax(concepts.vectors[rank]))
            values = evaluate(detectors, np.repeat(image[None], 2, axis=0))
            assert values[own] > 2 * values[1 - own], (concepts.index, rank, values)


def test_the_crops_shown_for_a_concept_hold_it_more_than_the_other_concepts_crops(planted):
    _, _, result = planted

    def redness(crops):
        return float((crops[..., 0] - crops[..., 1:].mean(axis=-1)).mean())

    def stripiness(crops):
        return float(np.abs(np.diff(crops.mean(axis=-1), axis=2)).mean())

    for concepts in result:
        red, stripes = sorted((0, 1), key=lambda rank: -concepts.vectors[rank][0])
        assert redness(concepts.crops[red]) > 2 * max(redness(concepts.crops[stripes]), 0.01)
        assert stripiness(concepts.crops[stripes]) > 2 * stripiness(concepts.crops[red])


def test_the_same_seed_gives_the_same_lens_and_a_class_alone_the_same_images(planted):
    model, images, result = planted
    alone = lens(model, (images, np.zeros(len(images), int)), nb_concepts=2, crops_per_image=12, **QUICK)
    np.testing.assert_array_equal(alone[0].vectors, result[0].vectors)
    # The same random streams: equal but for the rounding of model passes over other batch sizes.
    np.testing.assert_allclose(alone[0].images, result[0].images, atol=1e-5)
    np.testing.assert_allclose(alone[0].image, result[0].image, atol=1e-5)


# ---- what is refused, before any computation ----


def no_relu_model() -> keras.Model:
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(4, 3, name="linear")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(2, name="logits")(x))


def skip_model() -> keras.Model:
    inputs = keras.Input((SIZE, SIZE, 3))
    first = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="first")(inputs)
    second = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="second")(first)
    x = keras.layers.Add(name="sum")([first, second])
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(2, name="logits")(x))


@pytest.mark.parametrize(
    "build, arguments, message",
    [
        (planted_model, dict(layer="logits"), "which is not spatial"),
        (planted_model, dict(layer="detected", nb_concepts=40), "gives 24 crops for 40 concepts"),
        (planted_model, dict(nb_steps=0), "`nb_steps` must be a positive int"),
        (planted_model, dict(crop_size=(0.5, 2.0)), "`crop_size` must be a fraction"),
        (planted_model, dict(shard=(2, 2)), "`shard` must be a pair"),
        (planted_model, dict(classes=[5]), "Classes [5] have no images"),
        (planted_model, dict(steps=4), "unknown settings ['steps']"),
        (skip_model, dict(layer="second"), "is not on every path from the image to the output"),
        (no_relu_model, dict(layer="linear"), "has negative activations"),
    ],
)
def test_bad_input_is_refused_with_a_clear_error(build, arguments, message):
    images = planted_images(2, seed=1)
    settings = dict(nb_concepts=2, crops_per_image=12, verbose=0, nb_steps=2, image_shape=(SIZE, SIZE))
    with pytest.raises((ValueError, TypeError)) as raised:
        lens(build(), (images, np.zeros(2, int)), **{**settings, **arguments})
    assert message in str(raised.value), str(raised.value)


def test_a_dataset_of_images_and_labels_gives_the_same_lens_as_arrays():
    model, images = planted_model(), planted_images(4, seed=2)
    labels = np.array([0, 0, 1, 1])
    settings = dict(nb_concepts=2, crops_per_image=12, verbose=0, nb_steps=2, image_shape=(SIZE, SIZE))
    from_arrays = lens(model, (images, labels), **settings)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(3)
    from_dataset = lens(model, dataset, **settings)
    assert sorted(c.index for c in from_dataset) == [0, 1]
    np.testing.assert_allclose(from_dataset[1].vectors, from_arrays[1].vectors, rtol=1e-5)


# ---- into a folder: resumable and shardable by class ----

FOLDER = dict(
    nb_concepts=2, crops_per_image=12, verbose=0, nb_steps=2, image_shape=(SIZE, SIZE), nb_designs=8
)


def three_classes():
    images = planted_images(6, seed=3)
    return images, np.array([0, 0, 1, 1, 0, 1])


def test_a_rerun_skips_finished_classes_and_redoes_a_damaged_one(tmp_path):
    model, data = planted_model(), three_classes()
    first = lens(model, data, output=tmp_path, **FOLDER)
    assert sorted(c.index for c in first) == [0, 1]
    lines = [line for line in (tmp_path / "manifest.jsonl").read_text().splitlines()]
    assert len(lines) == 2
    entry = json.loads(lines[0])
    assert entry["kind"] == "lens" and entry["index"] == 0 and len(entry["concepts"]) == 2
    assert entry["concepts"][0]["importance"] >= entry["concepts"][1]["importance"]
    for name in entry["files"].values():
        assert (tmp_path / name).is_file()
    np.testing.assert_allclose(np.load(tmp_path / entry["files"]["vectors"]), first[0].vectors)
    stamps = {path: path.stat().st_mtime_ns for path in tmp_path.rglob("*.png")}
    assert len(lens(model, data, output=tmp_path, **FOLDER)) == 0  # everything finished: nothing redone
    assert {path: path.stat().st_mtime_ns for path in tmp_path.rglob("*.png")} == stamps
    (tmp_path / entry["files"]["concept_1_rgba"]).unlink()  # as a kill between two files would leave it
    again = lens(model, data, output=tmp_path, **FOLDER)
    assert [c.index for c in again] == [0]
    np.testing.assert_allclose(again[0].vectors, first[0].vectors)


def test_shards_are_disjoint_by_class_and_together_complete(tmp_path):
    model, data = planted_model(), three_classes()
    parts = [lens(model, data, output=tmp_path, shard=(shard, 2), **FOLDER) for shard in (0, 1)]
    assert [sorted(c.index for c in part) for part in parts] == [[0], [1]]
    indices = [
        json.loads(line)["index"]
        for shard in (0, 1)
        for line in (tmp_path / f"manifest.shard-{shard}-of-2.jsonl").read_text().splitlines()
    ]
    assert sorted(indices) == [0, 1]


def test_a_folder_made_with_other_settings_is_refused_before_anything_renders(tmp_path):
    model, data = planted_model(), three_classes()
    lens(model, data, output=tmp_path, classes=[0], **FOLDER)
    with pytest.raises(ValueError, match="nb_concepts: 2 vs 1"):
        lens(model, data, output=tmp_path, **{**FOLDER, "nb_concepts": 1})
