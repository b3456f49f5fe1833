"""Seconds per step of maco under the settings tune.py compares (image size, antialiasing, crops,
glances), measured side by side in one process, alternating, on EfficientNet-Lite0: the "per
second" half of "transferability per second". Quality comes from tune.py; this gives the cost.

Run: python -m benchmarks.settings_cost [--settings "256 px, 8 crops" "256 px, 8 crops, no glances"]
"""

from __future__ import annotations

import argparse
import os
import statistics

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from xplique_maco import Neuron, maco  # noqa: E402

from ._shared.models import load  # noqa: E402
from ._shared.timing import per_step  # noqa: E402

SETTINGS = {
    "256 px, 8 crops": dict(image_shape=(256, 256), nb_crops=8),
    "256 px, 8 crops, no glances": dict(image_shape=(256, 256), nb_crops=8, glance=0.0),
    "512 px, 8 crops": dict(image_shape=(512, 512), nb_crops=8),
    "512 px, 8 crops, no glances": dict(image_shape=(512, 512), nb_crops=8, glance=0.0),
    "512 px, 8 crops, no antialias": dict(image_shape=(512, 512), nb_crops=8, antialias=False),
    "512 px, 4 crops": dict(image_shape=(512, 512), nb_crops=4),
    "512 px, 32 crops": dict(image_shape=(512, 512), nb_crops=32),
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--steps", type=int, default=6, help="steps per timed call")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--settings", nargs="+", choices=list(SETTINGS), help="these only (default: all)")
    args = parser.parse_args()
    objective = Neuron(load(args.model), -1, 1)

    def render(settings: dict):
        return lambda steps: maco(objective, nb_steps=steps, seed=0, verbose=0, **settings)[0].numpy()

    chosen = args.settings or list(SETTINGS)
    if "256 px, 8 crops" not in chosen:
        chosen = ["256 px, 8 crops", *chosen]  # the baseline of the ratios
    runs = {name: render(SETTINGS[name]) for name in chosen}
    for run in runs.values():
        run(1)  # trace
    times = per_step(runs, args.steps, args.repeats)
    base = statistics.median(times["256 px, 8 crops"])
    for name, values in times.items():
        median = statistics.median(values)
        spread = ", ".join(f"{v:.2f}" for v in values)
        print(f"{name:30}: {median:.3f} s per step, {median / base:.2f}x of 256 px (runs: {spread})")


if __name__ == "__main__":
    main()
