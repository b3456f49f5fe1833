"""Same images before and after a change that must not change them: renders a fixed set of runs.

`python -m benchmarks.same_images save OUT.npz` renders every case of `CASES` (maco, fourier and
accentuate on small models and the zoo's EfficientNet-Lite0, with the options that take other
paths through the engine) with fixed seeds and saves the images, transparencies and objective
histories; `compare A.npz B.npz` prints the largest difference of each case and fails above the
tolerance. Run `save` in the old tree and the new one (PYTHONPATH), then `compare`.
Only public names are used, so the script runs against any version of the library.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

TOLERANCE = 1e-6


def _tiny(channels: int = 3, size: int = 32) -> keras.Model:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((size, size, channels), name="image")
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv1")(inputs)
    x = keras.layers.Conv2D(16, 3, strides=2, activation="relu", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(10, name="logits")(x)
    return keras.Model(inputs, outputs, name=f"tiny_{channels}")


def _flatten_head() -> keras.Model:
    keras.utils.set_random_seed(2)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu", name="conv")(inputs)
    x = keras.layers.Flatten(name="flatten")(x)
    outputs = keras.layers.Dense(5, name="logits")(x)
    return keras.Model(inputs, outputs, name="flat_head")


def _cases():
    """Name -> function returning (images, transparencies, history values)."""
    import tensorflow as tf

    import xplique_maco as xm

    tiny, gray, flat = _tiny(), _tiny(1), _flatten_head()
    rng = np.random.default_rng(0)
    photos = rng.uniform(0.1, 0.9, (2, 40, 40, 3)).astype("float32")
    small = dict(image_shape=(48, 48), nb_crops=4, nb_steps=12, seed=3, verbose=0)

    def run(function, objective, **settings):
        history = xm.History()
        images, transparencies = function(objective, callbacks=[history], **settings)
        return np.asarray(images), np.asarray(transparencies), history.values

    def centred(activation, channel):
        picked = tf.gather(activation, channel, axis=-1, batch_dims=1)
        return picked[:, picked.shape[1] // 2, picked.shape[2] // 2] - tf.reduce_mean(picked, axis=(1, 2))

    cases = {
        "maco_defaults_tiny": lambda: run(xm.maco, xm.Neuron(tiny, "logits", [1, 4, 7]), **small),
        "maco_no_glance_wrap_off": lambda: run(
            xm.maco, xm.Channel(tiny, "conv2", [2, 5]), **small, glance=0.0, wrap_crops=False
        ),
        "maco_sum_objective": lambda: run(
            xm.maco,
            xm.Channel(tiny, "conv2", 3) + 0.5 * xm.Layer(tiny, "conv1") - xm.Neuron(tiny, "logits", [0, 2]),
            **small,
        ),
        "maco_direction_custom": lambda: run(
            xm.maco,
            xm.Direction(tiny, "conv2", rng.normal(size=(2, 16)).astype("float32"))
            + xm.Custom(tiny, "conv2", centred, positional=True, channel=[1, 9]),
            **small,
        ),
        "maco_chunks_passes_items": lambda: run(
            xm.maco,
            xm.Neuron(tiny, "logits", list(range(6))),
            **small,
            batch_size=2,
            crops_per_pass=4,
            items=[5, 0, 3, 2],
        ),
        "maco_sgd_constant_lr_no_antialias": lambda: run(
            xm.maco,
            xm.Neuron(tiny, "logits", [3]),
            **small,
            optimizer="sgd",
            learning_rate=30.0,
            antialias=False,
            noise=0.0,
        ),
        "maco_adam_values_range": lambda: run(
            xm.maco, xm.Neuron(tiny, "logits", [6]), **small, optimizer=xm.Adam(), values_range=(-1.0, 1.0)
        ),
        "maco_grayscale_odd": lambda: run(
            xm.maco, xm.Neuron(gray, "logits", [1, 2]), **{**small, "image_shape": (45, 61)}
        ),
        "maco_flatten_head": lambda: run(xm.maco, xm.Neuron(flat, "logits", [0, 3]), **small),
        "maco_diversity": lambda: run(
            xm.maco, xm.Neuron(tiny, "logits", [1, 2]) - 2.0 * xm.Diversity(tiny, "conv1", images=2), **small
        ),
        "maco_inversion": lambda: run(
            xm.maco,
            xm.Inversion(tiny, "conv2", photos[:, :32, :32]),
            **{**small, "image_shape": (32, 32)},
            crop_size=(0.9, 1.0),
        ),
        "maco_early_stopping": _early(xm, tiny, small),
        "maco_own_spectrum": lambda: run(
            xm.maco,
            xm.Neuron(tiny, "logits", [8]),
            **small,
            magnitude=xm.compute_spectrum(photos, size=32),
        ),
        "fourier_defaults": lambda: run(xm.fourier, xm.Neuron(tiny, "logits", [1, 4]), **small),
        "accentuate_tiny": lambda: run(
            xm.accentuate,
            xm.Neuron(tiny, "logits", [2, 5]),
            photos=photos,
            layer="conv1",
            nb_steps=8,
            seed=1,
            verbose=0,
        ),
        "maco_zoo_lite0": lambda: run(
            xm.maco,
            xm.Neuron(xm.zoo.efficientnet_lite0(), "predictions", [1, 967]),
            nb_steps=4,
            image_shape=(256, 256),
            seed=0,
            verbose=0,
        ),
    }
    return cases


def _early(xm, tiny, small):
    def run():
        stopping = xm.EarlyStopping(window=4, min_rise=0.05, every=2)
        history = xm.History()
        images, transparencies = xm.maco(
            xm.Neuron(tiny, "logits", [0, 1, 2, 3]),
            callbacks=[stopping, history],
            **{**small, "nb_steps": 24},
        )
        values = np.concatenate([history.values, stopping.stopped_at[None].astype(float)])
        return np.asarray(images), np.asarray(transparencies), values

    return run


def save(path: str) -> None:
    results = {}
    for name, case in _cases().items():
        images, transparencies, values = case()
        results[f"{name}/images"] = images
        results[f"{name}/transparencies"] = transparencies
        results[f"{name}/values"] = values
        print(f"{name}: images {images.shape}", flush=True)
    np.savez_compressed(path, **results)


def compare(first: str, second: str, tolerance: float = TOLERANCE) -> int:
    old, new = np.load(first), np.load(second)
    if set(old.files) != set(new.files):
        print(f"different cases: {sorted(set(old.files) ^ set(new.files))}")
        return 1
    worst = 0.0
    for key in sorted(old.files):
        a, b = old[key], new[key]
        if a.shape != b.shape:
            print(f"{key}: shapes {a.shape} vs {b.shape}")
            return 1
        both_nan = np.isnan(a) & np.isnan(b)
        if (np.isnan(a) != np.isnan(b)).any():
            print(f"{key}: NaN in different places")
            return 1
        difference = float(np.max(np.where(both_nan, 0.0, np.abs(a - b)), initial=0.0))
        scale = float(np.max(np.where(both_nan, 0.0, np.abs(a)), initial=0.0))
        relative = difference / max(scale, 1.0)
        worst = max(worst, relative)
        print(f"{key:55s} max |difference| {difference:.3g} (relative {relative:.3g})")
    print(f"largest relative difference {worst:.3g}; tolerance {tolerance:g}")
    return 0 if worst <= tolerance else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    saving = commands.add_parser("save", help="render every case into an .npz file")
    saving.add_argument("output")
    comparing = commands.add_parser("compare", help="compare two .npz files written by save")
    comparing.add_argument("first")
    comparing.add_argument("second")
    comparing.add_argument("--tolerance", type=float, default=TOLERANCE)
    args = parser.parse_args(argv)
    if args.command == "save":
        save(args.output)
        return 0
    return compare(args.first, args.second, args.tolerance)


if __name__ == "__main__":
    sys.exit(main())
