"""Diversity: K images of one unit whose Gram matrices differ, in groups that no split of the batch breaks."""

import warnings

import numpy as np
import pytest
from helpers import (
    CHUNKED,
    LINEAR,
    RISE,
    Plan,
    RunsOut,
    activations,
    assert_refused,
    at_input_size,
    conv_classifier,
    retried,
    wrapped,
)

from xplique_maco import Callback, Diversity, EarlyStopping, Neuron, evaluate, maco
from xplique_maco._rendering import memory as _memory
from xplique_maco._rendering.replicas import split
from xplique_maco._rendering.step import trace_count

RUN = {**RISE, "nb_steps": 30, "verbose": 0}
SPLITS = {**CHUNKED, **LINEAR, "nb_steps": 2, "nb_crops": 4}


def gram_similarity(features: np.ndarray) -> np.ndarray:
    """Per image (N of one group), the mean cosine similarity of its Gram matrix with the others'."""
    flat = features.reshape(len(features), -1, features.shape[-1])
    grams = np.einsum("npc,npd->ncd", flat, flat).reshape(len(features), -1)
    grams /= np.linalg.norm(grams, axis=1, keepdims=True)
    cosines = grams @ grams.T
    return (cosines.sum(axis=1) - np.diag(cosines)) / (len(features) - 1)


def test_the_value_is_the_mean_gram_similarity_with_the_other_images_of_the_group(model, inputs):
    np.testing.assert_allclose(
        evaluate(Diversity(model, "conv1", images=3), inputs),
        gram_similarity(activations(model, "conv1", inputs)),
        rtol=1e-4,
    )
    same = np.repeat(inputs[:1], 3, axis=0)
    np.testing.assert_allclose(evaluate(Diversity(model, "conv1", images=3), same), 1.0, rtol=1e-5)


def test_a_batch_of_units_gives_groups_whose_penalties_do_not_mix(model):
    images = np.random.default_rng(1).uniform(size=(6, 32, 32, 3)).astype("float32")
    objective = Neuron(model, -1, [2, 6]) - 0.5 * Diversity(model, "conv1", images=3)
    assert (objective.batch_size, objective.group) == (6, 3)
    penalty = np.concatenate(
        [gram_similarity(activations(model, "conv1", part)) for part in (images[:3], images[3:])]
    )
    expected = evaluate(Neuron(model, -1, [2, 2, 2, 6, 6, 6]), images) - 0.5 * penalty
    np.testing.assert_allclose(evaluate(objective, images), expected, rtol=1e-4, atol=1e-6)
    changed = images.copy()
    changed[4] = 1.0 - changed[4]  # the second group only
    np.testing.assert_allclose(evaluate(objective, changed)[:3], evaluate(objective, images)[:3], rtol=1e-6)


def test_diversity_makes_k_images_of_one_unit_differ_while_the_unit_still_rises(model):
    """Against the same unit rendered K times with K seeds (the streams of positions 0..K-1, which
    the Diversity run starts from too): the Gram similarity of the whole images drops, the logit
    stays about the same and above the start."""
    similarity = Diversity(model, "conv1", images=4)
    copies = Neuron(model, -1, [6] * 4)
    start, _ = maco(copies, learning_rate=1e-9, seed=0, **RUN)
    alike, _ = maco(copies, seed=0, **RUN)
    diverse, _ = maco(Neuron(model, -1, 6) - 1.0 * similarity, seed=0, **RUN)
    with pytest.warns(UserWarning, match="positive weight"):  # the sign flipped: pulled together
        together, _ = maco(Neuron(model, -1, 6) + 1.0 * similarity, seed=0, **RUN)
    alike, diverse, start, together = (at_input_size(i) for i in (alike, diverse, start, together))
    spread = {
        name: 1.0 - evaluate(similarity, images).mean()
        for name, images in (("alike", alike), ("diverse", diverse), ("together", together))
    }
    # Measured: 1 - similarity 0.022 for the copies, 0.036 with Diversity (0.021 and 0.049
    # without glances); the penalty's sign decides the direction, so pulling the images
    # together must go below.
    assert spread["diverse"] > 1.4 * spread["alike"], spread
    assert spread["together"] < spread["alike"] < spread["diverse"], spread
    # Measured: logit 0.163 at the start, 0.217 for the copies, 0.219 with Diversity.
    value = evaluate(copies, diverse).mean()
    assert value > 0.9 * evaluate(copies, alike).mean()
    assert value > 1.15 * evaluate(copies, start).mean()


