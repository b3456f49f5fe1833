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
    from .plots import plot_maco_grid, save_image, save_rgba
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
    args = parser.parse_args(argv)
    try:
        return demo(args)
    except (ValueError, ImportError, FileNotFoundError) as error:
        print(f"xplique-maco: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
