"""`maco` and `fourier`: the user's arguments, checked, then the objective rendered by `optimize`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import tensorflow as tf

from .._config.defaults import FOURIER, MACO
from .._config.settings import Given
from .._objectives.coerce import objective_from
from .._objectives.objective import Objective
from .._outputs.progress import with_progress
from .._outputs.stalled import WarnStalled
from .._rendering.events import Callback
from .._rendering.optimize import optimize
from .._rendering.parametrization import FourierBaseline, MagnitudeConstrained


def maco(
    objective: Objective,
    nb_steps: int = MACO.nb_steps,
    image_shape: tuple[int, int] = MACO.image_shape,
    nb_crops: int = MACO.nb_crops,
    crop_size: float | tuple[float, float] = MACO.crop_size,
    wrap_crops: bool | None = MACO.wrap_crops,
    antialias: bool = MACO.antialias,
    noise: float = MACO.noise,
    optimizer=MACO.optimizer,
    learning_rate: float | tuple[float, float] = MACO.learning_rate,
    values_range: tuple[float, float] = MACO.values_range,
    magnitude=None,
    seed: int | None = None,
    model_input_size: tuple[int, int] | None = None,
    callbacks: Sequence[Callback] | None = None,
    verbose: int | str = "auto",
    batch_size: int | None = None,
    items: Sequence[int] | None = None,
    strategy: tf.distribute.Strategy | None = None,
    crops_per_pass: int | None = None,
    glance: float = MACO.glance,
    inputs: Mapping[str, np.ndarray] | None = None,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Feature visualisation by MAgnitude Constrained Optimisation (Fel et al., 2023).

    Only the Fourier phase of each image is optimised; its Fourier magnitude stays that of
    natural images. Each step renders the images, cuts `nb_crops` random crops of each,
    resizes them to the model's input size, adds noise and ascends the objective's gradient.
    The transparency is the average |d objective / d image| over all steps: where the model
    looked while the image was built.

    Args:
        objective: What to maximise; a batch of N gives N images. An Xplique
            `features_visualizations.Objective` is accepted too, with Xplique's meaning: one
            image per combination of its Cartesian product (see `from_xplique`).
        nb_steps: Number of optimisation steps.
        image_shape: (height, width) of the images; any size, odd and non-square included.
        nb_crops: Crops per image per step.
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
            cosine; one number keeps it constant. Large steps explore, small ones settle the
            details.
        values_range: (low, high) the model's input range; images are squashed into it.
        magnitude: None for the shipped natural spectrum (colour for 3 channels, grayscale
            otherwise), a `Spectrum` (e.g. from `compute_spectrum`), or a bare array
            (C, H, W // 2 + 1) of magnitudes of [0, 1]-scaled images. Resized to `image_shape`.
        seed: Makes the result reproducible. Each image's random stream is keyed on what it
            renders (not on its position), so a unit gets the same image alone or anywhere in
            any batch. None draws a seed.
        model_input_size: (height, width) crops are resized to. Defaults to the model's input
            size, or 224 x 224 when the model accepts any size.
        callbacks: `xplique_maco.Callback` instances (`History`, `Snapshots`, `Recorder`, your
            own) told at the start, after steps, and at the end.
        verbose: 1 shows a progress bar with the step and the current objective, 0 shows
            nothing, "auto" shows it in terminals and notebooks.
        batch_size: Render at most this many images at once: a large batch (e.g. all 1000
            classes) runs in chunks that share one compiled step (a smaller last chunk traces
            once more, which costs far less than padding it). None: on CPUs, chunks of at
            most 32 crops; on GPUs, as many images as fit in the device's memory for this
            model (one probe pass measures its cost per crop); where the memory is unknown,
            all at once. A chunk that runs out of memory restarts with smaller passes, then
            smaller chunks (warned; finished chunks are kept). Chunks hold whole `Diversity`
            groups: the size is rounded down to a multiple of their K images.
        items: Render only these batch positions of the objective (in this order). Each keeps
            the random stream of its position, so a subset gives the same images as the
            whole batch (used to split a job into shards or resume it). With a `Diversity`,
            whole groups only.
        strategy: A `tf.distribute.Strategy` (e.g. `MirroredStrategy` over several GPUs):
            each chunk's items are split across its replicas, which step together. Images
            are the same as on one device for the same seed. Build or load the model under
            `strategy.scope()` so every device keeps its own copy of the weights.
        crops_per_pass: Run the model on at most this many crops at a time (the same crops
            of every image of a chunk, at least one each) and add up their gradients: the
            memory of the model's activations shrinks in proportion, for big models or many
            crops, and the gradient stays the same up to rounding (which Nadam can grow over
            many steps, as it does any other summation order). With `batch_size` None, chunks
            hold at most this many images. None: on CPUs, passes of about 16 crops; on GPUs,
            one pass when it fits in the device's memory, else the largest pass that does.
        glance: Share of each image's crops per step that are glances: the largest crop
            (the whole image when it has the model's aspect ratio, else the largest box of
            that aspect) seen as a thumbnail, blurred as if shrunk to 2/7 of the model's input
            side (64 of 224 pixels) and resized back, so the object must read at a glance, not
            only as texture up close. Blurred even with `antialias=False`. The count is the
            share of `nb_crops` rounded half up: 0.25 (the default) makes 2 of 8 crops
            glances, 0 turns them off. What they change, measured, is on the documentation's
            metrics page ("How the defaults were chosen"). Glances lower the objective values
            reported along the way, as part of the crops are blurred.
        inputs: For a model with several inputs (an image and a metadata vector, say), the
            value of every input but the image, by input name: `{"meta": array}`, one row for
            every image (with or without its batch axis) or one row per image. The image input
            is the one left out. A siamese model's second image is fixed the same way, which
            says which one to optimise. Each crop enters the model with its image's rows.

    Returns:
        `(images, transparencies)`: tf.Tensors (N, H, W, C) within `values_range` and
        (N, H, W, 1) >= 0.

    Example:
    >>> images, transparencies = maco(Neuron(model, -1, [1, 94]), nb_steps=128, seed=0)
    """
    given = Given.of(locals())
    objective = objective_from(objective)
    callbacks = [*with_progress(callbacks, verbose), WarnStalled()]
    return optimize(
        objective, given, MagnitudeConstrained(), magnitude, callbacks, items, strategy, inputs=inputs
    )


