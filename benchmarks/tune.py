"""Choosing maco's defaults by measurement: one setting per run, scored like compare.py's quality.

Each run renders the first --classes of the benchmark classes for --seeds seeds on the source model
(equal compute: --steps, --crops, --size), judges them on the other model, and appends one
JSON line (settings, scores, seconds) to benchmarks/results/tuning.jsonl, so runs accumulate.

    python -m benchmarks.tune --source efficientnet_lite0 --set crop_size=0.5,1.0 --set noise=0.1
    python -m benchmarks.tune --table      # the accumulated runs, best judge top-5 first
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from xplique_maco import Neuron, Spectrum, maco, natural_spectrum  # noqa: E402
from xplique_maco.metrics import target_confidence  # noqa: E402

from ._shared.internals import MACO  # noqa: E402
from ._shared.models import CLASSES, JUDGES, load  # noqa: E402
from ._shared.report import tuning_table  # noqa: E402
from ._shared.results import RESULTS, TUNING_LOG  # noqa: E402
from ._shared.scoring import photo_statistics, score  # noqa: E402

# The settings tuning chooses, recorded at maco's defaults unless a run sets them.
TUNED = ("crop_size", "wrap_crops", "antialias", "noise", "optimizer", "learning_rate", "glance")
TUNED_DEFAULTS = {name: getattr(MACO, name) for name in TUNED}


def parse_setting(text: str) -> tuple[str, object]:
    """`name=value`: a number, a comma-separated pair, or a word."""
    name, _, value = text.partition("=")
    if not name or not value:
        raise argparse.ArgumentTypeError(f"expected name=value, received {text!r}")
    parts = value.split(",")
    try:
        numbers = [float(part) for part in parts]
    except ValueError:
        return name, {"True": True, "False": False}.get(value, value)
    return name, tuple(numbers) if len(numbers) > 1 else numbers[0]


def experimental(overrides: dict) -> dict:
    """Turns the experiment-only settings (magnitude_scale: the natural magnitude times a factor,
    i.e. more contrast) into maco arguments."""
    overrides = dict(overrides)
    if "magnitude_scale" in overrides:
        natural = natural_spectrum(3)
        overrides["magnitude"] = Spectrum(
            natural.magnitude * overrides.pop("magnitude_scale"),
            natural.mean,
            natural.recorrelation,
            natural.width,
        )
    return overrides


def run(args) -> dict:
    recorded = dict(args.set)
    overrides = experimental(recorded)
    classes = CLASSES[: args.classes]
    source, judge = load(args.source), load(JUDGES[args.source])
    settings = dict(nb_steps=args.steps, image_shape=(args.size,) * 2, nb_crops=args.crops, verbose=0)
    start = time.perf_counter()
    images = np.concatenate(
        [
            maco(Neuron(source, -1, classes), seed=seed, **settings, **overrides)[0].numpy()
            for seed in range(args.seeds)
        ]
    )
    seconds = time.perf_counter() - start
    if args.save:
        np.save(args.save, images)
    labels = classes * args.seeds
    return {
        "source": args.source,
        # Every tuned setting, defaults included (defaults change as tuning goes on).
        "settings": {**TUNED_DEFAULTS, **settings, **recorded},
        "classes": len(classes),
        "seeds": args.seeds,
        **score(images, labels, source, judge, photo_statistics()),
        "judge_confidence": float(np.mean(target_confidence(judge, images, labels))),
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--source", default="efficientnet_lite0", choices=sorted(JUDGES))
    parser.add_argument("--classes", type=int, default=8)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=128)
    parser.add_argument("--crops", type=int, default=8)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--set", type=parse_setting, action="append", default=[], help="a maco argument")
    parser.add_argument("--save", help="also write the images to this .npy file")
    parser.add_argument("--table", action="store_true", help="print the accumulated runs and stop")
    args = parser.parse_args()
    if args.table:
        print(tuning_table())
        return
    row = run(args)
    RESULTS.mkdir(exist_ok=True)
    with TUNING_LOG.open("a") as log:
        log.write(json.dumps(row) + "\n")
    print(json.dumps(row))


if __name__ == "__main__":
    main()
