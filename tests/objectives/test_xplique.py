"""Xplique's own objects in xplique_maco: its objectives keep their meaning, CRAFT's concepts render.

Marked `xplique`: left out of the default run, run with `pytest -m xplique` where Xplique is
installed (`tox -e xplique`, .ci/run). Xplique is imported by a fixture, not skipped: in that
environment a missing Xplique fails these tests.
"""

import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest
import skimage.data
from helpers import conv_classifier

from xplique_maco import Channel, History, evaluate, fourier, from_craft, from_xplique, maco
from xplique_maco._rendering.step import trace_count

pytestmark = pytest.mark.xplique

FAST = dict(nb_steps=4, image_shape=(40, 40), nb_crops=2, seed=0, verbose=0)


@pytest.fixture(scope="module")
def X():
    """Xplique's feature-visualisation Objective (an ImportError here fails the test)."""
    from xplique.features_visualizations import Objective

    return Objective


def xplique_values(objective, inputs) -> np.ndarray:
    """Xplique's own value of a compiled objective, input i read with combination i."""
    extractor, function, _names, _shape = objective.compile()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras warns about Xplique's list of one input
        outputs = extractor(inputs)
    return np.asarray(function(outputs if isinstance(outputs, list) else [outputs])).reshape(-1)


@pytest.fixture(scope="module")
def inputs():
    return np.random.default_rng(0).uniform(0, 1, (6, 32, 32, 3)).astype("float32")


CASES = {
    "neuron of a dense layer": lambda X, m: X.neuron(m, "logits", [1, 4, 7]),
    "neurons of a conv layer (flat ids)": lambda X, m: X.neuron(m, "conv1", [5, 777, 3000]),
    "channels": lambda X, m: X.channel(m, "conv2", [1, 4]),
    "channels of a dense layer": lambda X, m: X.channel(m, "pool", [3, 9]),
    "channel times 3": lambda X, m: X.channel(m, "conv2", [3, 4]) * 3.0,
    "neurons + channels: Cartesian product": lambda X, m: (
        X.neuron(m, "logits", [1, 2]) + X.channel(m, "conv2", [3, 4, 5])
    ),
    "flat neurons + channels": lambda X, m: X.neuron(m, "conv1", [100, 2000]) + X.channel(m, "conv2", [3, 4]),
}


@pytest.mark.parametrize("case", CASES)
def test_values_are_xpliques(X, model, inputs, case):
    theirs = CASES[case](X, model)
    ours = from_xplique(theirs)
    expected = xplique_values(theirs, inputs[: ours.batch_size])
    assert ours.batch_size == len(expected)
    np.testing.assert_allclose(evaluate(ours, inputs[: ours.batch_size]), expected, rtol=1e-5, atol=1e-8)
    assert np.abs(expected).max() > 0


@pytest.mark.parametrize("reducer", ["magnitude", "mean"])
def test_layer_values_are_xpliques(X, model, inputs, reducer):
    theirs = X.layer(model, "conv1", reducer=reducer)
    np.testing.assert_allclose(evaluate(theirs, inputs[:1]), xplique_values(theirs, inputs[:1]), rtol=1e-5)


@pytest.mark.parametrize("layer, shape", [("conv2", (1, 1, 16)), ("logits", (10,))])
def test_direction_values_are_xpliques(X, model, inputs, layer, shape):
    rng = np.random.default_rng(1)
    vectors = [rng.normal(size=shape), rng.normal(size=shape) + 1.0]
    ours = evaluate(X.direction(model, layer, vectors, cossim_pow=3.0), inputs[:2])
    # Xplique sums a direction's dot product over the whole batch: one input per call.
    theirs = [
        xplique_values(X.direction(model, layer, [v], cossim_pow=3.0), inputs[i : i + 1])
        for i, v in enumerate(vectors)
    ]
    np.testing.assert_allclose(ours, np.concatenate(theirs), rtol=1e-5)


