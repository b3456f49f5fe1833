"""The `xplique-maco` console command: `demo`, `render`, `page`, `lens` and `lens-demo`; answers --help
without TensorFlow.

Its defaults are the library's (`_config.defaults`), read without importing TensorFlow.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import time
from pathlib import Path

from .._config.defaults import ATLAS, DEMO, MACO
from .lens.command import add_lens, add_lens_demo, lens_command, lens_demo_command
from .loading import add_rendering_options, add_values_range

_LABELS_HELP = (
    "labels of the units on the page: a text file with one label per line (line 1 labels index 0), "
    "or 'imagenet' for the 1000 ImageNet class names"
)


@contextlib.contextmanager
def _quiet_tensorflow():
    """Keeps TensorFlow's C++ start-up lines (CUDA probing, absl notices) out of the terminal.

    Only when the user has not set TF_CPP_MIN_LOG_LEVEL: then their choice is kept, and the
    lines are shown. Python errors are not affected: they are raised after the stream is back.
    """
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ:
        yield
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            try:
                import tensorflow as tf

                tf.config.list_physical_devices()  # the device probe also prints
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)
    yield


def demo_command(args: argparse.Namespace) -> int:
    """Renders ImageNet classes of EfficientNet-Lite0 with transparency (see `_apps.demo`)."""
    from .demo import run_demo

    return run_demo(args)


def render_command(args: argparse.Namespace) -> int:
    """Renders one image per index of a layer into a folder, resumably (see xplique_maco.atlas)."""
    from .._config.checks import parse_indices, parse_shard
    from .._config.manifest import shard_lock

    indices = parse_indices(args.indices)  # syntax errors before anything heavy
    shard = parse_shard(args.shard)
    low, high = args.values_range
    if not low < high:
        raise ValueError(f"--values-range must satisfy low < high, received {low} {high}.")
    # A second process on this folder and shard is refused before it loads the model.
    with shard_lock(Path(args.output), shard):
        return _render_atlas(args, indices, shard)


def _render_atlas(args: argparse.Namespace, indices: list[int], shard: tuple[int, int]) -> int:
    from .atlas import render_atlas
    from .loading import labels_option, load_model_option, zoo_labels

    strategy = None
    if args.mirrored:
        import tensorflow as tf

        strategy = tf.distribute.MirroredStrategy()
        with strategy.scope():  # each device keeps its own copy of the weights
            model = load_model_option(args.model, args.unsafe_model_loading)
    else:
        model = load_model_option(args.model, args.unsafe_model_loading)
    layer = int(args.layer) if re.fullmatch(r"-?\d+", args.layer) else args.layer
    settings = dict(
        nb_steps=args.steps,
        image_shape=(args.image_size, args.image_size),
        nb_crops=args.crops,
        values_range=tuple(args.values_range),
        glance=args.glance,
    )
    if args.model_input_size:
        settings["model_input_size"] = tuple(args.model_input_size)
    if args.crops_per_pass:
        settings["crops_per_pass"] = args.crops_per_pass
    labels = labels_option(args.labels)
    if labels is None and not args.no_page:
        labels = zoo_labels(args.model, model, layer)
    start = time.perf_counter()
    try:
        entries = render_atlas(
            model,
            layer,
            indices,
            args.output,
            kind=args.objective,
            shard=shard,
            batch_size=args.batch_size,
            seed=args.seed,
            verbose=1,
            strategy=strategy,
            page=not args.no_page,
            labels=labels,
            images=args.images,
            nb_examples=args.examples,
            **settings,
        )
    except KeyboardInterrupt:
        print("\nInterrupted: finished images are kept; rerun the same command to resume.", file=sys.stderr)
        return 130
    elapsed = time.perf_counter() - start
    mine = sum(1 for position in range(len(indices)) if position % shard[1] == shard[0])
    before = (
        f" ({mine - len(entries)} of this shard's {mine} were already finished)"
        if len(entries) < mine
        else ""
    )
    print(f"Rendered {len(entries)} objectives{before} into {Path(args.output).resolve()} in {elapsed:.0f} s")
    if not args.no_page:
        print(f"Browse them: {(Path(args.output) / 'index.html').resolve().as_uri()}")
    return 0


def page_command(args: argparse.Namespace) -> int:
    """Rebuilds the page of a folder written by `render` or `lens` from its manifests (no rendering,
    no TensorFlow)."""
    import warnings

    from .._outputs.page import build_page
    from .lens.page import build_lens_page, is_lens_folder
    from .loading import labels_option

    build = build_lens_page if is_lens_folder(Path(args.folder)) else build_page
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path = build(args.folder, labels=labels_option(args.labels))
    for warning in caught:
        print(f"xplique-maco: warning: {warning.message}", file=sys.stderr)
    print(f"Wrote {path.resolve()}: open {path.resolve().as_uri()}")
    return 0


def _add_demo(commands) -> None:
    parser = commands.add_parser(
        "demo", help="render ImageNet classes of EfficientNet-Lite0 (offline) with their transparency"
    )
    parser.add_argument(
        "--classes", nargs="+", help=f"class names or indices (default: {', '.join(DEMO.classes)})"
    )
    add_rendering_options(
        parser, MACO.nb_steps, DEMO.image_size, steps_help="optimisation steps", crops_help="crops per step"
    )
    parser.add_argument("--seed", type=int, default=ATLAS.seed, help=f"default {ATLAS.seed}")
    parser.add_argument("--output", default="maco_demo", help="output folder (default ./maco_demo)")


def _add_render(commands) -> None:
    parser = commands.add_parser(
        "render", help="render one image per unit of a layer into a folder (resumable, shardable)"
    )
    parser.add_argument("model", help="a saved .keras model, or zoo:NAME (e.g. zoo:efficientnet_lite0)")
    parser.add_argument("--layer", required=True, help="layer name or index")
    parser.add_argument("--indices", required=True, help="e.g. 0:1000, 1,94,130, or 0:10,20")
    parser.add_argument(
        "--objective", choices=["neuron", "channel"], default=ATLAS.kind, help=f"default {ATLAS.kind}"
    )
    _add_settings(parser)
    parser.add_argument("--seed", type=int, default=ATLAS.seed, help=f"default {ATLAS.seed}")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=ATLAS.batch_size,
        help=f"objectives rendered at once (default {ATLAS.batch_size})",
    )
    parser.add_argument(
        "--crops-per-pass",
        type=int,
        help="model passes of at most this many crops (less memory, same images); default: passes of "
        "about 16 crops on CPUs, on GPUs the largest pass that fits in the device's memory",
    )
    parser.add_argument("--shard", default="0/1", help="I/N: render objectives I, I+N, ... (job arrays)")
    parser.add_argument("--output", required=True, help="output folder")
    parser.add_argument(
        "--mirrored",
        action="store_true",
        help="split each batch across all local GPUs with tf.distribute.MirroredStrategy",
    )
    parser.add_argument(
        "--labels", help=_LABELS_HELP + " (default: ImageNet names for a zoo classifier's output layer)"
    )
    parser.add_argument(
        "--images",
        help="a folder of your images (subfolders included): each unit also gets the crops of them "
        "that drive it most, shown beside its image on the page",
    )
    parser.add_argument(
        "--examples",
        type=int,
        default=ATLAS.nb_examples,
        help=f"dataset examples per unit, with --images (default {ATLAS.nb_examples})",
    )
    parser.add_argument(
        "--no-page",
        action="store_true",
        help="do not write the browsable page index.html in the output folder",
    )
    parser.add_argument(
        "--unsafe-model-loading",
        action="store_true",
        help="load the .keras file with safe_mode=False (only for files you trust: it can run code)",
    )


def _add_settings(parser: argparse.ArgumentParser) -> None:
    """The options of `maco`'s settings, with its defaults."""
    height, _ = MACO.image_shape
    add_rendering_options(parser, MACO.nb_steps, height)
    parser.add_argument(
        "--glance",
        type=float,
        default=MACO.glance,
        help=f"share of the crops that are whole-image thumbnails (default {MACO.glance:g}; "
        "0 for folders rendered before glances became the default)",
    )
    add_values_range(parser)
    parser.add_argument(
        "--model-input-size",
        type=int,
        nargs=2,
        metavar=("HEIGHT", "WIDTH"),
        help="size the crops are resized to (default: the model's input size, else 224 224)",
    )


