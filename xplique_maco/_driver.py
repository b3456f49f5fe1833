"""The user-facing `maco(...)`: validates everything, then runs the compiled engine."""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from ._callbacks import Callback, CallbackList, ProgressBar, interactive
from ._engine import RenderSettings, render
from ._model import feature_model, image_input_shape
from ._objective import Objective
from ._optimizers import get_optimizer
from ._parametrization import FourierBaseline, MagnitudeConstrained
from ._spectrum import Spectrum, _check_range, natural_spectrum

__all__ = ["maco", "fourier"]

_DEFAULT_INPUT_SIZE = 224
_MIN_CROP_PIXELS = 4
_MAX_SEED = 2**63 - 1
# On CPUs a model pass over many crops is cache-bound. Per crop, 128 crops of EfficientNet-Lite0
# took about 1.3x the time of 32, and 32 crops took 1.1x the time of 16 on ResNet50V2 and
# EfficientNet-Lite0 (2 CPUs, 2026-11); 8 was no faster than 16. Chunks of about 32 crops share
# the image-side work of a step, model passes of about 16 crops run faster and hold half the
# activations; no more than 4 passes per step, as each is traced into the step.
_CPU_CROPS_PER_CHUNK = 32
_CPU_CROPS_PER_PASS = 16
_CPU_MAX_PASSES = 4


def _positive_int(name: str, value) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"`{name}` must be a positive int, received {value!r}.")
    return int(value)


def _boolean(name: str, value, accepted: str = "True or False") -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"`{name}` must be {accepted}, received {value!r}.")
    return bool(value)


def _pair_of_ints(name: str, value, minimum: int = 1) -> tuple[int, int]:
    try:
        first, second = value
        if any(isinstance(v, bool) or not isinstance(v, numbers.Integral) for v in (first, second)):
            raise TypeError
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be a pair of ints (height, width), received {value!r}.") from None
    if first < minimum or second < minimum:
        raise ValueError(f"`{name}` must be at least ({minimum}, {minimum}), received {value!r}.")
    return int(first), int(second)


def _learning_rates(learning_rate) -> tuple[float, float]:
    """(first, last) step sizes; one number means a constant step size."""
    values = (learning_rate, learning_rate) if isinstance(learning_rate, numbers.Real) else learning_rate
    try:
        first, last = values
        valid = all(
            isinstance(v, numbers.Real) and not isinstance(v, bool) and np.isfinite(v) and v > 0
            for v in (first, last)
        )
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(
            "`learning_rate` must be a finite number > 0, or a pair (first, last) of them for a "
            f"cosine decay, received {learning_rate!r}."
        )
    return float(first), float(last)


def _crop_range(crop_size) -> tuple[float, float]:
    if isinstance(crop_size, numbers.Real):
        crop_size = (crop_size, crop_size)
    try:
        low, high = (float(value) for value in crop_size)
    except (TypeError, ValueError):
        raise ValueError(
            f"`crop_size` must be a fraction or a pair (smallest, largest) of fractions of the "
            f"image side, received {crop_size!r}."
        ) from None
    if not 0.0 < low <= high <= 1.0:
        raise ValueError(f"`crop_size` must satisfy 0 < smallest <= largest <= 1, received {crop_size!r}.")
    return low, high


_FOURIER_SCALE = "1/f"


def _fourier_scale(channels: int, image_shape: tuple[int, int]) -> Spectrum:
    """Lucid's 1 / max(f, 1 / max(H, W)) scale, with its colour decorrelation and output scale."""
    height, width = image_shape
    frequency = np.sqrt(np.fft.fftfreq(height)[:, None] ** 2 + np.fft.rfftfreq(width)[None, :] ** 2)
    # Lucid also multiplies by sqrt(H W), which makes its transform unitary (so learning rates
    # mean the same as in pixel space).
    scale = np.sqrt(height * width) / np.maximum(frequency, 1.0 / max(height, width))
    natural = natural_spectrum(channels).recorrelation
    # Lucid: sigmoid((x / 4) @ normalised colours); our squash is sigmoid(4 (y - 0.5)), hence / 16.
    recorrelation = natural / np.linalg.norm(natural, axis=0).max() / 16.0
    return Spectrum(np.repeat(scale[None], channels, 0), np.full(channels, 0.5), recorrelation, width)


