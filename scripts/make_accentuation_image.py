"""The picture and the numbers of docs/accentuation.md: offline photos accentuated by EfficientNet-Lite0.

Each photo is accentuated toward the class the model gives it and toward another class, kept
close to the photo at one layer; the script prints each class's logit and probability on the
photo and on the accentuation, and writes docs/images/accentuation.png.

    python scripts/make_accentuation_image.py          # about 4 minutes on 2 CPUs
    python scripts/make_accentuation_image.py --fast   # tiny budgets: every line runs
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import skimage.data  # noqa: E402
from sklearn.datasets import load_sample_images  # noqa: E402

from xplique_maco import Neuron, accentuate, zoo  # noqa: E402

IMAGES = Path(__file__).resolve().parent.parent / "docs" / "images"
# (photo, the other class it is accentuated toward)
PHOTOS = (("chelsea", "lemon"), ("coffee", "strawberry"), ("flower", "goldfinch"))
LAYER = "block3b_add"
CLOSENESS = 100.0


def square(photo: np.ndarray, size: int) -> np.ndarray:
    """The centred square of a uint8 photo, resized to size x size, in [0, 1]."""
    side = min(photo.shape[:2])
    top, left = (photo.shape[0] - side) // 2, (photo.shape[1] - side) // 2
    crop = photo[top : top + side, left : left + side] / 255.0
    resized = keras.ops.convert_to_numpy(keras.ops.image.resize(crop, (size, size), antialias=True))
    return np.clip(resized, 0.0, 1.0).astype("float32")  # the antialiasing filter overshoots by 1e-7


def load_photo(name: str, size: int) -> np.ndarray:
    if name in ("china", "flower"):
        return square(load_sample_images().images[("china", "flower").index(name)], size)
    return square(getattr(skimage.data, name)(), size)


def softmax(logits: np.ndarray) -> np.ndarray:
    exponentials = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return exponentials / exponentials.sum(axis=-1, keepdims=True)


def main(fast: bool) -> None:
    size, budget = (64, dict(nb_steps=3, nb_crops=2)) if fast else (224, dict(nb_steps=64, nb_crops=8))
    model = zoo.efficientnet_lite0()
    names = zoo.imagenet_classes()
    figure, axes = plt.subplots(len(PHOTOS), 3, figsize=(9, 3.3 * len(PHOTOS)))
    print(f"EfficientNet-Lite0, closeness {CLOSENESS:g} at {LAYER}, {budget}, seed 0")
    for row, (name, other) in enumerate(PHOTOS):
        photo = load_photo(name, size)
        own = int(np.argmax(model.predict_on_batch(photo[None])[0]))
        targets = [own, names.index(other)]
        images, _ = accentuate(
            Neuron(model, "predictions", targets),
            photo,
            LAYER,
            closeness=CLOSENESS,
            seed=0,
            verbose=0,
            **budget,
        )
        before = model.predict_on_batch(photo[None])[0]
        after = model.predict_on_batch(images.numpy())
        axes[row, 0].imshow(photo)
        axes[row, 0].set_title(f"{name}\n{names[own]}: p = {softmax(before)[own]:.2f}", fontsize=9)
        for column, target in enumerate(targets, start=1):
            start, end = before[target], after[column - 1, target]
            start_p, end_p = softmax(before)[target], softmax(after[column - 1])[target]
            change = np.abs(images.numpy()[column - 1] - photo).mean()
            print(
                f"  {name} -> {names[target]} ({target}): logit {start:.2f} -> {end:.2f}, "
                f"p {start_p:.3f} -> {end_p:.3f}, mean |pixel change| {change:.3f}"
            )
            axes[row, column].imshow(np.clip(images.numpy()[column - 1], 0, 1))
            axes[row, column].set_title(
                f"-> {names[target]}\nlogit {start:.1f} -> {end:.1f}, p {start_p:.2f} -> {end_p:.2f}",
                fontsize=9,
            )
    for axis in axes.ravel():
        axis.axis("off")
    plt.tight_layout()
    if fast:
        print("fast mode: picture not written")
        return
    path = IMAGES / "accentuation.png"
    figure.savefig(path, dpi=72)
    print(f"wrote {path}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="tiny budgets, no picture written")
    main(parser.parse_args().fast)
