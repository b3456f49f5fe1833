"""The `xplique-maco` console command."""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

DEMO_CLASSES = ["espresso", "goldfish", "flamingo", "lemon", "jellyfish", "volcano"]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def demo(args: argparse.Namespace) -> int:
    """Renders ImageNet classes of EfficientNet-Lite0 with transparency and writes PNGs."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import matplotlib

    matplotlib.use("Agg")
    from . import Neuron, maco
    from ._plots import plot_maco_grid, save_image, save_rgba
    from .zoo import efficientnet_lite0, imagenet_classes

    classes = imagenet_classes()
    names = args.classes or DEMO_CLASSES
    indices = [int(name) if name.isdigit() else classes.index(name) for name in names]
    if any(not 0 <= index < len(classes) for index in indices):
        raise SystemExit(f"Class indices must be in 0..{len(classes) - 1}, received {indices}.")
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    model = efficientnet_lite0()
    print(
        f"Rendering {len(indices)} classes of EfficientNet-Lite0 ({args.steps} steps, "
        f"{args.image_size}x{args.image_size}, {args.crops} crops per step) ...",
        flush=True,
    )
    images, transparencies = maco(
        Neuron(model, "predictions", indices),
        nb_steps=args.steps,
        image_shape=(args.image_size, args.image_size),
        nb_crops=args.crops,
        seed=args.seed,
        model_input_size=(224, 224),
    )
    titles = []
    for position, index in enumerate(indices):
        stem = f"{index:03d}_{_slug(classes[index])}"
        save_image(output / f"{stem}.png", images[position])
        save_rgba(output / f"{stem}_rgba.png", images[position], transparencies[position])
        titles.append(f"{classes[index]} ({index})")
    figure = plot_maco_grid(images, transparencies, titles=titles, columns=min(len(indices), 3))
    grid = output / "grid.png"
    figure.savefig(grid, dpi=80)
    elapsed = time.perf_counter() - start
    print(f"Wrote {2 * len(indices)} images and the labelled grid {grid.resolve()}")
    print(f"Took {elapsed:.0f} s")
    return 0


def _load_model(spec: str, unsafe: bool):
    from .zoo import MODELS, load_model

    if spec.startswith("zoo:"):
        return load_model(spec[4:])
    path = Path(spec)
    if not path.is_file():
        raise ValueError(
            f"No model file {spec!r}. Pass a saved .keras file or zoo:NAME with NAME in {', '.join(sorted(MODELS))}."
        )
    if path.suffix != ".keras":
        raise ValueError(f"Model file {spec!r} must be a .keras file (Keras 3 format).")
    import keras

    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=not unsafe)
    except Exception as error:
        hint = " (it may need --unsafe-model-loading if you trust it)" if "safe_mode" in str(error) else ""
        raise ValueError(
            f"Cannot load {spec!r} as a Keras model{hint}: {type(error).__name__}: {error}"
        ) from None
    if not isinstance(model, keras.Model):
        raise ValueError(f"{spec!r} holds a {type(model).__name__}, not a keras.Model.")
    return model


def render(args: argparse.Namespace) -> int:
    """Renders one image per index of a layer into a folder, resumably (see xplique_maco.atlas)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from .atlas import parse_indices, parse_shard, render_atlas

    indices = parse_indices(args.indices)  # syntax errors before anything heavy
    shard = parse_shard(args.shard)
    low, high = args.values_range
    if not low < high:
        raise ValueError(f"--values-range must satisfy low < high, received {low} {high}.")
    strategy = None
    if args.mirrored:
        import tensorflow as tf

        strategy = tf.distribute.MirroredStrategy()
        with strategy.scope():  # each device keeps its own copy of the weights
            model = _load_model(args.model, args.unsafe_model_loading)
    else:
        model = _load_model(args.model, args.unsafe_model_loading)
    layer = int(args.layer) if re.fullmatch(r"-?\d+", args.layer) else args.layer
    settings = dict(
        nb_steps=args.steps,
        image_shape=(args.image_size, args.image_size),
        nb_crops=args.crops,
        values_range=(low, high),
    )
    if args.model_input_size:
        settings["model_input_size"] = tuple(args.model_input_size)
    if args.crops_per_pass:
        settings["crops_per_pass"] = args.crops_per_pass
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
            **settings,
        )
    except KeyboardInterrupt:
        print("\nInterrupted: finished images are kept; rerun the same command to resume.", file=sys.stderr)
        return 130
    elapsed = time.perf_counter() - start
    print(f"Rendered {len(entries)} objectives into {Path(args.output).resolve()} in {elapsed:.0f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of `xplique-maco`."""
    parser = argparse.ArgumentParser(prog="xplique-maco", description="MACO feature visualisation for Keras.")
    commands = parser.add_subparsers(dest="command", required=True)
    demo_parser = commands.add_parser(
        "demo", help="render ImageNet classes of EfficientNet-Lite0 (offline) with their transparency"
    )
    demo_parser.add_argument(
        "--classes", nargs="+", help=f"class names or indices (default: {', '.join(DEMO_CLASSES)})"
    )
    demo_parser.add_argument("--steps", type=int, default=128, help="optimisation steps (default 128)")
    demo_parser.add_argument("--image-size", type=int, default=256, help="image side in pixels (default 256)")
    demo_parser.add_argument("--crops", type=int, default=8, help="crops per step (default 8)")
    demo_parser.add_argument("--seed", type=int, default=0)
    demo_parser.add_argument("--output", default="maco_demo", help="output folder (default ./maco_demo)")
    render_parser = commands.add_parser(
        "render", help="render one image per unit of a layer into a folder (resumable, shardable)"
    )
    render_parser.add_argument(
        "model", help="a saved .keras model, or zoo:NAME (e.g. zoo:efficientnet_lite0)"
    )
    render_parser.add_argument("--layer", required=True, help="layer name or index")
    render_parser.add_argument("--indices", required=True, help="e.g. 0:1000, 1,94,130, or 0:10,20")
    render_parser.add_argument("--objective", choices=["neuron", "channel"], default="neuron")
    render_parser.add_argument("--steps", type=int, default=128)
    render_parser.add_argument("--image-size", type=int, default=512)
    render_parser.add_argument("--crops", type=int, default=8, help="crops per image per step (default 8)")
    render_parser.add_argument(
        "--values-range", type=float, nargs=2, default=(0.0, 1.0), metavar=("LOW", "HIGH")
    )
    render_parser.add_argument("--model-input-size", type=int, nargs=2, metavar=("HEIGHT", "WIDTH"))
    render_parser.add_argument("--seed", type=int, default=0)
    render_parser.add_argument("--batch-size", type=int, default=8, help="objectives rendered at once")
    render_parser.add_argument(
        "--crops-per-pass",
        type=int,
        help="model passes of at most this many crops (less memory, same images); default: one pass on "
        "GPUs and TPUs, passes of about 16 crops on CPUs",
    )
    render_parser.add_argument(
        "--shard", default="0/1", help="I/N: render objectives I, I+N, ... (job arrays)"
    )
    render_parser.add_argument("--output", required=True, help="output folder")
    render_parser.add_argument(
        "--mirrored",
        action="store_true",
        help="split each batch across all local GPUs with tf.distribute.MirroredStrategy",
    )
    render_parser.add_argument(
        "--unsafe-model-loading",
        action="store_true",
        help="load the .keras file with safe_mode=False (only for files you trust: it can run code)",
    )
    args = parser.parse_args(argv)
    try:
        return demo(args) if args.command == "demo" else render(args)
    except (ValueError, ImportError, FileNotFoundError) as error:
        print(f"xplique-maco: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
