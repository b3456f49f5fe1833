"""Makes every picture of the documentation site (docs/images/) with the library's own API.

    python scripts/make_docs_images.py            # the committed pictures (about 16 min on 2 busy CPUs)
    python scripts/make_docs_images.py --fast     # tiny settings into a temporary folder (about 1.5 min)
    python scripts/make_docs_images.py --only spectrum inversion

Needs the zoo extra (`pip install ".[zoo]"`) and scikit-image for the photos. docs/images/
demo_grid.png is not made here: it is the output of `xplique-maco demo` (README and home page).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import matplotlib  # noqa: E402
import tensorflow as tf  # noqa: E402

matplotlib.use("Agg")
tf.get_logger().setLevel("ERROR")  # each figure compiles its own step: retracing warnings are expected

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

DOCS_IMAGES = Path(__file__).resolve().parent.parent / "docs" / "images"
DPI = 90
MAX_BYTES = 250_000  # larger PNGs are reduced to a 256-colour palette


@dataclass(frozen=True)
class Settings:
    steps: int
    size: int
    crops: int
    inversion_steps: int
    atlas_steps: int


DEFAULT = Settings(steps=128, size=256, crops=8, inversion_steps=128, atlas_steps=64)
FAST = Settings(steps=3, size=64, crops=2, inversion_steps=3, atlas_steps=2)

MACO_CLASSES = ["peafowl", "strawberry"]
VGG_LAYER, VGG_CHANNELS = "block4_conv3", (12, 95)
INVERSION_LAYERS = ["block3b_add", "block6d_add"]
SEED = 0


def save(figure, path: Path) -> None:
    """Writes a figure as an RGB PNG, palette-reduced when it would be heavy."""
    buffer = io.BytesIO()
    figure.savefig(buffer, dpi=DPI, format="png", facecolor="white", bbox_inches="tight", pad_inches=0.05)
    plt.close(figure)
    picture = Image.open(buffer).convert("RGB")
    output = io.BytesIO()
    picture.save(output, format="PNG", optimize=True)
    if output.tell() > MAX_BYTES:
        reduced = io.BytesIO()
        picture.quantize(256, method=Image.Quantize.MEDIANCUT).save(reduced, format="PNG", optimize=True)
        output = min(output, reduced, key=lambda stream: stream.tell())
    path.write_bytes(output.getvalue())
    print(f"  wrote {path} ({output.tell() // 1000} KB)", flush=True)


def photo(name: str, size: int) -> np.ndarray:
    """A scikit-image sample photo, centre-cropped to a square and resized: (size, size, 3) in [0, 1]."""
    from skimage import data
    from skimage.transform import resize

    pixels = getattr(data, name)()
    height, width = pixels.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = pixels[top : top + side, left : left + side]
    return resize(square, (size, size), anti_aliasing=True).astype(np.float32)


class Models:
    """Loads each zoo model once, on first use."""

    def __init__(self):
        self._models = {}

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        if name not in self._models:
            from xplique_maco import zoo

            self._models[name] = getattr(zoo, name)()
        return self._models[name]


def maco_and_fourier(models: Models, settings: Settings, output: Path) -> None:
    """Two classes of EfficientNet-Lite0: MACO (image, then with transparency) against the Fourier
    baseline at equal compute; also the objective per step (History) and snapshots of the run."""
    from xplique_maco import History, Neuron, Snapshots, fourier, maco, plot_maco
    from xplique_maco.zoo import imagenet_classes

    classes = imagenet_classes()
    indices = classes.indices(MACO_CLASSES)
    objective = Neuron(models.efficientnet_lite0, "predictions", indices)
    common = dict(
        nb_steps=settings.steps,
        image_shape=(settings.size, settings.size),
        nb_crops=settings.crops,
        seed=SEED,
        verbose=0,
    )
    maco_history, fourier_history = History(), History()
    snapshots = Snapshots(every=max(1, settings.steps // 4))
    images, transparencies = maco(objective, callbacks=[maco_history, snapshots], **common)
    baseline, _ = fourier(objective, callbacks=[fourier_history], **common)

    figure, axes = plt.subplots(len(indices), 3, figsize=(9, 3.2 * len(indices)), squeeze=False)
    for row, name in enumerate(MACO_CLASSES):
        plot_maco(images[row], ax=axes[row, 0], title=f"MACO: {name}")
        plot_maco(images[row], transparencies[row], ax=axes[row, 1], title="MACO, transparency as alpha")
        plot_maco(baseline[row], ax=axes[row, 2], title=f"Fourier baseline: {name}")
    figure.tight_layout()
    save(figure, output / "maco_vs_fourier.png")

    figure, axes = plt.subplots(1, 3, figsize=(10.5, 3.6))
    plot_maco(images[0], transparencies[0], show="both", ax=axes[:2])
    plot_maco(images[0], transparencies[0], ax=axes[2])
    axes[0].set_title("image")
    axes[1].set_title("transparency (scaled to its 99th percentile)")
    axes[2].set_title("image with transparency as alpha")
    figure.tight_layout()
    save(figure, output / "transparency.png")

    figure, axis = plt.subplots(figsize=(6.4, 3.6))
    steps = np.arange(len(maco_history.values))
    for item, name in enumerate(MACO_CLASSES):
        (line,) = axis.plot(steps, maco_history.values[:, item], label=f"MACO: {name}")
        axis.plot(
            steps, fourier_history.values[:, item], "--", color=line.get_color(), label=f"Fourier: {name}"
        )
    axis.set_xlabel("step")
    axis.set_ylabel("class logit (mean over the crops)")
    axis.set_title("History().values during the two runs above")
    axis.legend(fontsize=8)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    save(figure, output / "history.png")

    frames = snapshots.images[:, 0]
    figure, axes = plt.subplots(1, len(frames), figsize=(2.4 * len(frames), 2.7), squeeze=False)
    for axis, frame, step in zip(axes[0], frames, snapshots.steps, strict=True):
        plot_maco(frame, ax=axis, title=f"step {step}")
    figure.tight_layout()
    save(figure, output / "snapshots.png")


def objective_algebra(models: Models, settings: Settings, output: Path) -> None:
    """Two channels of VGG16's block4_conv3 and their sum, each its own image."""
    from xplique_maco import Channel, maco, plot_maco_grid

    model = models.vgg16_conv
    first, second = VGG_CHANNELS
    common = dict(
        nb_steps=settings.steps,
        image_shape=(settings.size, settings.size),
        nb_crops=settings.crops,
        model_input_size=(128, 128) if settings.size >= 128 else (32, 32),
        seed=SEED,
        verbose=0,
    )
    both = Channel(model, VGG_LAYER, [first, second])
    total = Channel(model, VGG_LAYER, first) + Channel(model, VGG_LAYER, second)
    singles, single_masks = maco(both, **common)
    summed, summed_mask = maco(total, **common)
    images = np.concatenate([singles.numpy(), summed.numpy()])
    masks = np.concatenate([single_masks.numpy(), summed_mask.numpy()])
    titles = [repr(Channel(model, VGG_LAYER, first)), repr(Channel(model, VGG_LAYER, second))]
    titles.append(repr(total).replace(" + ", "\n+ "))
    figure = plot_maco_grid(images, masks, titles=titles, columns=3, size=3.4)
    for axis in figure.axes:
        axis.title.set_fontsize(10)
    save(figure, output / "objective_algebra.png")


