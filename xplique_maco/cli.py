"""The `xplique-maco` console command."""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import os
import re
import sys
import time
from pathlib import Path

from ._settings import slug

DEMO_CLASSES = ["espresso", "goldfish", "flamingo", "lemon", "jellyfish", "volcano"]
DEMO_IMAGE_SIZE = 256  # smaller than maco's default: the demo answers in a few minutes on a CPU


def _defaults(module: str, function: str) -> dict:
    """The literal default values of `function` in the package module `module`, read from its source.

    The CLI's defaults are the library's, read without importing it (and TensorFlow with it),
    so `xplique-maco --help` answers at once and never disagrees with `maco`.
    """
    source = (Path(__file__).parent / f"{module}.py").read_text(encoding="utf-8")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef) and node.name == function:
            arguments = node.args.args + node.args.kwonlyargs
            defaults = [None] * (len(node.args.args) - len(node.args.defaults)) + node.args.defaults
            defaults += node.args.kw_defaults
            found = {}
            for argument, default in zip(arguments, defaults, strict=True):
                if default is not None:
                    with contextlib.suppress(ValueError):
                        found[argument.arg] = ast.literal_eval(default)
            return found
    raise LookupError(f"xplique_maco.{module} defines no function {function}")


MACO = _defaults("_driver", "maco")
ATLAS = _defaults("atlas", "render_atlas")


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


def demo(args: argparse.Namespace) -> int:
    """Renders ImageNet classes of EfficientNet-Lite0 with transparency; writes PNGs, a manifest and the page."""
    import matplotlib

    matplotlib.use("Agg")
    from . import Neuron, maco
    from ._io import atomic_write
    from ._page import build_page, check_page_folder
    from ._plots import plot_maco_grid
    from .atlas import _FinalValues, _write_unit
    from .zoo import efficientnet_lite0, imagenet_classes

    classes = imagenet_classes()
    names = args.classes or DEMO_CLASSES
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
    final = _FinalValues()
    images, transparencies = maco(
        Neuron(model, "predictions", indices),
        nb_steps=args.steps,
        image_shape=(args.image_size, args.image_size),
        nb_crops=args.crops,
        seed=args.seed,
        model_input_size=(224, 224),
        callbacks=[final],
    )
    settings = {
        "command": "demo",
        "model": "zoo:efficientnet_lite0",
        "kind": "neuron",
        "layer": "predictions",
        "seed": args.seed,
        "image_shape": [args.image_size, args.image_size],
        "model_input_size": [224, 224],
        "nb_crops": args.crops,
        "nb_steps": args.steps,
        "glance": MACO["glance"],
    }
    titles, lines = [], []
    for position, index in enumerate(indices):
        stem = f"{index:03d}_{slug(classes[index])}"
        files = _write_unit(output, stem, images[position], transparencies[position], (0.0, 1.0))
        titles.append(f"{classes[index]} ({index})")
        entry = {
            "objective": f"Neuron(predictions, {index})",
            "index": index,
            "position": position,
            "settings": settings,
            "seed": args.seed,
            "value": float(final.values[position]),
            "files": files,
        }
        lines.append(json.dumps(entry) + "\n")
    # The demo's manifest describes this run only: rewritten whole, never appended to.
    atomic_write(output / _DEMO_MANIFEST, "".join(lines).encode("utf-8"))
    page = build_page(output, labels=classes)
    figure = plot_maco_grid(images, transparencies, titles=titles, columns=min(len(indices), 3))
    grid = output / "grid.png"
    figure.savefig(grid, dpi=80)
    elapsed = time.perf_counter() - start
    print(f"Wrote {3 * len(indices)} images and the labelled grid {grid.resolve()}")
    print(f"Browse them: {page.resolve().as_uri()}")
    print(f"Took {elapsed:.0f} s")
    return 0


_DEMO_MANIFEST = "manifest.jsonl"


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


def _labels(value: str | None):
    """--labels: 'imagenet' for the 1000 ImageNet class names, else a file of one label per line."""
    if value is None or value != "imagenet":
        return value
    from .zoo import imagenet_classes

    return imagenet_classes()


def _zoo_labels(spec: str, model, layer):
    """The ImageNet class names when the output layer of a zoo classifier is rendered, else None."""
    if not spec.startswith("zoo:") or model.output.shape[-1] != 1000:
        return None
    try:
        chosen = model.layers[layer] if isinstance(layer, int) else model.get_layer(layer)
    except (ValueError, IndexError):
        return None  # render_atlas names the problem
    if chosen is not model.layers[-1]:
        return None
    from .zoo import imagenet_classes

    return imagenet_classes()


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
    from ._manifest import shard_lock
    from .atlas import parse_indices, parse_shard

    indices = parse_indices(args.indices)  # syntax errors before anything heavy
    shard = parse_shard(args.shard)
    low, high = args.values_range
    if not low < high:
        raise ValueError(f"--values-range must satisfy low < high, received {low} {high}.")
    # A second process on this folder and shard is refused before it loads the model.
    with shard_lock(Path(args.output), shard):
        return _render(args, indices, shard)


