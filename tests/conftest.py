"""Fixtures shared by the tests: tiny models (built in helpers.py), inputs, a saved model file, and
atlas folders made without rendering."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import json  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from helpers import conv_classifier, token_model  # noqa: E402
from PIL import Image  # noqa: E402


@pytest.fixture(scope="session")
def model():
    return conv_classifier()


@pytest.fixture(scope="session")
def other_model():
    return conv_classifier(name="other_cnn")


@pytest.fixture(scope="session")
def tokens():
    return token_model()


@pytest.fixture(scope="module")
def inputs():
    """Three random 32 x 32 RGB images in [0, 1], the tiny models' input size."""
    return np.random.default_rng(0).uniform(size=(3, 32, 32, 3)).astype("float32")


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """conv_classifier() saved as a .keras file, for the command line."""
    path = tmp_path_factory.mktemp("models") / "tiny.keras"
    conv_classifier().save(path)
    return path


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
