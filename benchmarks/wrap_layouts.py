"""Crops that wrap around the periodic image, or crops inside it, for objectives that want a layout.

For small CNNs with random weights (a Flatten head and a global-pooling head), renders the
logits and a Neuron at the centre of the last conv layer with wrapped crops and with crops
inside the image (what `wrap_crops=None` picks for them), and scores the whole image resized to
the model's input: in standard deviations of the same objective on 64 random starting images.
Also prints the share of the transparency in the central third of the image (uniform: 1/9).

    python -m benchmarks.wrap_layouts            # 4 model seeds x 2 render seeds, about 4 minutes
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from xplique_maco import Channel, Neuron, maco  # noqa: E402

SIZE = 32
IMAGE = (64, 64)
UNITS = [1, 2, 3, 4]


def small_cnn(head: str, seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = inputs
    for index, filters in enumerate((16, 32, 64)):
        x = keras.layers.Conv2D(filters, 3, activation="relu", padding="same", name=f"conv{index + 1}")(x)
        if index < 2:
            x = keras.layers.MaxPooling2D()(x)
    pooled = (keras.layers.Flatten if head == "flatten" else keras.layers.GlobalAveragePooling2D)()(x)
    return keras.Model(inputs, keras.layers.Dense(10, name="logits")(pooled), name=f"{head}_{seed}")


def starts(count: int) -> np.ndarray:
    """Random starting images of maco (its initial phases), resized to the model's input."""
    images, _ = maco(Neuron(small_cnn("pooled", 0), "logits", [0] * count), **settings(1), learning_rate=1e-9)
    return tf.image.resize(images, (SIZE, SIZE)).numpy()


def settings(steps: int, seed: int = 12345) -> dict:
    return dict(
        nb_steps=steps, image_shape=IMAGE, nb_crops=8, model_input_size=(SIZE, SIZE), seed=seed, verbose=0
    )


def unit_values(model: keras.Model, read, images: np.ndarray) -> np.ndarray:
    """(N, len(UNITS)) values of `read` (a function of the model's output) on whole images."""
    return read(model(tf.image.resize(images, (SIZE, SIZE)))).numpy()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model-seeds", type=int, default=4)
    parser.add_argument("--render-seeds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=48)
    args = parser.parse_args()
    random_images = starts(64)
    rows = []
    for head in ("flatten", "pooled"):
        for model_seed in range(args.model_seeds):
            model = small_cnn(head, model_seed)
            centre = keras.Model(model.inputs, model.get_layer("conv3").output)
            # Channels alive at the centre on random images (a unit that is 0 there has no gradient).
            alive = (centre(random_images).numpy()[:, SIZE // 8, SIZE // 8] > 0).mean(axis=0)
            channels = [int(c) for c in np.argsort(-alive, kind="stable")[: len(UNITS)]]
            cases = {
                "logits": (Neuron(model, "logits", UNITS), lambda out: tf.gather(out, UNITS, axis=1), model),
                "Neuron(conv3)": (
                    Neuron(model, "conv3", channels),
                    lambda out, c=channels: tf.gather(
                        out[:, out.shape[1] // 2, out.shape[2] // 2], c, axis=1
                    ),
                    centre,
                ),
                "Channel(conv3)": (
                    Channel(model, "conv3", channels),
                    lambda out, c=channels: tf.gather(tf.reduce_mean(out, axis=(1, 2)), c, axis=1),
                    centre,
                ),
            }
            for name, (objective, read, reader) in cases.items():
                if head == "flatten" and name != "logits":
                    continue
                base = unit_values(reader, read, random_images)
                for render_seed in range(args.render_seeds):
                    for wrap in (True, False):
                        images, masks = maco(objective, wrap_crops=wrap, **settings(args.steps, render_seed))
                        values = unit_values(reader, read, images.numpy()).diagonal()
                        score = (values - base.mean(axis=0)) / base.std(axis=0)
                        mask = masks.numpy()[..., 0]
                        third = IMAGE[0] // 3
                        central = mask[:, third:-third, third:-third].sum(axis=(1, 2)) / mask.sum(axis=(1, 2))
                        rows.append((head, name, wrap, objective.fixed_layout, score.mean(), central.mean()))
    print(f"{'head':8s} {'objective':15s} {'crops':8s} {'score (sd)':>22s} {'central third':>14s}  default")
    for head, name in sorted({(row[0], row[1]) for row in rows}):
        for wrap in (True, False):
            chosen = [row for row in rows if row[:3] == (head, name, wrap)]
            scores = [row[4] for row in chosen]
            default = (chosen[0][3] is None) == wrap
            print(
                f"{head:8s} {name:15s} {'wrapped' if wrap else 'inside':8s} "
                f"{np.mean(scores):7.2f} ({min(scores):5.2f}..{max(scores):5.2f}) "
                f"{np.mean([row[5] for row in chosen]):14.2f}  {'<- default' if default else ''}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