def test_the_same_seed_gives_the_same_images_and_whole_groups_render_alone_as_in_the_batch(model):
    objective = Neuron(model, -1, [2, 6]) - 0.5 * Diversity(model, "conv1", images=2)
    first, _ = maco(objective, **SPLITS)
    again, _ = maco(objective, **SPLITS)
    np.testing.assert_array_equal(first.numpy(), again.numpy())
    second_group, _ = maco(objective, items=[2, 3], **SPLITS)
    np.testing.assert_allclose(second_group.numpy(), first.numpy()[2:], atol=1e-6)


def test_another_unit_with_the_same_number_of_images_reuses_the_compiled_step(model):
    maco(Neuron(model, -1, 1) - Diversity(model, "conv1", images=2), **SPLITS)
    traces = trace_count()
    maco(Neuron(model, -1, 7) - 3.0 * Diversity(model, "conv1", images=2), **SPLITS)
    assert trace_count() == traces


def test_chunks_hold_whole_groups(model):
    """batch_size 5 with groups of 2: chunks of 4 and 2 images, the images of one chunk of all."""
    objective = Neuron(model, -1, [1, 2, 3]) - 0.5 * Diversity(model, "conv1", images=2)
    plan = Plan()
    chunked, _ = maco(objective, batch_size=5, crops_per_pass=16, callbacks=[plan], **SPLITS)
    assert plan.chunks == ((0, 1, 2, 3), (4, 5))
    whole, _ = maco(objective, batch_size=6, crops_per_pass=24, **SPLITS)
    np.testing.assert_allclose(chunked.numpy(), whole.numpy(), atol=1e-6)
    defaults = Plan()  # on CPUs: 32 crops per chunk, 4 images of 4 crops rise to a group of 8
    maco(Neuron(model, -1, 1) - Diversity(model, "conv1", images=8), callbacks=[defaults], **SPLITS)
    assert defaults.chunks == (tuple(range(8)),)


def test_out_of_memory_halves_passes_then_whole_groups(model):
    """4 images (2 groups of 2) x 4 crops, a model pass of at most 2 crops: passes of 16 -> 8 -> 4,
    then chunks of one group (2 images) in passes of 2; the images are those of these settings."""
    runs_out = wrapped(RunsOut(2))
    objective = Neuron(runs_out, -1, [0, 1]) - 0.5 * Diversity(runs_out, "tiny_cnn/conv1", images=2)
    plan = Plan()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        images, _ = maco(objective, batch_size=4, crops_per_pass=16, callbacks=[plan], **SPLITS)
    messages = retried(record)
    assert len(messages) == 3 and "batch_size=2, crops_per_pass=2" in messages[-1]
    direct_model = conv_classifier()
    direct = Neuron(direct_model, -1, [0, 1]) - 0.5 * Diversity(direct_model, "conv1", images=2)
    expected, _ = maco(direct, batch_size=2, crops_per_pass=2, **SPLITS)
    np.testing.assert_allclose(images.numpy(), expected.numpy(), atol=1e-6)


@pytest.mark.parametrize(
    "sizes, replicas, group, expected",
    [
        ((4, 4), 1, 2, (2, 2)),  # 2 groups of 2 images, one crop each: one group per chunk
        ((2, 2), 1, 2, None),  # one crop of each image of one group: nothing smaller
        ((8, 8), 2, 2, (8, 4)),  # a device holds 2 groups of 2 images, 2 crops each -> 1 each
        ((8, 4), 2, 2, (4, 2)),  # then one group per device
        ((6, None), 2, 3, (6, 6)),  # one group of 3 per device, 4 crops each -> 2 each
        ((4, 4), 1, 4, None),  # one group of 4, one crop each
    ],
)
def test_the_smaller_sizes_keep_groups_whole(sizes, replicas, group, expected):
    result = _memory.smaller(_memory.Sizes(*sizes), nb_crops=4, replicas=replicas, group=group)
    assert result == (None if expected is None else _memory.Sizes(*expected))