def _spectrum_for(magnitude, channels: int, image_shape: tuple[int, int]) -> Spectrum:
    if isinstance(magnitude, str) and magnitude == _FOURIER_SCALE:
        return _fourier_scale(channels, image_shape)
    if magnitude is None:
        spectrum = natural_spectrum(channels)
    elif isinstance(magnitude, Spectrum):
        spectrum = magnitude
    else:
        spectrum = Spectrum.from_magnitude(magnitude)
    if spectrum.channels != channels:
        raise ValueError(
            f"The magnitude has {spectrum.channels} channels but the model takes {channels}; "
            "pass a spectrum computed from images with the model's channels "
            "(xplique_maco.compute_spectrum)."
        )
    return spectrum.resized(*image_shape)


def _item_seeds(seed, batch_size: int) -> np.ndarray:
    if seed is None:
        seed = int(np.random.default_rng().integers(0, 2**31))
    elif (
        isinstance(seed, (bool, np.bool_))
        or not isinstance(seed, numbers.Integral)
        or not (0 <= seed <= _MAX_SEED)
    ):
        raise ValueError(f"`seed` must be None or an int in [0, 2**63 - 1], received {seed!r}.")
    return np.stack([np.full(batch_size, seed), np.arange(batch_size)], axis=1).astype(np.int64)