def inversion(models: Models, settings: Settings, output: Path) -> None:
    """Feature inversion of two photos at a middle and a deep layer of EfficientNet-Lite0."""
    from xplique_maco import Inversion, maco, plot_maco

    size = 224 if settings.size >= 128 else 64
    names = ["chelsea", "coffee"]
    references = np.stack([photo(name, size) for name in names])
    rows = [("reference photo", references)]
    for layer in INVERSION_LAYERS:
        images, _ = maco(
            Inversion(models.efficientnet_lite0, layer, references),
            nb_steps=settings.inversion_steps,
            image_shape=(size, size),
            nb_crops=settings.crops,
            crop_size=(0.9, 1.0),
            model_input_size=(size, size),
            seed=SEED,
            verbose=0,
        )
        rows.append((f"Inversion at {layer}", images.numpy()))
    figure, axes = plt.subplots(len(names), len(rows), figsize=(3.0 * len(rows), 3.2 * len(names)))
    for column, (title, batch) in enumerate(rows):
        for row in range(len(names)):
            plot_maco(batch[row], ax=axes[row, column], title=title if row == 0 else None, contrast=None)
    figure.tight_layout()
    save(figure, output / "inversion.png")


def spectrum(models: Models, settings: Settings, output: Path) -> None:
    """The shipped colour magnitude (log scale, one panel per decorrelated channel) and its radial profile."""
    from xplique_maco import natural_spectrum

    shipped = natural_spectrum(3)
    magnitude = shipped.magnitude
    height = magnitude.shape[1]
    names = ["channel 0 (luminance)", "channel 1 (colour opponent)", "channel 2 (colour opponent)"]
    figure, axes = plt.subplots(1, 4, figsize=(14, 3.6), gridspec_kw={"width_ratios": [1, 1, 1, 1.4]})
    logs = np.log10(np.fft.fftshift(magnitude, axes=1) + 1e-6)
    low, high = np.percentile(logs[:, :, 1:], [1, 99.9])
    for axis, plane, name in zip(axes[:3], logs, names, strict=True):
        shown = axis.imshow(plane, cmap="magma", vmin=low, vmax=high, origin="lower", aspect="auto")
        axis.set_title(name, fontsize=9)
        axis.set_xlabel("horizontal frequency (0 to W/2)")
        axis.set_yticks([0, height // 2, height - 1], ["-H/2", "0", "H/2"])
    axes[0].set_ylabel("vertical frequency")
    figure.colorbar(shown, ax=axes[2], label="log10 magnitude")
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(shipped.width)[None, :]
    radius = np.sqrt(fy**2 + fx**2)
    rings = np.round(radius * height).astype(int)
    ring_ids = np.arange(1, height // 2 + 1)
    frequencies = ring_ids / height
    for plane, name in zip(magnitude, names, strict=True):
        profile = np.array([plane[rings == ring].mean() for ring in ring_ids])
        axes[3].loglog(frequencies, profile, label=name)
    first = np.array([plane[rings == 1].mean() for plane in magnitude[:1]])[0]
    axes[3].loglog(frequencies, first * (frequencies / frequencies[0]) ** -1.0, "k:", label="1 / f")
    axes[3].set_xlabel("radial frequency (cycles per pixel)")
    axes[3].set_ylabel("mean magnitude")
    axes[3].set_title("radial profile", fontsize=9)
    axes[3].legend(fontsize=7)
    axes[3].grid(alpha=0.3, which="both")
    figure.tight_layout()
    save(figure, output / "natural_spectrum.png")


def grayscale(models: Models, settings: Settings, output: Path) -> None:
    """One class rendered for a 1-channel model: the shipped grayscale spectrum, then one computed
    from three texture photos with `compute_spectrum`."""
    import keras
    from skimage import data

    from xplique_maco import Neuron, compute_spectrum, maco, plot_maco
    from xplique_maco.zoo import imagenet_classes

    colour = models.efficientnet_lite0
    gray = keras.Input((None, None, 1))
    # The objective reads a layer used once (the nested model also has its own colour input).
    logits = keras.layers.Identity(name="logits")(colour(keras.ops.repeat(gray, 3, axis=-1)))
    model = keras.Model(gray, logits, name="efficientnet_lite0_gray")
    name = MACO_CLASSES[0]
    objective = Neuron(model, "logits", imagenet_classes().index(name))
    textures = [data.brick(), data.grass(), data.gravel()]
    textured = compute_spectrum(textures, values_range=(0, 255))
    common = dict(
        nb_steps=settings.steps,
        image_shape=(settings.size, settings.size),
        nb_crops=settings.crops,
        model_input_size=(224, 224),
        seed=SEED,
        verbose=0,
    )
    shipped_images, _ = maco(objective, **common)
    texture_images, _ = maco(objective, magnitude=textured, **common)
    figure, axes = plt.subplots(1, 2, figsize=(6.4, 3.5))
    plot_maco(shipped_images[0], ax=axes[0], title=f"{name}, natural_spectrum(1)")
    plot_maco(texture_images[0], ax=axes[1], title=f"{name}, compute_spectrum(textures)")
    for axis in axes:
        axis.title.set_fontsize(9)
    figure.tight_layout()
    save(figure, output / "grayscale.png")


def atlas(models: Models, settings: Settings, output: Path) -> None:
    """`xplique-maco render` on four channels, then a contact sheet of its RGBA files."""
    command = [
        sys.executable,
        "-m",
        "xplique_maco.cli",
        "render",
        "zoo:efficientnet_lite0",
        "--layer",
        "block5c_add",
        "--objective",
        "channel",
        "--indices",
        "0:4",
        "--steps",
        str(settings.atlas_steps),
        "--image-size",
        "128" if settings.size >= 128 else "32",
        "--crops",
        "4" if settings.crops >= 4 else str(settings.crops),
        "--model-input-size",
        "128",
        "128",
        "--batch-size",
        "4",
    ]
    with tempfile.TemporaryDirectory() as folder:
        print("  $", " ".join(["xplique-maco", *command[3:], "--output", "atlas/"]), flush=True)
        subprocess.run([*command, "--output", folder], check=True)
        manifest = Path(folder) / "manifest.jsonl"
        entries = [json.loads(line) for line in manifest.read_text().splitlines()]
        print("  first manifest line:", json.dumps(entries[0]), flush=True)
        figure, axes = plt.subplots(1, len(entries), figsize=(2.6 * len(entries), 2.9), squeeze=False)
        for axis, entry in zip(axes[0], entries, strict=True):
            rgba = np.asarray(Image.open(Path(folder) / entry["files"]["rgba"])) / 255.0
            axis.imshow(rgba)
            axis.set_title(entry["files"]["rgba"], fontsize=7)
            axis.axis("off")
        figure.tight_layout()
        save(figure, output / "atlas.png")


FIGURES = {
    "maco": maco_and_fourier,
    "algebra": objective_algebra,
    "inversion": inversion,
    "spectrum": spectrum,
    "grayscale": grayscale,
    "atlas": atlas,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="tiny settings; writes to a temporary folder")
    parser.add_argument("--output", type=Path, help="output folder (default docs/images, or a temporary one)")
    parser.add_argument("--only", nargs="+", choices=sorted(FIGURES), help="make only these figures")
    args = parser.parse_args(argv)
    settings = FAST if args.fast else DEFAULT
    output = args.output or (Path(tempfile.mkdtemp(prefix="docs_images_")) if args.fast else DOCS_IMAGES)
    output.mkdir(parents=True, exist_ok=True)
    models = Models()
    start = time.perf_counter()
    for name in args.only or FIGURES:
        began = time.perf_counter()
        print(f"{name} ...", flush=True)
        FIGURES[name](models, settings, output)
        print(f"  {time.perf_counter() - began:.0f} s", flush=True)
    print(f"All done in {time.perf_counter() - start:.0f} s; pictures in {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