def test_replicas_get_whole_groups():
    assert [part.tolist() for part in split(np.arange(6), 2, 3)] == [[0, 1, 2], [3, 4, 5]]
    assert [part.tolist() for part in split(np.arange(8), 3, 2)] == [[0, 1, 2, 3], [4, 5], [6, 7]]
    assert [part.tolist() for part in split(np.arange(4), 3, 2)] == [[0, 1], [2, 3], [2, 3]]


class Items(Callback):
    def __init__(self):
        self.items = {}

    def on_step(self, step):
        self.items[step.index] = tuple(step.items)


def test_early_stopping_lets_a_group_leave_when_all_its_images_are_done(model):
    """The criterion says items 0, 1 and 3 are done at the first check: group (0, 1) leaves, and
    item 3 keeps stepping with item 2, its group."""

    def criterion(images, values):
        return np.array([item in (0, 1, 3) for item in told.items[max(told.items)]])

    told = Items()
    stopping = EarlyStopping(min_rise=None, criterion=criterion, every=2, min_steps=2)
    objective = Neuron(model, -1, [1, 2]) - 0.5 * Diversity(model, "conv1", images=2)
    maco(objective, callbacks=[told, stopping], **{**SPLITS, "nb_steps": 6})
    assert stopping.stopped_at.tolist() == [2, 2, 6, 6]
    assert told.items[1] == (0, 1, 2, 3) and told.items[3] == (2, 3)


# (bad call on the tiny classifier, error type, words the message must contain)
ERRORS = [
    pytest.param(
        lambda m: Diversity(m, "conv1", images=1), ValueError, "`images` must be an int >= 2", id="one image"
    ),
    pytest.param(
        lambda m: Diversity(m, "conv1", images=2.5), ValueError, "received 2.5", id="images not an int"
    ),
    pytest.param(
        lambda m: Diversity(m, "conv1", images=True), ValueError, "received True", id="images a bool"
    ),
    pytest.param(
        lambda m: Diversity(m, "conv9", images=2), ValueError, "'conv9' not found", id="unknown layer"
    ),
    pytest.param(lambda m: Diversity(m, "logits", images=2), ValueError, "is dense", id="dense layer"),
    pytest.param(
        lambda m: Diversity(m, "conv1", images=2) + Diversity(m, "conv2", images=3),
        ValueError,
        "ask for 2 and 3 images of each item",
        id="two numbers of images",
    ),
    pytest.param(
        lambda m: maco(Neuron(m, -1, 1) - Diversity(m, "conv1", images=4), batch_size=3, **SPLITS),
        ValueError,
        "`batch_size` 3 is smaller than the 4 images of each Diversity group",
        id="batch_size below the group",
    ),
    pytest.param(
        lambda m: maco(Neuron(m, -1, 1) - Diversity(m, "conv1", images=4), crops_per_pass=2, **SPLITS),
        ValueError,
        "`crops_per_pass` 2 is smaller than the 4 images",
        id="crops_per_pass below the group",
    ),
    pytest.param(
        lambda m: maco(Neuron(m, -1, [1, 2]) - Diversity(m, "conv1", images=2), items=[1, 2], **SPLITS),
        ValueError,
        "`items` must select whole groups of 2 images",
        id="items cutting groups",
    ),
    pytest.param(
        lambda m: maco(Neuron(m, -1, [1, 2]) - Diversity(m, "conv1", images=2), items=[2], **SPLITS),
        ValueError,
        "received [2]",
        id="items with part of a group",
    ),
]


@pytest.mark.parametrize("call, error, message", ERRORS)
def test_bad_input_gets_a_clear_error_before_any_computation(model, call, error, message):
    assert_refused(lambda: call(model), error, message)


def test_a_positive_weight_warns_that_the_images_become_alike(model):
    with pytest.warns(UserWarning, match="positive weight .* makes the images alike"):
        maco(Neuron(model, -1, 1) + Diversity(model, "conv1", images=2), **{**SPLITS, "nb_steps": 1})
