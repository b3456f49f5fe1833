"""The path-similarity sanity check on EfficientNet-Lite0 with a planted unit: what it flags.

Logit 281 ("tabby cat") of the planted model is the original logit plus `GAIN` times a detector of
a fine red-green checkerboard (R - G through a 3 x 3 checkerboard filter, root mean square, soft
threshold above what the natural crops give), so on photos it behaves like the cat class. Logit
967 ("espresso") is left clean. maco and fourier render both for each seed; path_similarity
compares each image with the 16 natural crops that drive its unit most, at 6 layers.

Run: python -m benchmarks.sanity   (results: benchmarks/results/sanity.json, docs/images/sanity.png)
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from xplique_maco import Neuron, fourier, maco, zoo  # noqa: E402
from xplique_maco.metrics import offline_photos, path_similarity, random_crops  # noqa: E402

from ._shared.results import DOC_IMAGES, RESULTS  # noqa: E402

CLEAN, PLANTED = 967, 281
GAIN, THRESHOLD, SOFTNESS = 2000.0, 0.0053, 0.0013


class CheckerboardDetector(keras.layers.Layer):
    """Soft-thresholded RMS of (R - G) through a 3 x 3 checkerboard filter: the finest red-green pattern."""

    def call(self, images):
        kernel = tf.constant([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]])[:, :, None, None] / 16
        response = tf.nn.conv2d(images[..., :1] - images[..., 1:2], kernel, 1, "VALID")
        rms = tf.sqrt(tf.reduce_mean(tf.square(response), axis=[1, 2, 3]) + 1e-12)
        return SOFTNESS * tf.nn.softplus((rms - THRESHOLD) / SOFTNESS)


class Plant(keras.layers.Layer):
    def call(self, logits, detector):
        return logits + GAIN * detector[:, None] * tf.one_hot(PLANTED, logits.shape[-1])


def planted_model(base: keras.Model) -> keras.Model:
    inputs = keras.Input((None, None, 3), name="image")
    detector = CheckerboardDetector(name="detector")(inputs)
    return keras.Model(inputs, Plant(name="planted")(base(inputs), detector), name="planted")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--crops", type=int, default=256, help="natural crops in the pool")
    args = parser.parse_args()
    start = time.perf_counter()
    model = planted_model(zoo.efficientnet_lite0())
    pool = random_crops(offline_photos(), count=args.crops, size=(224, 224), seed=0)
    detector = keras.Model(model.inputs, model.get_layer("detector").output)
    on_photos = GAIN * detector(pool).numpy()
    print(
        f"planted term on {len(pool)} natural crops: max {on_photos.max():.3f}, median {np.median(on_photos):.4f}"
    )
    objective = Neuron(model, -1, [CLEAN, PLANTED])
    runs, results = {}, []
    for method in (maco, fourier):
        for seed in args.seeds:
            images, _ = method(
                objective, nb_steps=args.steps, image_shape=(args.size,) * 2, nb_crops=8, seed=seed, verbose=0
            )
            check = path_similarity(objective, images, pool)
            inputs = tf.image.resize(images, (224, 224), antialias=True)
            planted_term = GAIN * detector(inputs).numpy()
            print(f"\n{method.__name__}, seed {seed}: planted term {planted_term.round(2).tolist()}\n{check}")
            runs[(method.__name__, seed)] = (images.numpy(), check)
            for item, unit in enumerate(("clean 967", "planted 281")):
                results.append(
                    {
                        "method": method.__name__,
                        "seed": seed,
                        "unit": unit,
                        "planted_term": float(planted_term[item]),
                        "relative": dict(
                            zip(check.layers, check.relative[item].round(2).tolist(), strict=True)
                        ),
                        "z": dict(zip(check.layers, check.z[item].round(2).tolist(), strict=True)),
                        "median_relative": round(float(check.score[item]), 2),
                        "lowest_z": round(float(check.worst[item]), 2),
                        "flagged": bool(check.flagged[item]),
                    }
                )
    seconds = time.perf_counter() - start
    out = RESULTS / "sanity.json"
    record = {
        "steps": args.steps,
        "size": args.size,
        "pool": args.crops,
        "gain": GAIN,
        "seconds": round(seconds),
    }
    record["planted_term_on_photos"] = {"max": float(on_photos.max()), "median": float(np.median(on_photos))}
    out.write_text(json.dumps({**record, "runs": results}, indent=1) + "\n")
    picture(runs, pool, args.seeds[0])
    print(f"\n{seconds:.0f} s; wrote {out}")


def picture(runs: dict, pool: np.ndarray, seed: int) -> None:
    figure = plt.figure(figsize=(10, 7.6))
    grid = figure.add_gridspec(3, 4, height_ratios=[1, 1, 1.1])
    check = runs[("maco", seed)][1]
    for row, (method, title) in enumerate((("maco", "maco"), ("fourier", "fourier"))):
        images, result = runs[(method, seed)]
        for item, unit in enumerate(("clean: espresso 967", "planted: cat 281 + checkerboard")):
            axis = figure.add_subplot(grid[row, item])
            axis.imshow(np.clip(images[item], 0, 1))
            verdict = "FLAGGED" if result.flagged[item] else "ok"
            axis.set_title(f"{title}, {unit}\nlowest z {result.worst[item]:+.1f}: {verdict}", fontsize=8)
            axis.axis("off")
    for item, name in enumerate(("espresso", "cat")):
        for k in range(2):
            axis = figure.add_subplot(grid[item, 2 + k])
            axis.imshow(pool[check.top_indices[item, k]])
            axis.set_title(f"top natural crop {k + 1} ({name})", fontsize=8)
            axis.axis("off")
    curve = figure.add_subplot(grid[2, :])
    for (method, run_seed), (_, result) in runs.items():
        for item, style in ((0, "-"), (1, "--")):
            label = f"{method} seed {run_seed}, {'clean' if item == 0 else 'planted'}"
            curve.plot(
                result.z[item],
                style,
                marker="o",
                label=label,
                color="C0" if method == "maco" else "C3",
                alpha=1.0 if run_seed == seed else 0.45,
            )
    curve.axhline(check.threshold, color="k", lw=0.8, ls=":")
    curve.set_xticks(range(len(check.layers)), [name.split("/")[-1] for name in check.layers], fontsize=8)
    curve.set_ylabel("z: spreads of the unit's\ntop natural crops")
    curve.set_yscale("symlog", linthresh=5)
    curve.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    figure.savefig(DOC_IMAGES / "sanity.png", dpi=90)


if __name__ == "__main__":
    main()
