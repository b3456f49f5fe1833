"""The pictures and the checked facts of docs/with-xplique.md: xplique_maco next to Xplique 2.0.2.

Needs Xplique next to this package (`tox -e xplique` builds such an environment; or
`pip install xplique==2.0.2 -e ".[test]"`), then:

    python scripts/make_xplique_images.py          # about 10 minutes on 2 CPUs
    python scripts/make_xplique_images.py --fast   # tiny budgets: every line runs

It prints each fact the migration table states, measured by running both libraries, and writes
docs/images/xplique_*.png.
"""

from __future__ import annotations

import argparse
import os
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import skimage.data  # noqa: E402
import tensorflow as tf  # noqa: E402
from xplique import features_visualizations  # noqa: E402
from xplique.attributions import GradCAM, Saliency  # noqa: E402
from xplique.features_visualizations import Objective as XpliqueObjective  # noqa: E402
from xplique.features_visualizations import maco as their_maco  # noqa: E402
from xplique.metrics import Deletion, Insertion  # noqa: E402
from xplique.plots import plot_maco as xplique_plot_maco  # noqa: E402

from xplique_maco import from_xplique, maco, plot_maco, zoo  # noqa: E402

IMAGES = Path(__file__).resolve().parent.parent / "docs" / "images"
PHOTO_NAMES = ("chelsea", "coffee", "rocket")


def square(photo: np.ndarray, size: int = 224) -> np.ndarray:
    side = min(photo.shape[:2])
    top, left = (photo.shape[0] - side) // 2, (photo.shape[1] - side) // 2
    crop = photo[top : top + side, left : left + side] / 255.0
    return keras.ops.convert_to_numpy(keras.ops.image.resize(crop, (size, size))).astype("float32")


def fixed_size(model: keras.Model, size: int = 224) -> keras.Model:
    """The same model on a (size, size) input: Xplique's maco and masks need a known input size."""
    fixed = keras.models.clone_model(model, input_tensors=keras.Input((size, size, 3), name="image"))
    fixed.set_weights(model.get_weights())
    return fixed


def fact(text: str) -> None:
    print(f"  - {text}")


