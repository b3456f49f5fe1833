"""The command line's `lens` and `lens-demo`: their options (no TensorFlow to answer --help) and runs."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..._config.defaults import LENS, MACO
from ..loading import add_rendering_options, add_values_range

LENS_DEMO_OUTPUT = "maco_lens_demo"


def add_lens(commands, labels_help: str) -> None:
    parser = commands.add_parser(
        "lens",
        help="the concepts of each class, found in your images and shown by MACO, in a page (resumable)",
    )
    parser.add_argument("model", help="a saved .keras classifier, or zoo:NAME (e.g. zoo:efficientnet_lite0)")
    parser.add_argument(
        "--images",
        required=True,
        help="a folder with one subfolder of images per class, named by class index or label",
    )
    parser.add_argument("--output", required=True, help="output folder (the page is its index.html)")
    parser.add_argument(
        "--layer", help="the layer the concepts live in (default: the last spatial layer before the pooling)"
    )
    _add_lens_settings(parser)
    parser.add_argument(
        "--folders-in-class-order",
        action="store_true",
        help="the class folders sorted by name are classes 0, 1, 2, ... (ImageNet's WordNet-id folders)",
    )
    parser.add_argument("--classes", help="only these class indices, e.g. 0:100 or 281,285 (default: all)")
    parser.add_argument(
        "--shard", default="0/1", help="I/N: analyse classes I, I+N, ... of those selected (job arrays)"
    )
    parser.add_argument("--labels", help=labels_help + " (default: ImageNet names for a zoo classifier)")
    parser.add_argument("--no-page", action="store_true", help="do not write the page index.html")
    parser.add_argument(
        "--unsafe-model-loading",
        action="store_true",
        help="load the .keras file with safe_mode=False (only for files you trust: it can run code)",
    )


def _add_lens_settings(
    parser: argparse.ArgumentParser,
    concepts: int = LENS.nb_concepts,
    steps: int = MACO.nb_steps,
    crops_per_image: int = LENS.crops_per_image,
) -> None:
    parser.add_argument(
        "--concepts", type=int, default=concepts, help=f"concepts per class (default {concepts})"
    )
    height, _ = LENS.image_shape
    add_rendering_options(
        parser, steps, height, steps_help="optimisation steps per image", size_help="side of the MACO images"
    )
    parser.add_argument(
        "--crops-per-image",
        type=int,
        default=crops_per_image,
        help=f"crops cut from each photo to find concepts in (default {crops_per_image})",
    )
    add_values_range(parser)
    parser.add_argument("--seed", type=int, default=LENS.seed, help=f"default {LENS.seed}")


def add_lens_demo(commands) -> None:
    parser = commands.add_parser(
        "lens-demo",
        help="a small lens of EfficientNet-Lite0 from the photos that ship with scikit-image, "
        "scikit-learn and matplotlib (offline)",
    )
    parser.add_argument(
        "--output", default=LENS_DEMO_OUTPUT, help=f"output folder (default ./{LENS_DEMO_OUTPUT})"
    )
    # One photo per class: many crops of it, few concepts, a quick rendering.
    _add_lens_settings(parser, concepts=4, steps=64, crops_per_image=64)


def lens_command(args: argparse.Namespace) -> int:
    """Runs a lens from the command line's options, resumably (see `xplique_maco.lens`)."""
    from ..._config.checks import parse_indices, parse_shard
    from ..._config.manifest import shard_lock

    shard = parse_shard(args.shard)
    classes = None if args.classes is None else parse_indices(args.classes)
    # A second process on this folder and shard is refused before it loads the model.
    with shard_lock(Path(args.output), shard):
        from ..loading import labels_option, load_model_option

        model = load_model_option(args.model, args.unsafe_model_loading)
        labels = labels_option(args.labels)
        if labels is None and args.model.startswith("zoo:") and model.outputs[0].shape[-1] == 1000:
            labels = labels_option("imagenet")
        layer = (
            None
            if args.layer is None
            else (int(args.layer) if args.layer.lstrip("-").isdigit() else args.layer)
        )
        return _run(
            model,
            args.images,
            args,
            labels=labels,
            layer=layer,
            classes=classes,
            shard=shard,
            folders_in_class_order=args.folders_in_class_order,
        )


def lens_demo_command(args: argparse.Namespace) -> int:
    """Sorts the offline photos into folders of their classes, then runs a small lens of them."""
    from ...zoo import efficientnet_lite0, imagenet_classes
    from .demo import sorted_photos

    output = Path(args.output)
    model = efficientnet_lite0()
    folder = sorted_photos(model, output / "photos", imagenet_classes())
    return _run(model, folder, args, labels=imagenet_classes(), layer=None, classes=None, shard=(0, 1))


def _run(model, images, args: argparse.Namespace, **choices) -> int:
    from .run import lens

    start = time.perf_counter()
    try:
        result = lens(
            model,
            images,
            nb_concepts=args.concepts,
            output=args.output,
            crops_per_image=args.crops_per_image,
            seed=args.seed,
            page=not getattr(args, "no_page", False),
            nb_steps=args.steps,
            image_shape=(args.image_size, args.image_size),
            nb_crops=args.crops,
            values_range=tuple(args.values_range),
            **choices,
        )
    except KeyboardInterrupt:
        print("\nInterrupted: finished classes are kept; rerun the same command to resume.", file=sys.stderr)
        return 130
    elapsed = time.perf_counter() - start
    print(
        f"Analysed {len(result)} classes into {Path(args.output).resolve()} in {elapsed:.0f} s ({result.summary.describe()})"
    )
    phases = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in result.seconds.items())
    print(f"Time by phase: {phases}")
    for path, reason in result.summary.skipped:
        print(f"xplique-maco: skipped {path}: {reason}", file=sys.stderr)
    if not getattr(args, "no_page", False):
        print(f"Browse them: {(Path(args.output) / 'index.html').resolve().as_uri()}")
    return 0
