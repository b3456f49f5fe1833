"""The lens's time per class, phase by phase, and batched rendering of concepts against one call each.

Run: python -m benchmarks.lens [--classes 16] [--concepts 10] [--steps 32] [--image-size 224]
     python -m benchmarks.lens --demo   (the lens demo's photos and settings)

A lens of `--classes` classes of EfficientNet-Lite0: each class gets `--images` random views of the
offline photos (the figures are times, not concepts: any natural images do). It reports the
seconds per class of each phase (reading the images, crops and activations, factorisation,
importance, rendering, writing the folder and page) and the share of rendering; then it renders
the concepts of one class side by side in one batched run and in one `maco` call per concept,
at the same settings, and gives the speed-up. Adds its figures to benchmarks/results/lens.json.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from xplique_maco import Direction, lens, maco, zoo  # noqa: E402
from xplique_maco.metrics import offline_photos, random_crops  # noqa: E402

from ._shared.results import RESULTS  # noqa: E402


def views(classes: int, per_class: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`per_class` random 256-pixel views of the offline photos for each of `classes` classes."""
    pool = random_crops(
        offline_photos(), count=classes * per_class, size=(256, 256), scale=(0.5, 1.0), seed=seed
    )
    return pool, np.repeat(np.arange(classes) * 7, per_class)  # classes 0, 7, 14, ... of ImageNet


def timed_lens(model, images, settings: dict) -> tuple[dict, object]:
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        result = lens(model, images, output=folder, labels=zoo.imagenet_classes(), verbose=0, **settings)
        total = time.perf_counter() - start
    per_class = {phase: seconds / len(result) for phase, seconds in result.seconds.items()}
    return {
        "classes": len(result),
        "total seconds": round(total, 1),
        "seconds per class": {phase: round(seconds, 2) for phase, seconds in per_class.items()},
        "rendering share": round(result.seconds.get("rendering", 0.0) / sum(result.seconds.values()), 3),
    }, result


def batched_against_one_call_each(model, layer: str, vectors: np.ndarray, settings: dict) -> dict:
    """Seconds to render a class's concepts in one batched `maco` run and in one call per concept
    (each path traced once beforehand, so both compare steps, not tracing)."""
    maco_settings = {k: v for k, v in settings.items() if k in ("nb_steps", "image_shape", "nb_crops")}
    objective = Direction(model, layer, vectors)
    single = [Direction(model, layer, vector) for vector in vectors]
    maco(objective, **{**maco_settings, "nb_steps": 1}, seed=0, verbose=0)
    maco(single[0], **{**maco_settings, "nb_steps": 1}, seed=0, verbose=0)
    start = time.perf_counter()
    maco(objective, **maco_settings, seed=0, verbose=0)
    batched = time.perf_counter() - start
    start = time.perf_counter()
    for each in single:
        maco(each, **maco_settings, seed=0, verbose=0)
    one_each = time.perf_counter() - start
    return {
        "concepts": len(single),
        "batched seconds": round(batched, 1),
        "one call each seconds": round(one_each, 1),
        "speed-up": round(one_each / batched, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--demo", action="store_true", help="the lens demo's photos and settings")
    parser.add_argument("--classes", type=int, default=16)
    parser.add_argument("--images", type=int, default=4, help="views per class")
    parser.add_argument("--concepts", type=int, default=10)
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=224)
    args = parser.parse_args()
    model = zoo.efficientnet_lite0()
    if args.demo:
        from xplique_maco._apps.lens.demo import sorted_photos

        folder = tempfile.mkdtemp()
        images = sorted_photos(model, f"{folder}/photos", zoo.imagenet_classes())
        settings = dict(nb_concepts=4, crops_per_image=64, nb_steps=64, image_shape=(256, 256))
        name = "demo"
    else:
        images = views(args.classes, args.images)
        size = (args.image_size, args.image_size)
        settings = dict(nb_concepts=args.concepts, nb_steps=args.steps, image_shape=size)
        name = f"{args.classes} classes"
    run, result = timed_lens(model, images, settings)
    first = next(iter(result))
    run["rendering"] = batched_against_one_call_each(model, result.layer, first.vectors, settings)
    run["settings"] = {
        key: list(value) if isinstance(value, tuple) else value for key, value in settings.items()
    }
    path = RESULTS / "lens.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    results[name] = run
    path.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(run, indent=1))


if __name__ == "__main__":
    main()