def maco(
    objective: Objective,
    nb_steps: int = 128,
    image_shape: tuple[int, int] = (512, 512),
    nb_crops: int = 8,
    crop_size: float | tuple[float, float] = (0.3, 1.0),
    wrap_crops: bool | None = None,
    antialias: bool = True,
    noise: float = 0.05,
    optimizer="nadam",
    learning_rate: float | tuple[float, float] = (1.0, 0.1),
    values_range: tuple[float, float] = (0.0, 1.0),
    magnitude=None,
    seed: int | None = None,
    model_input_size: tuple[int, int] | None = None,
    callbacks: Sequence[Callback] | None = None,
    verbose: int | str = "auto",
    batch_size: int | None = None,
    items: Sequence[int] | None = None,
    strategy: tf.distribute.Strategy | None = None,
    crops_per_pass: int | None = None,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Feature visualisation by MAgnitude Constrained Optimisation (Fel et al., 2023).

    Only the Fourier phase of each image is optimised; its Fourier magnitude stays that of
    natural images. Each step renders the images, cuts `nb_crops` random crops of each,
    resizes them to the model's input size, adds noise and ascends the objective's gradient.
    The transparency is the average |d objective / d image| over all steps: where the model
    looked while the image was built.

    Args:
        objective: What to maximise; a batch of N gives N images.
        nb_steps: Number of optimisation steps.
        image_shape: (height, width) of the images; any size, odd and non-square included.
        nb_crops: Crops per image per step; 8 was the cheapest count with which every measured
            image met every quality target (benchmarks/results/report.md).
        crop_size: Side of the crops as a fraction of the largest crop with the model's
            aspect ratio that fits the image: a pair (smallest, largest) sampled uniformly, or
            one fraction.
        wrap_crops: The image is periodic (a sum of Fourier waves): True lets crops cross its
            edges and continue on the opposite side, so every pixel is seen equally often and
            the whole image gets detail. False keeps crops inside the image, which favours one
            centred composition with a vaguer border. None: True, except for objectives that
            need one fixed layout (`Objective.fixed_layout`): an `Inversion`, a `Neuron` at a
            position of a convolutional or token layer, or a layer read after a Flatten (a
            Flatten -> Dense head), which wrapped crops would average over every shift of the
            image.
        antialias: Crops shrunk by 1.5 or more on their way to the model's input sample a
            copy of the image blurred accordingly, as antialiased resizing does; without it,
            frequencies above the crop's Nyquist alias. Only matters for images larger than
            the model's input.
        noise: Standard deviation of the (uniform) noise added to crops, as a fraction of the
            width of `values_range`.
        optimizer: "nadam", "adam", "sgd", or an instance of `xplique_maco.SGD`, `Adam` or `Nadam`.
        learning_rate: Step size of the optimizer on the phase (radians): a pair (first, last)
            decays from `first` at the first step to `last` at the last one along a half
            cosine; one number keeps it constant. The decay matters: large steps explore,
            small ones settle the details (see benchmarks/results/report.md).
        values_range: (low, high) the model's input range; images are squashed into it.
        magnitude: None for the shipped natural spectrum (colour for 3 channels, grayscale
            otherwise), a `Spectrum` (e.g. from `compute_spectrum`), or a bare array
            (C, H, W // 2 + 1) of magnitudes of [0, 1]-scaled images. Resized to `image_shape`.
        seed: Makes the result reproducible; item i of a batch uses (seed, i), so it gets the
            same image whatever the rest of the batch is. None draws a seed.
        model_input_size: (height, width) crops are resized to. Defaults to the model's input
            size, or 224 x 224 when the model accepts any size.
        callbacks: `xplique_maco.Callback` instances (`History`, `Snapshots`,
            `Recorder`, your own) told at the start, after steps, and at the end.
        verbose: 1 shows a progress bar with the step and the current objective, 0 shows
            nothing, "auto" shows it in terminals and notebooks.
        batch_size: Render at most this many images at once: a large batch (e.g. all 1000
            classes) runs in chunks that share one compiled step (a smaller last chunk traces
            once more, which costs far less than padding it). None renders all at once on a
            GPU or TPU (or with a `strategy`); on CPUs, in chunks of at most 32 crops, which
            measured 15-20% faster than 128 (cache-bound).
        items: Render only these batch positions of the objective (in this order). Each keeps
            the random stream of its position, so a subset gives the same images as the
            whole batch (used to split a job into shards or resume it).
        strategy: A `tf.distribute.Strategy` (e.g. `MirroredStrategy` over several GPUs):
            each chunk's items are split across its replicas, which step together. Images
            are the same as on one device for the same seed. Build or load the model under
            `strategy.scope()` so every device keeps its own copy of the weights.
        crops_per_pass: Run the model on at most this many crops at a time (the same crops
            of every image of a chunk, at least one each) and add up their gradients: the
            memory of the model's activations shrinks in proportion, for big models or
            many crops, and the gradient stays the same up to rounding (over many steps,
            Nadam can grow that rounding, as it does any change of summation order, e.g.
            another CPU: about 1e-3 on the images for 2% of small ReLU models). With `batch_size`
            None, chunks hold at most this many images. None: one pass on GPUs and TPUs; on
            CPUs, passes of about 16 crops, which measured 10% faster than 32 per crop.

    Returns:
        `(images, transparencies)`: tf.Tensors (N, H, W, C) within `values_range` and
        (N, H, W, 1) >= 0.

    Example:
    >>> images, transparencies = maco(Neuron(model, -1, [1, 94]), nb_steps=128, seed=0)
    """
    return _optimize(
        objective,
        nb_steps=nb_steps,
        image_shape=image_shape,
        nb_crops=nb_crops,
        crop_size=crop_size,
        wrap_crops=wrap_crops,
        antialias=antialias,
        noise=noise,
        optimizer=optimizer,
        learning_rate=learning_rate,
        values_range=values_range,
        seed=seed,
        model_input_size=model_input_size,
        callbacks=callbacks,
        verbose=verbose,
        batch_size=batch_size,
        items=items,
        strategy=strategy,
        crops_per_pass=crops_per_pass,
        parametrization=MagnitudeConstrained(),
        spectrum_source=magnitude,
    )


def fourier(
    objective: Objective,
    nb_steps: int = 256,
    image_shape: tuple[int, int] = (512, 512),
    nb_crops: int = 32,
    crop_size: float | tuple[float, float] = (0.85, 1.0),
    wrap_crops: bool = False,
    antialias: bool = False,
    noise: float = 0.0,
    optimizer="adam",
    learning_rate: float | tuple[float, float] = 0.05,
    values_range: tuple[float, float] = (0.0, 1.0),
    seed: int | None = None,
    model_input_size: tuple[int, int] | None = None,
    callbacks: Sequence[Callback] | None = None,
    verbose: int | str = "auto",
    batch_size: int | None = None,
    items: Sequence[int] | None = None,
    strategy: tf.distribute.Strategy | None = None,
    crops_per_pass: int | None = None,
) -> tuple[tf.Tensor, tf.Tensor]:
    """The classic Fourier feature visualisation (Olah et al., 2017), as a baseline for MACO.

    Real and imaginary parts of every frequency are optimised freely, scaled by 1 / frequency,
    with decorrelated colours (Lucid's parametrisation and Adam at 0.05). Augmentations are
    random crops of 85 to 100% of the image (Lucid's jitter and scaling; rotation is not done).
    Same arguments (except `magnitude`) and same results as `maco`, so the two compare at equal
    compute.

    Example:
    >>> baseline, masks = fourier(Neuron(model, -1, [1, 94]), nb_steps=128, seed=0)
    """
    return _optimize(
        objective,
        nb_steps=nb_steps,
        image_shape=image_shape,
        nb_crops=nb_crops,
        crop_size=crop_size,
        wrap_crops=wrap_crops,
        antialias=antialias,
        noise=noise,
        optimizer=optimizer,
        learning_rate=learning_rate,
        values_range=values_range,
        seed=seed,
        model_input_size=model_input_size,
        callbacks=callbacks,
        verbose=verbose,
        batch_size=batch_size,
        items=items,
        strategy=strategy,
        crops_per_pass=crops_per_pass,
        parametrization=FourierBaseline(),
        spectrum_source=_FOURIER_SCALE,
    )


def _optimize(
    objective,
    *,
    nb_steps,
    image_shape,
    nb_crops,
    crop_size,
    wrap_crops,
    antialias,
    noise,
    optimizer,
    learning_rate,
    values_range,
    seed,
    model_input_size,
    callbacks,
    verbose,
    batch_size,
    items,
    strategy,
    crops_per_pass,
    parametrization,
    spectrum_source,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Validates everything, then runs the engine chunk by chunk."""
    if not isinstance(objective, Objective):
        raise TypeError(
            f"`objective` must be an Objective (Neuron, Channel, Layer, Direction, Inversion or a "
            f"combination), received {type(objective).__name__}."
        )
    input_shape = image_input_shape(objective.model)
    channels = input_shape[-1]
    nb_steps = _positive_int("nb_steps", nb_steps)
    nb_crops = _positive_int("nb_crops", nb_crops)
    image_shape = _pair_of_ints("image_shape", image_shape)
    crop_range = _crop_range(crop_size)
    if model_input_size is None:
        model_input_size = tuple(size or _DEFAULT_INPUT_SIZE for size in input_shape[1:3])
    else:
        model_input_size = _pair_of_ints("model_input_size", model_input_size)
        fixed = tuple(input_shape[1:3])
        if any(f is not None and f != s for f, s in zip(fixed, model_input_size, strict=True)):
            raise ValueError(
                f"`model_input_size` {model_input_size} conflicts with the model's input shape {input_shape}."
            )
    smallest_crop = crop_range[0] * min(image_shape)
    if smallest_crop < _MIN_CROP_PIXELS:
        needed = int(np.ceil(_MIN_CROP_PIXELS / crop_range[0]))
        raise ValueError(
            f"`image_shape` {image_shape} is too small: its smallest crops ({crop_range[0]:g} of "
            f"the side) would span {smallest_crop:.1f} pixels. Use at least {needed} pixels per "
            f"side, or a larger smallest `crop_size`."
        )
    if not isinstance(noise, numbers.Real) or not np.isfinite(noise) or noise < 0:
        raise ValueError(f"`noise` must be a finite number >= 0, received {noise!r}.")
    learning_rate = _learning_rates(learning_rate)
    values_range = _check_range(values_range)
    if strategy is not None and not isinstance(strategy, tf.distribute.Strategy):
        raise TypeError(f"`strategy` must be a tf.distribute.Strategy, received {type(strategy).__name__}.")
    if crops_per_pass is not None:
        crops_per_pass = _positive_int("crops_per_pass", crops_per_pass)
    replicas = 1 if strategy is None else strategy.num_replicas_in_sync
    positions = _positions(items, objective.batch_size)
    if batch_size is None:
        chunk_size = _default_chunk_size(len(positions), nb_crops, strategy)
        if crops_per_pass is not None:
            chunk_size = min(chunk_size, crops_per_pass * replicas)
    else:
        chunk_size = _positive_int("batch_size", batch_size)
        if crops_per_pass is not None and -(-chunk_size // replicas) > crops_per_pass:
            raise ValueError(
                f"`crops_per_pass` {crops_per_pass} is smaller than the {-(-chunk_size // replicas)} images "
                f"a device renders at once (`batch_size` {chunk_size}): every pass takes at least "
                "one crop of each image. Lower `batch_size` or raise `crops_per_pass`."
            )
    if crops_per_pass is None:
        crops_per_pass = _default_crops_per_pass(chunk_size, nb_crops, strategy)
    settings = RenderSettings(
        nb_steps=nb_steps,
        image_shape=image_shape,
        nb_crops=nb_crops,
        crop_range=crop_range,
        noise=float(noise),
        optimizer=get_optimizer(optimizer),
        learning_rate=learning_rate,
        values_range=values_range,
        input_size=model_input_size,
        parametrization=parametrization,
        wrap_crops=(
            objective.fixed_layout is None
            if wrap_crops is None
            else _boolean("wrap_crops", wrap_crops, "True, False or None")
        ),
        antialias=_boolean("antialias", antialias),
        crops_per_pass=crops_per_pass,
    )
    if verbose not in (0, 1, "auto", False, True):
        raise ValueError(f"`verbose` must be 0, 1 or 'auto', received {verbose!r}.")
    chunks = [positions[start : start + chunk_size] for start in range(0, len(positions), chunk_size)]
    listeners = CallbackList(list(callbacks or []))
    if verbose == 1 or (verbose == "auto" and interactive()):
        listeners.callbacks.append(ProgressBar())
    spectrum = _spectrum_for(spectrum_source, channels, image_shape)
    item_seeds = _item_seeds(seed, objective.batch_size)
    extractor = feature_model(objective.model, objective.taps)
    _check_layer_shapes(objective, extractor, (*model_input_size, channels))
    all_images, all_transparencies = [], []
    for number, chunk in enumerate(chunks):
        listeners.on_start(
            {
                "nb_steps": nb_steps,
                "batch_size": len(chunk),
                "total": objective.batch_size,
                "items": chunk.tolist(),
                "chunk": number,
                "nb_chunks": len(chunks),
                "image_shape": image_shape,
                "values_range": values_range,
                "objective": repr(objective),
            }
        )
        groups = [(objective.arguments(part), item_seeds[part]) for part in _split(chunk, replicas)]
        images, transparencies = render(
            objective.model,
            extractor,
            objective.signature,
            objective.layer_names,
            groups,
            spectrum,
            settings,
            listeners,
            strategy,
        )
        images, transparencies = images[: len(chunk)], transparencies[: len(chunk)]
        all_images.append(images)
        all_transparencies.append(transparencies)
    if len(chunks) == 1:
        return all_images[0], all_transparencies[0]
    return tf.concat(all_images, axis=0), tf.concat(all_transparencies, axis=0)


def _check_layer_shapes(objective: Objective, extractor, input_shape: tuple) -> None:
    """Infers every layer's shape at the crop size and lets each term check it: a too-small input,
    or a position outside a layer whose size depends on the input, fails here, not deep inside
    TensorFlow."""
    try:
        shapes = extractor.compute_output_shape((1, *input_shape))
    except Exception as error:  # Keras raises ValueError or TypeError depending on the layer
        raise ValueError(
            f"Model {objective.model.name!r} cannot take crops of size {input_shape[:2]} "
            f"(`model_input_size`): {error}"
        ) from None
    if not isinstance(shapes[0], (tuple, list)):
        shapes = [shapes]  # one output: Keras gives its shape, not a list of shapes
    by_layer = dict(zip(objective.layer_names, (tuple(shape) for shape in shapes), strict=True))
    objective.validate(by_layer, tuple(input_shape[:2]))


def _on_accelerators(strategy) -> bool:
    return bool(
        strategy is not None or tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU")
    )


def _default_chunk_size(count: int, nb_crops: int, strategy) -> int:
    """All items at once on accelerators; on CPUs, about _CPU_CROPS_PER_CHUNK crops per chunk."""
    if _on_accelerators(strategy):
        return count
    return max(1, min(count, _CPU_CROPS_PER_CHUNK // nb_crops))


def _default_crops_per_pass(chunk_size: int, nb_crops: int, strategy) -> int | None:
    """One pass on accelerators; on CPUs, passes of about _CPU_CROPS_PER_PASS crops, at most
    _CPU_MAX_PASSES of them."""
    if _on_accelerators(strategy):
        return None
    per_image = max(1, -(-nb_crops // _CPU_MAX_PASSES), _CPU_CROPS_PER_PASS // chunk_size)
    return per_image * chunk_size


def _split(chunk: np.ndarray, replicas: int) -> list[np.ndarray]:
    """Contiguous parts, one per replica; a chunk smaller than the replica count is padded with
    copies of its last item (their results are dropped), since every replica must run."""
    if replicas == 1:
        return [chunk]
    padded = np.concatenate([chunk, np.full(max(0, replicas - len(chunk)), chunk[-1])])
    return np.array_split(padded, replicas)


def _positions(items, batch_size: int) -> np.ndarray:
    if items is None:
        return np.arange(batch_size)
    positions = np.asarray(items)
    if (
        positions.ndim != 1
        or positions.size == 0
        or not np.issubdtype(positions.dtype, np.integer)
        or positions.min() < 0
        or positions.max() >= batch_size
    ):
        raise ValueError(
            f"`items` must be a non-empty list of batch positions in 0..{batch_size - 1}, received {items!r}."
        )
    return positions.astype(np.int64)