def fourier(
    objective: Objective,
    nb_steps: int = FOURIER.nb_steps,
    image_shape: tuple[int, int] = FOURIER.image_shape,
    nb_crops: int = FOURIER.nb_crops,
    crop_size: float | tuple[float, float] = FOURIER.crop_size,
    wrap_crops: bool = FOURIER.wrap_crops,
    antialias: bool = FOURIER.antialias,
    noise: float = FOURIER.noise,
    optimizer=FOURIER.optimizer,
    learning_rate: float | tuple[float, float] = FOURIER.learning_rate,
    values_range: tuple[float, float] = FOURIER.values_range,
    seed: int | None = None,
    model_input_size: tuple[int, int] | None = None,
    callbacks: Sequence[Callback] | None = None,
    verbose: int | str = "auto",
    batch_size: int | None = None,
    items: Sequence[int] | None = None,
    strategy: tf.distribute.Strategy | None = None,
    crops_per_pass: int | None = None,
    glance: float = FOURIER.glance,
    inputs: Mapping[str, np.ndarray] | None = None,
) -> tuple[tf.Tensor, tf.Tensor]:
    """The classic Fourier feature visualisation (Olah et al., 2017), as a baseline for MACO.

    Real and imaginary parts of every frequency are optimised freely, scaled by 1 / frequency,
    with decorrelated colours (Lucid's parametrisation and Adam at 0.05). Augmentations are
    random crops of 85 to 100% of the image (Lucid's jitter and scaling; rotation is not done).
    Same arguments as `maco` (except `magnitude`: the scale is Lucid's) and same results, so
    the two compare at equal compute; `glance` defaults to 0, as Lucid has no glances.

    Example:
    >>> baseline, masks = fourier(Neuron(model, -1, [1, 94]), nb_steps=128, seed=0)
    """
    given = Given.of(locals())
    objective = objective_from(objective)
    callbacks = [*with_progress(callbacks, verbose), WarnStalled()]
    return optimize(objective, given, FourierBaseline(), None, callbacks, items, strategy, inputs=inputs)