def _render(args: argparse.Namespace, indices: list[int], shard: tuple[int, int]) -> int:
    from .atlas import render_atlas

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
        values_range=tuple(args.values_range),
        glance=args.glance,
    )
    if args.model_input_size:
        settings["model_input_size"] = tuple(args.model_input_size)
    if args.crops_per_pass:
        settings["crops_per_pass"] = args.crops_per_pass
    labels = _labels(args.labels)
    if labels is None and not args.no_page:
        labels = _zoo_labels(args.model, model, layer)
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
            **settings,
        )
    except KeyboardInterrupt:
        print("\nInterrupted: finished images are kept; rerun the same command to resume.", file=sys.stderr)
        return 130
    elapsed = time.perf_counter() - start
    print(f"Rendered {len(entries)} objectives into {Path(args.output).resolve()} in {elapsed:.0f} s")
    if not args.no_page:
        print(f"Browse them: {(Path(args.output) / 'index.html').resolve().as_uri()}")
    return 0


def page(args: argparse.Namespace) -> int:
    """Rebuilds the atlas page of a folder from its manifests (no rendering, no TensorFlow)."""
    import warnings

    from ._page import build_page

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path = build_page(args.folder, labels=_labels(args.labels))
    for warning in caught:
        print(f"xplique-maco: warning: {warning.message}", file=sys.stderr)
    print(f"Wrote {path.resolve()}: open {path.resolve().as_uri()}")
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
    demo_parser.add_argument(
        "--steps", type=int, default=MACO["nb_steps"], help=f"optimisation steps (default {MACO['nb_steps']})"
    )
    demo_parser.add_argument(
        "--image-size",
        type=int,
        default=DEMO_IMAGE_SIZE,
        help=f"image side in pixels (default {DEMO_IMAGE_SIZE})",
    )
    demo_parser.add_argument(
        "--crops", type=int, default=MACO["nb_crops"], help=f"crops per step (default {MACO['nb_crops']})"
    )
    demo_parser.add_argument("--seed", type=int, default=ATLAS["seed"], help=f"default {ATLAS['seed']}")
    demo_parser.add_argument("--output", default="maco_demo", help="output folder (default ./maco_demo)")
    render_parser = commands.add_parser(
        "render", help="render one image per unit of a layer into a folder (resumable, shardable)"
    )
    render_parser.add_argument(
        "model", help="a saved .keras model, or zoo:NAME (e.g. zoo:efficientnet_lite0)"
    )
    render_parser.add_argument("--layer", required=True, help="layer name or index")
    render_parser.add_argument("--indices", required=True, help="e.g. 0:1000, 1,94,130, or 0:10,20")
    render_parser.add_argument(
        "--objective", choices=["neuron", "channel"], default=ATLAS["kind"], help=f"default {ATLAS['kind']}"
    )
    render_parser.add_argument(
        "--steps", type=int, default=MACO["nb_steps"], help=f"default {MACO['nb_steps']}"
    )
    height, width = MACO["image_shape"]
    render_parser.add_argument(
        "--image-size", type=int, default=height, help=f"image side in pixels (default {height})"
    )
    render_parser.add_argument(
        "--crops",
        type=int,
        default=MACO["nb_crops"],
        help=f"crops per image per step (default {MACO['nb_crops']})",
    )
    render_parser.add_argument(
        "--glance",
        type=float,
        default=MACO["glance"],
        help=f"share of the crops that are whole-image thumbnails (default {MACO['glance']:g}; "
        "0 for folders rendered before glances became the default)",
    )
    low, high = MACO["values_range"]
    render_parser.add_argument(
        "--values-range",
        type=float,
        nargs=2,
        default=(low, high),
        metavar=("LOW", "HIGH"),
        help=f"pixel range the model expects (default {low:g} {high:g})",
    )
    render_parser.add_argument(
        "--model-input-size",
        type=int,
        nargs=2,
        metavar=("HEIGHT", "WIDTH"),
        help="size the crops are resized to (default: the model's input size, else 224 224)",
    )
    render_parser.add_argument("--seed", type=int, default=ATLAS["seed"], help=f"default {ATLAS['seed']}")
    render_parser.add_argument(
        "--batch-size",
        type=int,
        default=ATLAS["batch_size"],
        help=f"objectives rendered at once (default {ATLAS['batch_size']})",
    )
    render_parser.add_argument(
        "--crops-per-pass",
        type=int,
        help="model passes of at most this many crops (less memory, same images); default: passes of "
        "about 16 crops on CPUs, on GPUs the largest pass that fits in the device's memory",
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
    labels_help = (
        "labels of the units on the page: a text file with one label per line (line 1 labels index 0), "
        "or 'imagenet' for the 1000 ImageNet class names"
    )
    render_parser.add_argument(
        "--labels", help=labels_help + " (default: ImageNet names for a zoo classifier's output layer)"
    )
    render_parser.add_argument(
        "--no-page",
        action="store_true",
        help="do not write the browsable page index.html in the output folder",
    )
    render_parser.add_argument(
        "--unsafe-model-loading",
        action="store_true",
        help="load the .keras file with safe_mode=False (only for files you trust: it can run code)",
    )
    page_parser = commands.add_parser(
        "page",
        help="rebuild the browsable page (index.html) of a folder written by render, from its manifests",
    )
    page_parser.add_argument("folder", help="a folder written by `xplique-maco render`")
    page_parser.add_argument("--labels", help=labels_help + " (default: those given before, else none)")
    args = parser.parse_args(argv)
    try:
        if args.command == "page" and args.labels != "imagenet":  # no TensorFlow needed
            return page(args)
        with _quiet_tensorflow():
            return {"demo": demo, "render": render, "page": page}[args.command](args)
    except (ValueError, ImportError, FileNotFoundError) as error:
        print(f"xplique-maco: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
