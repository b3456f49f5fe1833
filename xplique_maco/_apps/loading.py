"""What the command line's commands share: their rendering options (no TensorFlow to answer --help),
and the models and labels they name: a .keras file (safe mode) or zoo:NAME, and --labels."""

from __future__ import annotations

import argparse
from pathlib import Path

from .._config.defaults import MACO


def add_rendering_options(
    parser: argparse.ArgumentParser,
    steps: int,
    image_size: int,
    steps_help: str = "",
    size_help: str = "image side in pixels",
    crops_help: str = "crops per image per step",
) -> None:
    """--steps, --image-size and --crops: how MACO renders a command's images, with its defaults
    (`--crops`: MACO's). Each help says what the option is, then its default."""
    parser.add_argument("--steps", type=int, default=steps, help=_with_default(steps_help, steps))
    parser.add_argument(
        "--image-size", type=int, default=image_size, help=_with_default(size_help, image_size)
    )
    parser.add_argument(
        "--crops", type=int, default=MACO.nb_crops, help=_with_default(crops_help, MACO.nb_crops)
    )


def add_values_range(parser: argparse.ArgumentParser) -> None:
    """--values-range LOW HIGH: the pixel range the model expects (default MACO's)."""
    low, high = MACO.values_range
    parser.add_argument(
        "--values-range",
        type=float,
        nargs=2,
        default=(low, high),
        metavar=("LOW", "HIGH"),
        help=f"pixel range the model expects (default {low:g} {high:g})",
    )


def _with_default(what: str, default) -> str:
    return f"{what} (default {default})" if what else f"default {default}"


def labels_option(value: str | None):
    """--labels: 'imagenet' for the 1000 ImageNet class names, else a file of one label per line."""
    if value is None or value != "imagenet":
        return value
    from ..zoo import imagenet_classes

    return imagenet_classes()


def zoo_labels(spec: str, model, layer):
    """The ImageNet class names when the output layer of a zoo classifier is rendered, else None."""
    if not spec.startswith("zoo:") or model.output.shape[-1] != 1000:
        return None
    try:
        chosen = model.layers[layer] if isinstance(layer, int) else model.get_layer(layer)
    except (ValueError, IndexError):
        return None  # render_atlas names the problem
    if chosen is not model.layers[-1]:
        return None
    from ..zoo import imagenet_classes

    return imagenet_classes()


def load_model_option(spec: str, unsafe: bool):
    """The model `spec` names: zoo:NAME, or a .keras file loaded with Keras's safe mode unless `unsafe`."""
    from ..zoo import MODELS, load_model

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
