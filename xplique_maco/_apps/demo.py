"""`xplique-maco demo`: ImageNet classes of the zoo's EfficientNet-Lite0 with their transparency,
written as PNGs, a manifest, a labelled grid and the browsable page."""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from pathlib import Path

from .._config.checks import slug
from .._config.defaults import DEMO, MACO

_DEMO_MANIFEST = "manifest.jsonl"


def run_demo(args: argparse.Namespace) -> int:
    """Renders the classes `args` names; writes PNGs, a manifest, a grid and the page into `args.output`."""
    import matplotlib

    matplotlib.use("Agg")
    from .._api.visualize import maco
    from .._objectives.kinds.units import Neuron
    from .._outputs.callbacks import FinalValues
    from .._outputs.page import build_page, check_page_folder
    from .._outputs.plots import plot_maco_grid
    from ..zoo import efficientnet_lite0, imagenet_classes

    classes = imagenet_classes()
    names = args.classes or DEMO.classes
    indices = [int(name) if name.isdigit() else classes.index(name) for name in names]
    if any(not 0 <= index < len(classes) for index in indices):
        raise SystemExit(f"Class indices must be in 0..{len(classes) - 1}, received {indices}.")
    output = Path(args.output)
    _check_demo_folder(output)
    check_page_folder(output)
    output.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    model = efficientnet_lite0()
    print(
        f"Rendering {len(indices)} classes of EfficientNet-Lite0 ({args.steps} steps, "
        f"{args.image_size}x{args.image_size}, {args.crops} crops per step) ...",
        flush=True,
    )
    final = FinalValues()
    images, transparencies = maco(
        Neuron(model, "predictions", indices),
        nb_steps=args.steps,
        image_shape=(args.image_size, args.image_size),
        nb_crops=args.crops,
        seed=args.seed,
        model_input_size=DEMO.model_input_size,
        callbacks=[final],
    )
    _write_manifest(output, args, indices, classes, images, transparencies, final.values)
    page = build_page(output, labels=classes)
    titles = [f"{classes[index]} ({index})" for index in indices]
    figure = plot_maco_grid(images, transparencies, titles=titles, columns=min(len(indices), 3))
    grid = output / "grid.png"
    figure.savefig(grid, dpi=80)
    elapsed = time.perf_counter() - start
    print(f"Wrote {3 * len(indices)} images and the labelled grid {grid.resolve()}")
    print(f"Browse them: {page.resolve().as_uri()}")
    print(f"Took {elapsed:.0f} s")
    return 0


def _write_manifest(output: Path, args, indices, classes, images, transparencies, values) -> None:
    """Each class's PNGs, and the manifest of this run (rewritten whole, never appended to)."""
    from .._config.files import atomic_write
    from .._config.manifest import unit_entry
    from .._outputs.plots import write_unit

    settings = {
        "command": "demo",
        "model": "zoo:efficientnet_lite0",
        "kind": "neuron",
        "layer": "predictions",
        "seed": args.seed,
        "image_shape": [args.image_size, args.image_size],
        "model_input_size": list(DEMO.model_input_size),
        "nb_crops": args.crops,
        "nb_steps": args.steps,
        "glance": MACO.glance,
    }
    lines = []
    for position, index in enumerate(indices):
        stem = f"{index:03d}_{slug(classes[index])}"
        files = write_unit(output, stem, images[position], transparencies[position], (0.0, 1.0))
        value = float(values[position])
        entry = unit_entry("neuron", "predictions", index, position, settings, args.seed, value, files)
        lines.append(json.dumps(entry) + "\n")
    atomic_write(output / _DEMO_MANIFEST, "".join(lines).encode("utf-8"))


def _check_demo_folder(output: Path) -> None:
    """The demo rewrites its own manifest only: a folder holding a render's results is refused."""
    for manifest in sorted(output.glob("manifest*.jsonl")):
        commands = set()
        for line in manifest.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(json.JSONDecodeError, AttributeError, KeyError, TypeError):
                commands.add(json.loads(line)["settings"].get("command"))
        if manifest.name != _DEMO_MANIFEST or commands - {"demo"}:
            raise ValueError(
                f"{output} holds the results of another run ({manifest.name}); the demo writes its own "
                "manifest there. Pass another --output (default ./maco_demo)."
            )