def test_directions_and_layers_in_a_product(X, model, inputs):
    """Xplique reduces layers and directions over the whole batch: compare one item at a time."""
    rng = np.random.default_rng(2)
    vectors = [rng.normal(size=(1, 1, 16)) + 0.5 for _ in range(2)]
    parts = (
        X.direction(model, "conv2", vectors) + X.neuron(model, "logits", [1, 2, 3]) + X.layer(model, "conv1")
    )
    ours = evaluate(parts, inputs)
    for item in range(6):
        alone = (
            X.direction(model, "conv2", [vectors[item // 3]])
            + X.neuron(model, "logits", [1 + item % 3])
            + X.layer(model, "conv1")
        )
        np.testing.assert_allclose(ours[item], xplique_values(alone, inputs[item : item + 1]), rtol=1e-5)


def test_combinations_follow_xpliques_order_and_names(X, model):
    objective = X.neuron(model, "logits", [1, 2]) + X.channel(model, "conv2", [3, 4, 5])
    ours = from_xplique(objective)
    names = list(objective.compile()[2])
    assert len(names) == ours.batch_size == 6
    neuron, channel = ours.terms
    picked = [
        f"Neuron#logits_{n} & Channel#conv2_{c}"
        for n, c in zip(neuron.arguments["index"], channel.arguments["index"], strict=True)
    ]
    assert picked == names


def test_multipliers_weight_their_own_part(X, model, inputs):
    """Xplique multiplies the running sum (a - b gives -(a + b)); we weight each part."""
    a, b = X.channel(model, "conv2", 3), X.neuron(model, "logits", 2)
    va, vb = xplique_values(a, inputs[:1]), xplique_values(b, inputs[:1])
    difference = X.channel(model, "conv2", 3) - X.neuron(model, "logits", 2)
    np.testing.assert_allclose(evaluate(difference, inputs[:1]), va - vb, rtol=1e-5)
    np.testing.assert_allclose(xplique_values(difference, inputs[:1]), -(va + vb), rtol=1e-5)


def test_same_images_as_our_terms(X, model):
    theirs = maco(X.channel(model, "conv2", [3, 4]), **FAST)
    ours = maco(Channel(model, "conv2", [3, 4]) / 16, **FAST)
    for left, right in zip(theirs, ours, strict=True):
        np.testing.assert_array_equal(left.numpy(), right.numpy())
    assert theirs[0].shape == (2, 40, 40, 3) and theirs[1].shape == (2, 40, 40, 1)


def test_fourier_takes_them_too(X, model):
    images, transparencies = fourier(X.neuron(model, "logits", [0, 1]), **FAST)
    assert images.shape == (2, 40, 40, 3) and transparencies.shape == (2, 40, 40, 1)


@pytest.mark.parametrize(
    "build",
    [
        lambda X, m: X.neuron(m, "logits", 3),
        lambda X, m: X.neuron(m, "conv2", 1234),
        lambda X, m: X.direction(m, "conv2", [np.full((1, 1, 16), 0.5)]),
    ],
    ids=["logit", "flat neuron", "direction"],
)
def test_the_objective_rises(X, model, build):
    history = History()
    maco(build(X, model), callbacks=[history], **{**FAST, "nb_steps": 24, "nb_crops": 4})
    assert history.values[-4:].mean() > history.values[:4].mean()


def test_another_id_does_not_retrace(X, model):
    maco(X.neuron(model, "conv2", [10, 20]) + X.neuron(model, "logits", 1), **FAST)
    traced = trace_count()
    maco(X.neuron(model, "conv2", [30, 3000]) + X.neuron(model, "logits", 7), **FAST)
    maco(X.direction(model, "conv2", [np.ones((1, 1, 16))]), **FAST)
    traced_direction = trace_count()
    maco(X.direction(model, "conv2", [np.arange(16.0).reshape(1, 1, 16)], cossim_pow=1.0), **FAST)
    assert trace_count() - traced_direction == 0
    assert traced_direction - traced == 1  # the direction's own step, once


def my_loss(output, mask):
    return output[:, 0]


def test_a_function_of_its_own_is_refused_by_name_before_computing(X, model):
    layer = model.get_layer("logits")
    custom = X(model, [layer.output], [np.ones((1, 10))], [my_loss], [1.0], [["Mine#logits"]])
    traced = trace_count()
    with pytest.raises(ValueError, match=r"Part 2 of 2 .*Mine#logits.*'my_loss'.*cannot express.*Custom"):
        maco(X.neuron(model, "logits", 1) + custom, **FAST)
    assert trace_count() == traced


def test_a_mask_changed_by_hand_is_refused(X, model):
    objective = X.channel(model, "conv2", 3)
    objective.masks[0][0, 0, 0, 5] = 1.0
    with pytest.raises(ValueError, match=r"Part 1 of 1 .*Channel#conv2_3.*one whole channel"):
        maco(objective, **FAST)


def test_results_go_to_xpliques_plot_maco(X, model):
    import matplotlib

    matplotlib.use("Agg")
    from xplique.plots import plot_maco

    images, transparencies = maco(X.neuron(model, "logits", 1), **FAST)
    plot_maco(images[0], transparencies[0])  # (H, W, 1) transparency: Xplique averages the last axis


# ---- CRAFT ----


def photos(size: int) -> np.ndarray:
    names = ["chelsea", "coffee", "astronaut", "rocket"]
    images = []
    for name in names:
        photo = getattr(skimage.data, name)()
        side = min(photo.shape[:2])
        images.append(keras.ops.image.resize(photo[:side, :side] / 255.0, (size, size)))
    return np.stack([keras.ops.convert_to_numpy(image) for image in images]).astype("float32")


@pytest.fixture(scope="module")
def craft():
    from xplique.concepts import CraftTf

    model = conv_classifier(size=64, name="craft_cnn")
    latent = keras.Model(model.input, model.get_layer("conv2").output)
    head_input = keras.Input(latent.output.shape[1:])
    head = keras.Model(head_input, model.get_layer("logits")(model.get_layer("pool")(head_input)))
    craft = CraftTf(latent, head, number_of_concepts=3, batch_size=16, patch_size=32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        craft.fit(photos(64), class_id=0)
    return model, craft


def test_craft_concepts_become_one_direction_batch(craft):
    model, fitted = craft
    bank = fitted.factorization.concept_bank_w
    objective = from_craft(fitted, model)
    assert objective.batch_size == len(bank) == 3
    assert objective.layer_names == ("conv2",)
    (term,) = objective.terms
    expected = bank / np.linalg.norm(bank, axis=1, keepdims=True)
    np.testing.assert_allclose(term.arguments["vector"], expected, rtol=1e-5)
    history = History()
    images, transparencies = maco(objective, callbacks=[history], **{**FAST, "nb_steps": 16, "nb_crops": 4})
    assert images.shape[0] == transparencies.shape[0] == 3
    assert (history.values[-3:].mean(axis=0) > history.values[:3].mean(axis=0)).all()


def test_craft_alone_renders_with_its_latent_model(craft):
    model, fitted = craft
    alone = from_craft(fitted, concepts=[2, 0])
    with_model = from_craft(fitted, model, concepts=[2, 0])
    assert alone.model is fitted.input_to_latent_model and alone.batch_size == 2
    np.testing.assert_array_equal(alone.terms[0].arguments["vector"], with_model.terms[0].arguments["vector"])


def test_craft_bad_inputs(craft, model):
    from xplique.concepts import CraftTf

    _, fitted = craft
    latent = keras.Model(model.input, model.get_layer("conv2").output)
    with pytest.raises(ValueError, match="not fitted"):
        from_craft(CraftTf(latent, latent, number_of_concepts=2))
    with pytest.raises(ValueError, match="out of range"):
        from_craft(fitted, concepts=[3])
    with pytest.raises(ValueError, match="pass the `layer`"):
        from_craft(fitted, model)  # another model: where the concepts live is not known
    with pytest.raises(TypeError, match="fitted Xplique CRAFT"):
        from_craft(object())
    with pytest.raises(
        TypeError, match=r"CraftTf is not an Xplique feature-visualisation Objective.*from_craft"
    ):
        maco(fitted, **FAST)


def test_xplique_is_imported_only_when_its_objects_come_in():
    code = (
        "import sys; sys.path.insert(0, 'tests'); from helpers import conv_classifier\n"
        "from xplique_maco import Neuron, maco\n"
        "maco(Neuron(conv_classifier(), 'logits', 1), nb_steps=1, image_shape=(32, 32), nb_crops=1, verbose=0)\n"
        "assert not [name for name in sys.modules if name.split('.')[0] == 'xplique'], 'xplique was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