def facts(model: keras.Model, budget: dict) -> None:
    """Runs both libraries on the points the migration table makes, and prints what each does."""
    one = XpliqueObjective.neuron(model, "predictions", 285)
    small = dict(nb_steps=2, nb_crops=2)
    image, transparency = their_maco(one, custom_shape=(64, 64), **small)
    fact(
        f"Xplique maco returns {type(image).__name__} {image.shape} in [{image.min():.2f}, {image.max():.2f}] "
        f"(values_range default (-1, 1)) and a {type(transparency).__name__} transparency {tuple(transparency.shape)}"
    )
    images, transparencies = maco(one, image_shape=(64, 64), verbose=0, seed=0, **small)
    fact(
        f"xplique_maco returns {tuple(images.shape)} in [{float(tf.reduce_min(images)):.2f}, "
        f"{float(tf.reduce_max(images)):.2f}] (values_range default (0, 1)) and {tuple(transparencies.shape)}"
    )
    try:
        their_maco(XpliqueObjective.neuron(model, "predictions", [285, 967]), custom_shape=(64, 64), **small)
    except AssertionError as error:
        fact(f"Xplique maco with two ids: AssertionError: {error}")
    fact(
        f"xplique_maco with two ids: {maco(XpliqueObjective.neuron(model, 'predictions', [285, 967]), image_shape=(64, 64), verbose=0, **small)[0].shape[0]} images"
    )
    summed = XpliqueObjective.neuron(model, "predictions", 285) + XpliqueObjective.channel(
        model, "top_activation", 7
    )
    try:
        their_maco(summed, custom_shape=(64, 64), **small)
        fact("Xplique maco with a sum: runs")
    except Exception as error:  # noqa: BLE001  (what Xplique raises is the fact)
        fact(f"Xplique maco with a sum: {type(error).__name__}")
    fact(f"xplique_maco reads that sum as {from_xplique(summed)!r}")
    try:
        their_maco(one, custom_shape=None, **small)
        fact("Xplique maco with custom_shape=None: runs")
    except Exception as error:  # noqa: BLE001
        fact(f"Xplique maco with custom_shape=None: {type(error).__name__}")
    spectrum = np.load(Path(features_visualizations.__file__).with_name("spectrum_decorrelated.npy"))
    fact(f"Xplique's spectrum file: shape {spectrum.shape}, resized to custom_shape")
    flat = XpliqueObjective.neuron(model, "top_activation", 7 * 7 * 1280 // 2 + 5)
    fact(f"a flat neuron id of Xplique on top_activation (7, 7, 1280) reads as {from_xplique(flat)!r}")


def compare_with_xplique(model: keras.Model, classes, budget: dict) -> None:
    """Xplique's maco and ours on the same Xplique objective, at the same steps and crops."""
    targets = [285, 967, 812]  # Egyptian cat, espresso, space shuttle
    figure, axes = plt.subplots(2, len(targets), figsize=(3.2 * len(targets), 6.8))
    ours, ours_alpha = maco(
        XpliqueObjective.neuron(model, "predictions", targets),
        nb_steps=budget["steps"],
        nb_crops=budget["crops"],
        image_shape=budget["shape"],
        seed=0,
        verbose=0,
    )
    for column, target in enumerate(targets):
        plt.sca(axes[0, column])
        image, alpha = their_maco(
            XpliqueObjective.neuron(model, "predictions", target),
            nb_steps=budget["steps"],
            nb_crops=budget["crops"],
            values_range=(0, 1),
            custom_shape=budget["shape"],
        )
        xplique_plot_maco(image, alpha)
        axes[0, column].set_title(f"Xplique maco: {classes[target]}", fontsize=9)
        plot_maco(
            ours[column], ours_alpha[column], ax=axes[1, column], title=f"xplique_maco: {classes[target]}"
        )
    figure.suptitle(
        f"The same Xplique objective, {budget['steps']} steps, {budget['crops']} crops per step", fontsize=10
    )
    plt.tight_layout()
    figure.savefig(IMAGES / "xplique_maco_side_by_side.png", dpi=72)
    plt.close(figure)


def plot_with_xplique(images, transparencies, names) -> None:
    """Our results drawn by Xplique's plot_maco (top) and by ours (bottom)."""
    figure, axes = plt.subplots(2, len(images), figsize=(3.2 * len(images), 6.6))
    for column, name in enumerate(names):
        plt.sca(axes[0, column])
        xplique_plot_maco(images[column], transparencies[column])
        axes[0, column].set_title(f"xplique.plots.plot_maco\n{name}", fontsize=9)
        plot_maco(
            images[column],
            transparencies[column],
            ax=axes[1, column],
            title=f"xplique_maco.plot_maco\n{name}",
        )
    plt.tight_layout()
    figure.savefig(IMAGES / "xplique_plot_maco.png", dpi=72)
    plt.close(figure)


def attributions(model, photos, predicted, classes, images, transparencies) -> None:
    """Each photo with Xplique's Saliency and Grad-CAM, next to MACO of its predicted class."""
    targets = tf.one_hot(predicted, 1000)
    saliency = np.asarray(Saliency(model)(photos, targets))[..., 0]
    gradcam = np.asarray(GradCAM(model, conv_layer="top_activation")(photos, targets))
    if gradcam.ndim == 4:
        gradcam = gradcam[..., 0]
    figure, axes = plt.subplots(len(photos), 4, figsize=(12.5, 3.2 * len(photos)), squeeze=False)
    for row, index in enumerate(predicted):
        axes[row, 0].imshow(photos[row])
        axes[row, 0].set_title(f"photo -> {classes[index]}", fontsize=9)
        for column, (name, explanation) in enumerate(
            (("Saliency", saliency), ("Grad-CAM", gradcam)), start=1
        ):
            axes[row, column].imshow(photos[row].mean(axis=-1), cmap="gray")
            shown = explanation[row] / (np.percentile(explanation[row], 99.5) + 1e-12)
            axes[row, column].imshow(shown, cmap="inferno", alpha=0.65, vmin=0, vmax=1)
            axes[row, column].set_title(f"Xplique {name}", fontsize=9)
        plot_maco(images[row], transparencies[row], ax=axes[row, 3], title=f"xplique_maco: {classes[index]}")
        for axis in axes[row, :3]:
            axis.axis("off")
    plt.tight_layout()
    figure.savefig(IMAGES / "xplique_attributions.png", dpi=72)
    plt.close(figure)


def metrics(model, images, transparencies, predicted, steps: int) -> None:
    """Xplique's Deletion and Insertion on MACO images, with their transparency as the explanation."""
    inputs = np.asarray(images)
    targets = tf.one_hot(predicted, 1000).numpy()
    rng = np.random.default_rng(0)
    explanations = {
        "MACO transparency": np.asarray(transparencies)[..., 0],
        "Saliency of the MACO image": np.asarray(Saliency(model)(inputs, targets))[..., 0],
        "random map": rng.uniform(size=inputs.shape[:3]),
    }
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    print("Deletion / Insertion AUC on the MACO images (logit of their class, baseline 0.5 grey):")
    for name, explanation in explanations.items():
        for axis, metric in zip(axes, (Deletion, Insertion), strict=True):
            scorer = metric(model, inputs, targets, batch_size=16, steps=steps, baseline_mode=0.5)
            curve = scorer.detailed_evaluate(explanation)
            fractions = np.array(list(curve)) / (inputs.shape[1] * inputs.shape[2])
            axis.plot(
                fractions, list(curve.values()), label=f"{name} (AUC {scorer.evaluate(explanation):.2f})"
            )
            axis.set_title(f"Xplique {metric.__name__}", fontsize=10)
            axis.set_xlabel("fraction of pixels replaced by grey")
            print(f"  {metric.__name__:9s} {name:28s} {scorer.evaluate(explanation):.3f}")
    axes[0].set_ylabel("class logit, mean over images")
    for axis in axes:
        axis.legend(fontsize=8)
    plt.tight_layout()
    figure.savefig(IMAGES / "xplique_metrics.png", dpi=72)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="tiny budgets (checks that every line runs)")
    fast = parser.parse_args().fast
    budget = (
        dict(steps=4, crops=2, shape=(64, 64), metric_steps=4)
        if fast
        else dict(steps=128, crops=16, shape=(384, 384), metric_steps=16)
    )
    warnings.filterwarnings("ignore")
    print("Facts (Xplique 2.0.2 vs xplique_maco):")
    flexible = zoo.efficientnet_lite0()
    try:
        their_maco(XpliqueObjective.neuron(flexible, "predictions", 1), nb_steps=1, custom_shape=(64, 64))
    except Exception as error:  # noqa: BLE001  (what Xplique raises is the fact)
        fact(f"Xplique maco on a model taking any input size: {type(error).__name__}")
    model = fixed_size(flexible)
    classes = zoo.imagenet_classes()
    facts(model, budget)

    photos = np.stack([square(getattr(skimage.data, name)()) for name in PHOTO_NAMES])
    predicted = keras.ops.convert_to_numpy(model(photos)).argmax(axis=1)
    # At the model's input size: the attribution metrics read them as inputs.
    images, transparencies = maco(
        XpliqueObjective.neuron(model, "predictions", [int(i) for i in predicted]),
        nb_steps=budget["steps"],
        image_shape=(224, 224),
        seed=0,
        verbose=0,
    )
    images, transparencies = images.numpy(), transparencies.numpy()
    names = [classes[i] for i in predicted]
    plot_with_xplique(images, transparencies, names)
    attributions(model, photos, predicted, classes, images, transparencies)
    metrics(model, images, transparencies, predicted, budget["metric_steps"])
    compare_with_xplique(model, classes, budget)
    print(f"wrote {sorted(p.name for p in IMAGES.glob('xplique_*.png'))}")


if __name__ == "__main__":
    main()
