"""`accentuate`: MACO started from photos, each kept close to its photo at one layer (feature accentuation)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from .._config import checks
from .._config.defaults import ACCENTUATE, CLOSENESS, INPUT_SIZE
from .._config.settings import Given
from .._objectives.coerce import objective_from
from .._objectives.kinds.inversion import Inversion
from .._objectives.objective import Objective
from .._objectives.taps import LayerLike, find_tap, image_input_shape
from .._outputs.progress import with_progress
from .._outputs.stalled import WarnStalled
from .._rendering.events import Callback
from .._rendering.optimize import optimize
from .._rendering.photo import PhotoSeeded, PhotoSeeds

# Photos may stray this far (as a fraction of the value range) outside `values_range`: the
# rounding of a resize, not a photo in another range.
_RANGE_TOLERANCE = 0.01


def accentuate(
    objective: Objective,
    photos,
    layer: LayerLike,
    closeness: float = CLOSENESS,
    nb_steps: int = ACCENTUATE.nb_steps,
    nb_crops: int = ACCENTUATE.nb_crops,
    crop_size: float | tuple[float, float] = ACCENTUATE.crop_size,
    antialias: bool = ACCENTUATE.antialias,
    noise: float = ACCENTUATE.noise,
    optimizer=ACCENTUATE.optimizer,
    learning_rate: float | tuple[float, float] = ACCENTUATE.learning_rate,
    values_range: tuple[float, float] = ACCENTUATE.values_range,
    seed: int | None = None,
    model_input_size: tuple[int, int] | None = None,
    callbacks: Sequence[Callback] | None = None,
    verbose: int | str = "auto",
    batch_size: int | None = None,
    items: Sequence[int] | None = None,
    strategy: tf.distribute.Strategy | None = None,
    crops_per_pass: int | None = None,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Feature accentuation (Hamblin, Fel et al., 2024): what in a photo drives the objective.

    Each image starts as its photo and climbs `objective + closeness * Inversion(model, layer,
    photo)`: the objective, while the image's activations at `layer` keep pointing the way the
    photo's do (cosine similarity, 1 at the start). As in `maco` only the Fourier phase is
    optimised, but the magnitude is the photo's own, so the result keeps the photo's spectrum:
    a photo-like image in which what drives the objective is strengthened, and what the
    objective needs but the photo lacks appears where the photo allows it. The terms are
    ordinary objectives: they run in one compiled step, as in `maco`. The real frequencies
    (the mean and, for even sizes, Nyquist) keep their photo's values, so the mean colour stays.

    The other arguments are `maco`'s (`nb_steps`, `nb_crops`, `crop_size`, `antialias`,
    `noise`, `optimizer`, `learning_rate`, `values_range`, `seed`, `model_input_size`,
    `callbacks`, `verbose`, `batch_size`, `items`, `strategy`, `crops_per_pass`); some defaults
    differ: the crops cover almost the whole image (the closeness compares positions one by
    one), the noise is lower and the steps are small (the photo's phase is already a good
    image, which large steps would scramble first). Crops never wrap around the image: a photo
    is not periodic.

    Args:
        objective: What to accentuate (an Xplique objective is accepted too, as in `maco`). A
            batch of N goes with N photos, or with one photo (used for all); one objective goes
            with any number of photos.
        photos: (N, H, W, C) or (H, W, C) photos in `values_range`, C the model's channels; the
            images are rendered at their size. Square photos at the model's input size compare
            best with the layer: the reference the closeness reads is the centred crop of the
            model's aspect ratio, resized to `model_input_size`.
        layer: The layer whose activations stay close to the photo's (name, path, index, layer
            object or symbolic tensor, as for `Neuron`). An early layer keeps the photo's
            details, a deep one only what it keeps of them (see the feature inversion tutorial).
        closeness: Weight of the closeness term (>= 0; at 0 only the start and the magnitude
            tie the image to its photo). The closeness is a cosine similarity, at most 1, so
            weigh it against how much the objective can grow: the default suits the logits of
            ImageNet classifiers, which accentuation raises by tens; for other objectives,
            compare it with how much the objective rises at 0.

    Returns:
        `(images, transparencies)`: tf.Tensors (N, H, W, C) within `values_range` and
        (N, H, W, 1) >= 0, as `maco`'s.

    Example:
    >>> model = zoo.efficientnet_lite0()
    >>> images, _ = accentuate(Neuron(model, -1, 951), photos, "block3b_add")  # toward "lemon"
    """
    objective = objective_from(objective)
    closeness = checks.number("closeness", closeness, minimum=0.0)
    input_shape = image_input_shape(objective.model)
    photos = _checked_photos(photos, objective, input_shape, checks.values_range(values_range))
    fixed = {
        "image_shape": photos.shape[1:3],
        "wrap_crops": ACCENTUATE.wrap_crops,
        "glance": ACCENTUATE.glance,
    }
    given = Given.of({**locals(), **fixed})
    find_tap(objective.model, layer)  # an unknown layer fails before the reference's forward pass
    size = given.model_input_size or tuple(s or INPUT_SIZE for s in input_shape[1:3])
    # Added even at weight 0: it gives the objective the photos' batch size, and weights 0 and 5
    # share one compiled step.
    objective = objective + closeness * Inversion(objective.model, layer, _reference(photos, size))
    photos = np.repeat(photos, objective.batch_size // len(photos), axis=0)
    seeds = PhotoSeeds.from_photos(photos, given.values_range)
    callbacks = [*with_progress(callbacks, verbose), WarnStalled()]
    return optimize(objective, given, PhotoSeeded(), seeds, callbacks, items, strategy)


def _checked_photos(photos, objective: Objective, input_shape: tuple, values_range) -> np.ndarray:
    """The photos as float32 (N, H, W, C), or a clear error: shape, count, values."""
    try:
        array = np.asarray(photos, dtype=np.float32)
    except (TypeError, ValueError):
        raise ValueError(f"`photos` must be an array of numbers, received {type(photos).__name__}.") from None
    if array.ndim == 3:
        array = array[None]
    channels = input_shape[-1]
    if array.ndim != 4 or len(array) == 0 or array.shape[-1] != channels:
        raise ValueError(
            f"`photos` must have shape (N, H, W, {channels}) or (H, W, {channels}), {channels} the "
            f"channels of model {objective.model.name!r}; received shape {np.shape(photos)}."
        )
    count, wanted = len(array), objective.batch_size
    if count != wanted and 1 not in (count, wanted):
        raise ValueError(
            f"{count} photos for an objective of batch size {wanted}: pass one photo per image "
            f"({wanted}), one photo for all, or an objective of batch size 1. Objective: {objective!r}."
        )
    if not np.isfinite(array).all():
        raise ValueError("`photos` must be finite (no NaN or inf).")
    low, high = values_range
    margin = _RANGE_TOLERANCE * (high - low)
    if array.min() < low - margin or array.max() > high + margin:
        raise ValueError(
            f"`photos` span [{array.min():g}, {array.max():g}], outside `values_range` {values_range}: "
            "pass photos in the model's input range (e.g. uint8 photos / 255 for (0, 1)), or the "
            "range they use."
        )
    return np.clip(array, low, high)


def _reference(photos: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """What the model sees of each photo as a whole: its centred crop of the model's aspect ratio,
    resized (antialiased) to the model's input size; the photos themselves when they are that size."""
    height, width = photos.shape[1:3]
    if (height, width) == tuple(size):
        return photos
    scale = min(height / size[0], width / size[1])
    crop_height, crop_width = round(scale * size[0]), round(scale * size[1])
    top, left = (height - crop_height) // 2, (width - crop_width) // 2
    crops = photos[:, top : top + crop_height, left : left + crop_width]
    return tf.image.resize(crops, size, antialias=True).numpy()
