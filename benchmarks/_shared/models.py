"""The models the benchmarks render from and judge with, and the ImageNet classes they render."""

from __future__ import annotations

import keras

from xplique_maco.zoo import efficientnet_lite0, mobilenet_v2

# The quality benchmarks render the first N of these.
CLASSES = [1, 9, 130, 144, 291, 309, 323, 388, 417, 430, 483, 508, 779, 954, 967, 980]
# Images rendered from one source model are judged by the other.
JUDGES = {"efficientnet_lite0": "mobilenet_v2", "mobilenet_v2": "efficientnet_lite0"}


def load(name: str) -> keras.Model:
    if name == "efficientnet_lite0":
        return efficientnet_lite0()
    if name == "mobilenet_v2":
        return mobilenet_v2()
    if name == "resnet50v2":  # random weights, for speed only (flat: Xplique cannot read nested models)
        return keras.applications.ResNet50V2(
            weights=None, input_shape=(224, 224, 3), classifier_activation=None
        )
    raise ValueError(f"unknown model {name!r}")
