"""The architectures users bring, with random weights at small inputs: the objective must rise.

Each case builds a keras.applications model (or a keras-hub backbone), flat and nested in a
head as in transfer learning, and renders a few steps. Tracing a step through a deep model
costs 5 to 20 s on 2 CPUs, so most cases are marked `heavy`: the default run keeps one model
per family of problems (preprocessing inside, a Flatten head, tokens) and CI runs the rest
with `pytest -m heavy`.

With random weights the logits of these deep networks hardly depend on the image: over 16
steps their rise stayed below the step-to-step spread in 5 of 28 runs (2 units x 2 seeds x 7
models, 2026-12). So flat models are checked on a channel half-way through them, and logits
where they carry a signal: VGG16's Flatten head and a head of one's own over a nested base.
The settings (small steps, large crops, no noise) keep the recorded objective steady.
"""

import keras
import numpy as np
import pytest

from xplique_maco import Channel, Direction, History, Neuron, maco
from xplique_maco._objectives.paths import position_tied

RENDER = dict(nb_steps=16, nb_crops=4, crop_size=(0.9, 1.0), noise=0.0, learning_rate=(0.3, 0.05))
APPLICATIONS = keras.applications

# name, input side, model value range (models with preprocessing inside take 0..255), light?
ARCHITECTURES = [
    ("ResNet50V2", 32, (0.0, 1.0), False),
    ("MobileNetV3Small", 32, (0.0, 255.0), True),
    ("EfficientNetV2B0", 32, (0.0, 255.0), False),
    ("ConvNeXtTiny", 32, (0.0, 255.0), False),
    ("DenseNet121", 32, (0.0, 1.0), False),
    ("VGG16", 64, (0.0, 1.0), True),  # 64: its Flatten then reads 2 x 2 positions
    ("Xception", 71, (0.0, 1.0), False),
]


def cases():
    for name, size, values_range, light in ARCHITECTURES:
        marks = [] if light else [pytest.mark.heavy]
        if name == "VGG16":  # 12 to 15 s per case on 2 CPUs; MobileNetV3Small's take 7 to 8 s
            marks.append(pytest.mark.slow)
        yield pytest.param(name, size, values_range, id=name, marks=marks)


def application(name: str, size: int, include_top: bool) -> keras.Model:
    keras.utils.set_random_seed(0)
    constructor = getattr(APPLICATIONS, name)
    settings = dict(weights=None, input_shape=(size, size, 3), include_top=include_top)
    if include_top:
        settings.update(classes=10, classifier_activation=None)  # logits
    return constructor(**settings)


def rises(objective, size: int, values_range) -> None:
    """The mean over the batch of the last 4 steps' objective is above that of the first 4."""
    history = History()
    settings = dict(image_shape=(size, size), values_range=values_range, seed=0, verbose=0)
    maco(objective, callbacks=[history], **RENDER, **settings)
    values = history.values.mean(axis=1)
    first, last = values[:4].mean(), values[-4:].mean()
    assert np.isfinite(values).all()
    assert last > first, f"{objective!r} went from {first:.4g} to {last:.4g}"


def middle_layer(model: keras.Model) -> keras.layers.Layer:
    """A convolutional layer half-way through the model (names differ between architectures)."""
    spatial = [layer for layer in model.layers[1:] if len(layer.output.shape) == 4]
    return spatial[len(spatial) // 2]


@pytest.mark.parametrize("name, size, values_range", list(cases()))
def test_a_channel_inside_the_application_rises(name, size, values_range):
    model = application(name, size, include_top=True)
    rises(Channel(model, middle_layer(model).name, [1, 4]), size, values_range)


@pytest.mark.slow
def test_the_flatten_head_of_vgg16_rises_with_the_default_crops():
    model = application("VGG16", 64, include_top=True)
    assert Neuron(model, -1, 0).fixed_layout == "Neuron(predictions, 0) reads positions through 'flatten'"
    rises(Neuron(model, -1, [3, 5]), 64, (0.0, 1.0))


@pytest.mark.parametrize("name, size, values_range", list(cases()))
def test_a_base_nested_in_a_head_is_reached_inside_and_at_its_output(name, size, values_range):
    base = application(name, size, include_top=False)
    inner = middle_layer(base)
    inputs = keras.Input((size, size, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(base(inputs, training=False))
    model = keras.Model(inputs, keras.layers.Dense(5, name="head")(pooled), name="transfer")
    path = f"{base.name}/{inner.name}"
    assert Channel(model, inner, 1).layer_names == (path,)  # the layer object finds the same call
    rises(Channel(model, path, [1, 4]) + Neuron(model, "head", 2), size, values_range)
    wrapper = keras.Sequential([keras.Input((size, size, 3)), base, keras.layers.GlobalAveragePooling2D()])
    assert Channel(wrapper, 0, 4).layer_names == (base.name,)


def test_flatten_heads_are_found_and_pooled_heads_are_not():
    vgg = application("VGG16", 64, include_top=True)
    assert position_tied(Neuron(vgg, -1, 0).taps[0]) == "flatten"
    assert position_tied(Channel(vgg, "block5_conv3", 0).taps[0]) is None
    mobile = application("MobileNetV3Small", 32, include_top=True)  # squeeze-excite reshapes (N, C)
    assert position_tied(Neuron(mobile, -1, 0).taps[0]) is None
    inputs = keras.Input((64, 64, 3))
    wrapped = keras.Model(inputs, vgg(inputs))  # the Flatten is inside the nested model
    assert position_tied(Neuron(wrapped, -1, 0).taps[0]) == f"{vgg.name}/flatten"


@pytest.mark.slow
def test_a_keras_hub_vision_transformer_tokens_and_logits_rise():
    keras_hub = pytest.importorskip("keras_hub")
    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.ViTBackbone(
        image_shape=(32, 32, 3),
        patch_size=8,
        num_layers=2,
        num_heads=2,
        hidden_dim=16,
        mlp_dim=32,
        name="vit",
    )
    classifier = keras_hub.models.ViTImageClassifier(backbone=backbone, num_classes=10, preprocessor=None)
    directions = np.random.default_rng(0).normal(size=(2, 16))
    for objective in (
        Neuron(backbone, "vit_encoder", [3, 7], position=5),
        Channel(backbone, "vit_encoder", 3),
        Direction(backbone, "vit_encoder", directions),
        Channel(classifier, "vit/vit_encoder", 3) + Neuron(classifier, "predictions", 1),
    ):
        rises(objective, 32, (0.0, 1.0))
