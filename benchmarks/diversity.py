"""Diversity on a real model: K images of one class with a Gram-matrix penalty, against K seeds.

For each class, two runs with the same seed (so the same K starting phases): the class logit
alone, rendered K times (K independent seeds), and the logit minus `weight` times
`Diversity(model, layer, images=K)`. On the final images, resized to the model's input and shown
whole (no crops), it reports the mean pairwise cosine similarity of their Gram matrices at
`layer` (what the penalty lowers; `evaluate` of the Diversity term), the mean class logit of
the Diversity run over that of the seeds run, and how many images of each run the model
classifies as the class (top-1). It saves the figures (benchmarks/results/diversity.json and
.md) and a picture of the first class's K images without and with diversity.

Run: python -m benchmarks.diversity            (MobileNetV2, 3 classes, K = 8, 64 steps, 224 px)
     python -m benchmarks.diversity --images 16 --classes 130 --name diversity_16 \
         --picture docs/images/diversity_16.png
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from xplique_maco import Diversity, Neuron, evaluate, maco  # noqa: E402
from xplique_maco.zoo import imagenet_classes, load_model  # noqa: E402

from ._shared.results import DOC_IMAGES, RESULTS  # noqa: E402

PICTURE = DOC_IMAGES / "diversity.png"


def measured(model, layer: str, images: tf.Tensor, index: int, input_size: int) -> dict:
    """Gram similarity at `layer`, class logit and top-1 count of K images, seen whole."""
    whole = tf.image.resize(images, (input_size, input_size), antialias=True)
    count = int(images.shape[0])
    logits = model(whole, training=False).numpy()
    return {
        "gram_similarity": float(evaluate(Diversity(model, layer, images=count), whole).mean()),
        "logit": float(logits[:, index].mean()),
        "top1": int((logits.argmax(axis=1) == index).sum()),
    }


def run_class(model, args, index: int) -> tuple[dict, tf.Tensor, tf.Tensor]:
    settings = dict(
        nb_steps=args.steps,
        image_shape=(args.size, args.size),
        nb_crops=args.crops,
        glance=args.glance,
        seed=args.seed,
        verbose=0,
    )
    started = time.perf_counter()
    seeds, _ = maco(Neuron(model, -1, [index] * args.images), **settings)
    middle = time.perf_counter()
    penalty = Diversity(model, args.layer, images=args.images)
    diverse, _ = maco(Neuron(model, -1, index) - args.weight * penalty, **settings)
    ended = time.perf_counter()
    alone = measured(model, args.layer, seeds, index, args.input_size)
    together = measured(model, args.layer, diverse, index, args.input_size)
    row = {
        "class": index,
        "name": imagenet_classes()[index],
        "seeds": {**alone, "seconds": round(middle - started, 1)},
        "diversity": {**together, "seconds": round(ended - middle, 1)},
        "logit_ratio": together["logit"] / alone["logit"],
    }
    return row, seeds, diverse


def save_picture(seeds: tf.Tensor, diverse: tf.Tensor, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    count = seeds.shape[0]
    columns = min(count, 8)
    rows_per_run = -(-count // columns)
    figure, axes = plt.subplots(
        2 * rows_per_run, columns, figsize=(1.6 * columns, 1.75 * 2 * rows_per_run), squeeze=False
    )
    for run, (images, label) in enumerate(((seeds, "independent seeds"), (diverse, "with Diversity"))):
        for position in range(rows_per_run * columns):
            axis = axes[run * rows_per_run + position // columns, position % columns]
            axis.axis("off")
            if position < count:
                axis.imshow(np.clip(images[position].numpy(), 0.0, 1.0))
        axes[run * rows_per_run, 0].set_title(label, loc="left", fontsize=10)
    figure.suptitle(title, fontsize=11)
    figure.tight_layout(h_pad=1.2)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)


def markdown(report: dict) -> str:
    settings = report["settings"]
    lines = [
        "# Diversity against independent seeds",
        "",
        f"Machine: {report['machine']}. Command: `{report['command']}`.",
        "",
        f"Model {settings['model']}, penalty `- {settings['weight']:g} * Diversity(model, "
        f'"{settings["layer"]}", images={settings["images"]})` on the class logit, {settings["steps"]} '
        f"steps, {settings['size']} px, {settings['crops']} crops per image, glance "
        f"{settings.get('glance', 0.0):g}, seed {settings['seed']}. "
        "Gram similarity: mean pairwise cosine similarity of the images' Gram matrices at the "
        "penalty's layer, images seen whole.",
        "",
        "| class | Gram similarity, seeds | with Diversity | logit, seeds | with Diversity | ratio "
        "| top-1, seeds | with Diversity | seconds, seeds / Diversity |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report["classes"]:
        alone, together = row["seeds"], row["diversity"]
        lines.append(
            f"| {row['class']} {row['name']} | {alone['gram_similarity']:.2f} | {together['gram_similarity']:.2f} "
            f"| {alone['logit']:.1f} | {together['logit']:.1f} | {row['logit_ratio']:.2f} "
            f"| {alone['top1']}/{settings['images']} | {together['top1']}/{settings['images']} "
            f"| {alone['seconds']:.0f} / {together['seconds']:.0f} |"
        )
    mean = report["mean"]
    lines += [
        "",
        f"Mean over classes: Gram similarity {mean['seeds_similarity']:.2f} -> "
        f"{mean['diversity_similarity']:.2f}, logit ratio {mean['logit_ratio']:.2f}, top-1 "
        f"{mean['seeds_top1']} -> {mean['diversity_top1']} of {mean['images']}.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="mobilenet_v2")
    parser.add_argument("--layer", default="block_13_expand_relu")
    parser.add_argument("--classes", type=int, nargs="+", default=[130, 1, 949])
    parser.add_argument("--images", type=int, default=8, help="K, images per class")
    parser.add_argument("--weight", type=float, default=15.0, help="of the Diversity penalty")
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--size", type=int, default=224, help="image side")
    parser.add_argument("--crops", type=int, default=4, help="crops per image per step")
    parser.add_argument(
        "--glance",
        type=float,
        default=0.0,
        help="maco's glance (0: as the committed results; maco's default 0.25)",
    )
    parser.add_argument("--input-size", type=int, default=224, help="side the images are judged at")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default="diversity", help="results file stem")
    parser.add_argument("--picture", type=lambda text: Path(text) if text else None, default=PICTURE)
    args = parser.parse_args()
    model = load_model(args.model)
    rows = []
    for position, index in enumerate(args.classes):
        row, seeds, diverse = run_class(model, args, index)
        rows.append(row)
        print(json.dumps(row), flush=True)
        if position == 0 and args.picture:
            title = f"{args.model}, class {index} ({row['name']}): {args.images} images"
            save_picture(seeds, diverse, title, args.picture)
    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, TF {tf.__version__}",
        "command": "python -m benchmarks.diversity " + " ".join(sys.argv[1:]),
        "settings": {key: value for key, value in vars(args).items() if key not in ("picture", "name")},
        "picture": None if args.picture is None else os.path.relpath(args.picture),
        "classes": rows,
        "mean": {
            "seeds_similarity": float(np.mean([r["seeds"]["gram_similarity"] for r in rows])),
            "diversity_similarity": float(np.mean([r["diversity"]["gram_similarity"] for r in rows])),
            "logit_ratio": float(np.mean([r["logit_ratio"] for r in rows])),
            "seeds_top1": sum(r["seeds"]["top1"] for r in rows),
            "diversity_top1": sum(r["diversity"]["top1"] for r in rows),
            "images": args.images * len(rows),
        },
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(report, indent=1) + "\n")
    (RESULTS / f"{args.name}.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
