"""Side by side with the field: speed, memory, many objectives and quality against Xplique's MACO
and the Fourier baseline, in one run on one machine. Writes benchmarks/results/report.md.

Run everything (needs Xplique 2.0.2 beside this package, see tox.ini's bench environment):
    python -m benchmarks.compare report
Or one part:   python -m benchmarks.compare speed --model resnet50v2
               python -m benchmarks.compare quality --model mobilenet_v2 --method xplique --classes 16

Speed: seconds per step by (time of nb_steps = 1 + n) - (time of nb_steps = 1), over n, which
cancels per-call set-up and tracing. Memory: peak RSS of a separate process per method.
Quality: equal compute (same steps, crops and image size) for the three methods.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from xplique_maco import Neuron, maco  # noqa: E402
from xplique_maco.zoo import imagenet_classes  # noqa: E402

from ._shared.methods import MEMORY_METHODS, METHODS, render_classes, xplique_render  # noqa: E402
from ._shared.models import CLASSES, JUDGES, load  # noqa: E402
from ._shared.parts import part_command, quality_arguments  # noqa: E402
from ._shared.report import markdown  # noqa: E402
from ._shared.results import PARTS, RESULTS  # noqa: E402
from ._shared.scoring import photo_statistics, score  # noqa: E402
from ._shared.timing import bare_pass, per_step  # noqa: E402


def speed(args) -> dict:
    model = load(args.model)
    size, crops = args.size, args.crops
    objective = Neuron(model, -1, 1)
    bare = bare_pass(model, crops, 224)
    settings = dict(image_shape=(size, size), nb_crops=crops, seed=0, verbose=0)
    runs = {
        "ours": lambda n: maco(objective, nb_steps=n, **settings)[0].numpy(),
        # All crops in one model pass, as the bare pass and Xplique do (on CPUs ours makes
        # passes of about 16 by default).
        "ours_one_pass": lambda n: maco(objective, nb_steps=n, crops_per_pass=crops, **settings)[0].numpy(),
        "xplique": lambda n: xplique_render(model, 1, n, crops, size, 0),
        "bare": lambda n: [bare() for _ in range(n)],
    }
    runs["ours"](1)  # first traces
    runs["ours_one_pass"](1)
    results = per_step(runs, args.steps, args.repeats)
    second_call = time.perf_counter()
    maco(Neuron(model, -1, 2), nb_steps=2, image_shape=(size, size), nb_crops=crops, seed=1, verbose=0)
    ours_second = time.perf_counter() - second_call
    second_call = time.perf_counter()
    xplique_render(model, 2, 2, crops, size, 1)
    xplique_second = time.perf_counter() - second_call
    medians = {name: statistics.median(values) for name, values in results.items()}
    return {
        "model": args.model,
        "size": size,
        "crops": crops,
        "seconds_per_step": medians,
        "runs": results,
        "ours_over_xplique": medians["ours"] / medians["xplique"],
        "ours_over_bare": medians["ours"] / medians["bare"],
        "one_pass_over_bare": medians["ours_one_pass"] / medians["bare"],
        "second_call_2_steps": {"ours": ours_second, "xplique": xplique_second},
    }


def memory(args) -> dict:
    """Run in its own process: peak RSS of one method for a few steps."""
    model = load(args.model)
    if args.method in ("ours", "ours_one_pass"):
        maco(
            Neuron(model, -1, 1),
            nb_steps=args.steps,
            image_shape=(args.size,) * 2,
            nb_crops=args.crops,
            verbose=0,
            crops_per_pass=args.crops if args.method == "ours_one_pass" else None,
        )
    elif args.method == "xplique":
        xplique_render(model, 1, args.steps, args.crops, args.size, 0)
    return {"method": args.method, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def many(args) -> dict:
    model = load("efficientnet_lite0")
    classes = CLASSES[: args.classes]
    settings = dict(nb_steps=args.steps, image_shape=(args.size,) * 2, nb_crops=args.crops, seed=0, verbose=0)
    start = time.perf_counter()
    maco(Neuron(model, -1, classes), **settings)
    ours = time.perf_counter() - start
    start = time.perf_counter()
    for index in classes:
        xplique_render(model, index, args.steps, args.crops, args.size, 0)
    theirs = time.perf_counter() - start
    return {
        "classes": len(classes),
        "steps": args.steps,
        "ours_s": ours,
        "xplique_s": theirs,
        "speedup": theirs / ours,
    }


def quality(args) -> dict:
    """One method on one source model for seeds first_seed .. first_seed + seeds - 1, judged by
    the other model; images kept beside the part (the report scores all seeds together)."""
    classes = CLASSES[: args.classes]
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    source, judge = load(args.model), load(JUDGES[args.model])
    start = time.perf_counter()
    images = np.concatenate(
        [
            render_classes(args.method, source, classes, seed, args.steps, args.crops, args.size)
            for seed in seeds
        ]
    )
    labels = list(classes) * len(seeds)
    seconds = time.perf_counter() - start
    if args.images:
        np.savez_compressed(args.images, images=(np.clip(images, 0, 1) * 255).round().astype(np.uint8))
    return {
        "source": args.model,
        "judge": JUDGES[args.model],
        "method": args.method,
        "settings": {
            "classes": classes,
            "seeds": seeds,
            "steps": args.steps,
            "crops": args.crops,
            "size": args.size,
        },
        "images": len(images),
        "seconds": seconds,
        **score(images, labels, source, judge, photo_statistics()),
    }


def rescore(args) -> dict:
    """The quality figures of the images of several parts (the seeds of one row) taken together."""
    classes = CLASSES[: args.classes]
    images = np.concatenate([np.load(path)["images"] / 255.0 for path in args.images_from])
    labels = list(classes) * (len(images) // len(classes))
    source, judge = load(args.model), load(JUDGES[args.model])
    return score(images.astype(np.float32), labels, source, judge, photo_statistics())


def save_picture(pictures: dict, classes, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = imagenet_classes()
    rows = list(pictures)
    columns = len(next(iter(pictures.values())))
    figure, axes = plt.subplots(len(rows), columns, figsize=(2 * columns, 2.1 * len(rows)), squeeze=False)
    for r, key in enumerate(rows):
        for c in range(columns):
            axes[r, c].imshow(np.clip(pictures[key][c], 0, 1))
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
            if r == 0:
                axes[r, c].set_title(names[classes[c]], fontsize=8)
        axes[r, 0].set_ylabel(f"{key[1]}\n({key[0]})", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=70)


def in_subprocess(arguments: list[str]) -> dict:
    output = subprocess.run(part_command(arguments), capture_output=True, text=True, check=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def part(args, name: str, arguments: list[str], inputs: tuple[str, ...] = (), cheap: bool = False):
    """The cached part, recomputed when asked to (--redo) or when one of its input files is newer;
    with --cached-only, None for a part not computed yet (unless it is cheap to compute)."""
    path = PARTS / f"{name}.json"
    stale = path.exists() and any(
        Path(i).exists() and Path(i).stat().st_mtime > path.stat().st_mtime for i in inputs
    )
    if args.cached_only and not cheap and not path.exists():
        return None
    if not path.exists() or name in args.redo or stale:
        path.write_text(json.dumps(in_subprocess(arguments)))
    return json.loads(path.read_text())


def memory_rows(args) -> list[dict]:
    """Peak RSS of each model and method: the median of several processes, as it varies by tens
    of MB between identical ones (allocator)."""
    rows = []
    for m in args.speed_models:
        for method in MEMORY_METHODS:
            arguments = ["memory", "--model", m, "--method", method]
            runs = [part(args, f"memory_{m}_{method}_{r}", arguments) for r in range(args.memory_repeats)]
            peaks = [run["peak_rss_mb"] for run in runs if run is not None]
            if peaks:
                rows.append(
                    {"model": m, "method": method, "peak_rss_mb": statistics.median(peaks), "runs": peaks}
                )
    return rows


def quality_row(args, source: str, method: str) -> tuple[dict | None, str | None]:
    """One row of the quality table and the images file of its first seed: one part per seed
    (each keeps its images), then one score over all of them; (None, None) without any seed."""
    seed_parts, seed_images, seeds = [], [], []
    for seed in range(args.seeds):
        name = f"quality_{source}_{method}_seed{seed}"
        images = PARTS / f"{name}.npz"
        arguments = quality_arguments(source, method, seed, args.classes, args.quality_steps, images)
        result = part(args, name, arguments)
        if result is not None:
            seed_parts.append(result)
            seed_images.append(str(images))
            seeds.append(seed)
    if not seed_parts:
        return None, None
    first = seed_parts[0]
    row = {key: first[key] for key in ("source", "judge", "method")}
    row["settings"] = {**first["settings"], "seeds": seeds}
    row["images"] = sum(p["images"] for p in seed_parts)
    row["seconds"] = sum(p["seconds"] for p in seed_parts)
    rescore_arguments = ["rescore", "--model", source, "--classes", str(args.classes)]
    rescore_arguments += ["--images-from", *seed_images]
    name = f"quality_{source}_{method}_seeds{''.join(map(str, seeds))}"
    scores = part(args, name, rescore_arguments, inputs=tuple(seed_images), cheap=True)
    return {**scores, **row}, seed_images[0]


def report(args) -> None:
    """Everything, each part in its own process, then the markdown report.

    Each part's result is kept in results/parts/ (quality parts keep their images beside, as
    .npz, not committed); a rerun redoes only the missing parts and those named by --redo
    (e.g. `--redo quality_efficientnet_lite0_ours_seed0 quality_efficientnet_lite0_ours_seed1`
    after changing our defaults; each row's score over all its seeds is redone when one of
    its seeds' images is newer). Delete the folder to start over.
    """
    PARTS.mkdir(parents=True, exist_ok=True)
    sections = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs, TF {tf.__version__}"}
    sections["command"] = " ".join(["python -m benchmarks.compare", *sys.argv[1:]])
    sections["speed"] = [
        part(args, f"speed_{m}", ["speed", "--model", m, "--steps", str(args.steps)])
        for m in args.speed_models
    ]
    sections["memory"] = memory_rows(args)
    sections["many"] = part(args, "many", ["many", "--steps", "32"])
    table, pictures = [], {}
    for source in JUDGES:
        for method in METHODS:
            row, first_images = quality_row(args, source, method)
            if row is None:
                continue
            table.append(row)
            if Path(first_images).exists():
                pictures[(source, method)] = np.load(first_images)["images"][: min(8, args.classes)] / 255.0
    sections["quality"] = {"photos": photo_statistics(), "table": table}
    if pictures:
        save_picture(pictures, table[0]["settings"]["classes"], RESULTS / "quality.png")
    (RESULTS / "report.json").write_text(json.dumps(sections, indent=1))
    (RESULTS / "report.md").write_text(markdown(sections))
    print((RESULTS / "report.md").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parts = parser.add_subparsers(dest="part", required=True)
    for name in ("speed", "memory", "many", "quality", "rescore", "report"):
        part = parts.add_parser(name)
        part.add_argument("--model", default="efficientnet_lite0")
        part.add_argument(
            "--method",
            default="ours",
            choices=["ours", "ours_glance", "ours_one_pass", "xplique", "bare", "fourier"],
        )
        part.add_argument("--steps", type=int, default={"quality": 128, "many": 32}.get(name, 4))
        part.add_argument("--repeats", type=int, default=5)
        part.add_argument("--size", type=int, default=512 if name in ("speed", "memory") else 256)
        part.add_argument("--crops", type=int, default=32 if name in ("speed", "memory") else 8)
        part.add_argument("--classes", type=int, default=16)
        part.add_argument("--seeds", type=int, default=2)
        part.add_argument("--first-seed", type=int, default=0, help="quality: seeds start here")
        part.add_argument("--images-from", nargs="+", help="rescore: .npz files of quality parts")
        part.add_argument("--memory-repeats", type=int, default=3, help="report: processes per method")
        part.add_argument(
            "--cached-only", action="store_true", help="report: compute no missing part, report what exists"
        )
        part.add_argument("--quality-steps", type=int, default=128)
        part.add_argument("--speed-models", nargs="+", default=["efficientnet_lite0", "resnet50v2"])
        part.add_argument("--images", help="quality: also keep the images in this .npz file")
        part.add_argument("--redo", nargs="*", default=[], help="report: recompute these parts")
        part.add_argument("--json", action="store_true", help="print one JSON line (used by report)")
    args = parser.parse_args()
    if args.part == "report":
        report(args)
        return
    parts = {"speed": speed, "memory": memory, "many": many, "quality": quality, "rescore": rescore}
    result = parts[args.part](args)
    print(json.dumps(result) if args.json else json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
