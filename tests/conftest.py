"""Tiny models shared by the tests (dense, token and convolutional outputs), and atlas folders made without rendering."""

import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402


def conv_classifier(channels: int = 3, size: int = 32, name: str = "tiny_cnn") -> keras.Model:
    """Conv -> conv -> pooled logits, with fixed random weights."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((size, size, channels), name="image")
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv1")(inputs)
    x = keras.layers.Conv2D(16, 3, strides=2, activation="relu", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(10, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)


def token_model(size: int = 32) -> keras.Model:
    """A ViT-like stem: patches -> tokens (N, T, D) -> dense mixing -> pooled logits."""
    keras.utils.set_random_seed(1)
    inputs = keras.Input((size, size, 3), name="image")
    x = keras.layers.Conv2D(12, 8, strides=8, name="patchify")(inputs)
    x = keras.layers.Reshape(((size // 8) ** 2, 12), name="tokens")(x)
    x = keras.layers.Dense(12, activation="gelu", name="mlp")(x)
    x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    outputs = keras.layers.Dense(5, name="logits")(x)
    return keras.Model(inputs, outputs, name="tiny_vit")


@pytest.fixture(scope="session")
def model():
    return conv_classifier()


@pytest.fixture(scope="session")
def other_model():
    return conv_classifier(name="other_cnn")


@pytest.fixture(scope="session")
def tokens():
    return token_model()


ATLAS_SETTINGS = {"kind": "neuron", "layer": "logits", "seed": 0, "nb_steps": 3, "image_shape": [24, 24]}


def write_atlas(
    folder: Path, indices, shards: int = 1, size: int = 24, settings: dict | None = None
) -> list[dict]:
    """A folder as `xplique-maco render` leaves it, without rendering: three PNGs and a manifest line per index.

    Unit i's image is a flat colour that depends on i, its value is i / 10 except for index 3,
    whose value is the highest (so sorting by value differs from sorting by index).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for position, index in enumerate(indices):
        stem = f"neuron_logits_{index:05d}"
        files = {
            "image": f"{stem}.png",
            "transparency": f"{stem}_transparency.png",
            "rgba": f"{stem}_rgba.png",
        }
        colour = np.array([(37 * index) % 256, (91 * index) % 256, (151 * index) % 256], np.uint8)
        pixels = np.broadcast_to(colour, (size, size, 3))
        ramp = np.tile(np.linspace(0, 255, size).astype(np.uint8), (size, 1))
        Image.fromarray(np.ascontiguousarray(pixels)).save(folder / files["image"])
        Image.fromarray(ramp).save(folder / files["transparency"])
        Image.fromarray(np.dstack([pixels, ramp])).save(folder / files["rgba"])
        entry = {
            "objective": f"Neuron(logits, {index})",
            "index": index,
            "position": position,
            "settings": settings or ATLAS_SETTINGS,
            "seed": 0,
            "value": 100.0 if index == 3 else index / 10,
            "files": files,
        }
        name = "manifest.jsonl" if shards == 1 else f"manifest.shard-{position % shards}-of-{shards}.jsonl"
        with open(folder / name, "a", encoding="utf-8") as manifest:
            manifest.write(json.dumps(entry) + "\n")
        entries.append(entry)
    return entries