def _add_page(commands) -> None:
    parser = commands.add_parser(
        "page",
        help="rebuild the browsable page (index.html) of a folder written by render or lens, from its manifests",
    )
    parser.add_argument("folder", help="a folder written by `xplique-maco render` or `xplique-maco lens`")
    parser.add_argument("--labels", help=_LABELS_HELP + " (default: those given before, else none)")


def parser() -> argparse.ArgumentParser:
    """The parser of `xplique-maco` and its commands."""
    parser = argparse.ArgumentParser(prog="xplique-maco", description="MACO feature visualisation for Keras.")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_demo(commands)
    _add_render(commands)
    _add_page(commands)
    add_lens(commands, _LABELS_HELP)
    add_lens_demo(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of `xplique-maco`."""
    args = parser().parse_args(argv)
    handlers = {
        "demo": demo_command,
        "render": render_command,
        "page": page_command,
        "lens": lens_command,
        "lens-demo": lens_demo_command,
    }
    try:
        if args.command == "page" and args.labels != "imagenet":  # no TensorFlow needed
            return page_command(args)
        with _quiet_tensorflow():
            return handlers[args.command](args)
    except (ValueError, ImportError, FileNotFoundError) as error:
        print(f"xplique-maco: error: {error}", file=sys.stderr)
        return 2
