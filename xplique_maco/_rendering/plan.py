"""`Plan`: the settings of a run as decided, every choice the given ones leave open made from the
objective, the model and the device; and the smaller plan to retry with after running out of memory.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

import keras
import tensorflow as tf

from .._config import defaults
from .._config.schedules import Schedule
from .._config.settings import Given
from .._objectives.objective import Objective
from . import memory
from .crops import CropPlan, glance_count
from .optimizers import Optimizer, get_optimizer

# On CPUs a model pass over many crops is cache-bound: chunks of this many crops share the
# image-side work of a step, model passes of fewer crops run faster and hold less, and a step
# makes at most a few passes, as each is traced into it (the documentation's Scale page).
_CPU_CROPS_PER_CHUNK = 32
_CPU_CROPS_PER_PASS = 16
_CPU_MAX_PASSES = 4


@dataclass(frozen=True)
class Plan:
    """The controls of one run as decided (see `maco` for what each means).

    Unlike `Given`, nothing is left open: crops wrap or not, crops have a size, chunks a number
    of images, the optimizer is an instance and `glances` counts the glance crops of an image.
    `crops_per_pass` None means one model pass over all the crops of a chunk.
    """

    nb_steps: int
    image_shape: tuple[int, int]
    nb_crops: int
    crop_size: tuple[float, float]
    wrap_crops: bool
    antialias: bool
    glances: int
    noise: float
    optimizer: Optimizer
    learning_rate: Schedule
    values_range: tuple[float, float]
    model_input_size: tuple[int, int]
    batch_size: int
    crops_per_pass: int | None

    @property
    def crop_plan(self) -> CropPlan:
        """How the crops of each image are cut."""
        return CropPlan(self.nb_crops, self.model_input_size, self.wrap_crops, self.antialias, self.glances)


def make_plan(
    given: Given,
    objective: Objective,
    extractor: keras.Model,
    input_shape: tuple,
    count: int,
    strategy: tf.distribute.Strategy | None,
    others: tuple = (),
) -> Plan:
    """The plan of a run of `count` images of `objective`, checked against the model's layers.

    Args:
        given: The settings as given.
        objective: What is rendered.
        extractor: Its feature model.
        input_shape: The model's image input shape (None, H, W, C).
        count: How many images the run renders.
        strategy: The user's strategy, or None.
        others: (row shape, dtype) of each of the model's other inputs (`ModelInputs.row_specs`).
    """
    _check_groups_fit(given, objective)
    model_input_size = _model_input_size(given, input_shape)
    wrap_crops = objective.fixed_layout is None if given.wrap_crops is None else given.wrap_crops
    optimizer = get_optimizer(given.optimizer)
    check_layer_shapes(objective, extractor, (*model_input_size, input_shape[-1]), others)
    glances = glance_count(given.nb_crops, given.glance)
    sizes = _sizes(
        given, glances, model_input_size, extractor, input_shape[-1], count, strategy, objective.group, others
    )
    return Plan(
        nb_steps=given.nb_steps,
        image_shape=given.image_shape,
        nb_crops=given.nb_crops,
        crop_size=given.crop_size,
        wrap_crops=wrap_crops,
        antialias=given.antialias,
        glances=glances,
        noise=given.noise,
        optimizer=optimizer,
        learning_rate=given.learning_rate,
        values_range=given.values_range,
        model_input_size=model_input_size,
        batch_size=sizes.batch_size,
        crops_per_pass=sizes.crops_per_pass,
    )


def _model_input_size(given: Given, input_shape: tuple) -> tuple[int, int]:
    """The size crops are resized to: the given one, else the model's, else the default."""
    if given.model_input_size is None:
        return tuple(size or defaults.INPUT_SIZE for size in input_shape[1:3])
    fixed = tuple(input_shape[1:3])
    if any(f is not None and f != s for f, s in zip(fixed, given.model_input_size, strict=True)):
        raise ValueError(
            f"`model_input_size` {given.model_input_size} conflicts with the model's input shape {input_shape}."
        )
    return given.model_input_size


def _check_groups_fit(given: Given, objective: Objective) -> None:
    """A `Diversity` group is optimised together: a chunk, and a model pass, hold all its images."""
    group = objective.group
    for name, value in (("batch_size", given.batch_size), ("crops_per_pass", given.crops_per_pass)):
        if value is not None and value < group:
            raise ValueError(
                f"`{name}` {value} is smaller than the {group} images of each Diversity group "
                f"({objective!r}): a group's images are compared with each other, so a chunk, and "
                f"every model pass, holds all of them. Use `{name}` >= {group}, or fewer `images`."
            )


def check_layer_shapes(objective: Objective, extractor: keras.Model, input_shape: tuple, others=()) -> None:
    """Infers every layer's shape at the crop size and lets each term check it: a too-small input,
    or a position outside a layer whose size depends on the input, fails here, not deep inside
    TensorFlow."""
    try:
        shape = (1, *input_shape)
        shapes = extractor.compute_output_shape(
            [shape, *((1, *row) for row, _ in others)] if others else shape
        )
    except Exception as error:  # Keras raises ValueError or TypeError depending on the layer
        raise ValueError(
            f"Model {objective.model.name!r} cannot take crops of size {input_shape[:2]} "
            f"(`model_input_size`): {error}"
        ) from None
    if not isinstance(shapes[0], (tuple, list)):
        shapes = [shapes]  # one output: Keras gives its shape, not a list of shapes
    by_layer = dict(zip(objective.layer_names, (tuple(shape) for shape in shapes), strict=True))
    objective.validate(by_layer, tuple(input_shape[:2]))


def _sizes(
    given: Given,
    glances: int,
    input_size,
    extractor,
    channels: int,
    count: int,
    strategy,
    group: int,
    others=(),
) -> memory.Sizes:
    """Images per chunk and crops per model pass: the user's, else on CPUs what runs fastest, on
    accelerators what fits their memory (`memory`), or everything at once where it is unknown.

    Chunks hold whole groups of `group` images (a `Diversity`'s): a chunk size is rounded down to
    a multiple of it, and a group counts as one item of `group` times the cost."""
    replicas = 1 if strategy is None else strategy.num_replicas_in_sync
    chunk_size, crops_per_pass = given.batch_size, given.crops_per_pass
    if chunk_size is not None:
        chunk_size = chunk_size // group * group  # _check_groups_fit: at least one group
    per_device = None if chunk_size is None else memory.per_device(chunk_size, replicas, group)
    if per_device is not None and crops_per_pass is not None and per_device > crops_per_pass:
        raise ValueError(
            f"`crops_per_pass` {crops_per_pass} is smaller than the {per_device} images "
            f"a device renders at once (`batch_size` {chunk_size}): every pass takes at least "
            "one crop of each image. Lower `batch_size` or raise `crops_per_pass`."
        )
    if chunk_size is not None and crops_per_pass is not None:
        return memory.Sizes(chunk_size, crops_per_pass)
    if not _on_accelerators(strategy):
        return _cpu_sizes(chunk_size, crops_per_pass, given.nb_crops, count, group)
    device = memory.accelerator()
    budget = None if device is None else memory.budget(device)
    if budget is None:  # memory unknown: everything at once, halved if it runs out
        if chunk_size is None:
            fitting = count if crops_per_pass is None else crops_per_pass // group * group * replicas
            chunk_size = min(count, fitting)
        return memory.Sizes(chunk_size, crops_per_pass)
    per_crop = memory.crop_cost(extractor, (*input_size, channels), device, others)
    per_item = memory.item_cost(given.image_shape, channels, glances > 0)
    nb_crops = given.nb_crops
    if chunk_size is None and crops_per_pass is None:
        sizes = memory.fitting(budget, per_item * group, per_crop, nb_crops * group, count // group, replicas)
        passes = sizes.crops_per_pass
        return memory.Sizes(sizes.batch_size * group, None if passes is None else max(group, passes))
    if chunk_size is None:
        groups = max(1, (budget - crops_per_pass * per_crop) // (per_item * group))
        groups = min(crops_per_pass // group, groups)
        return memory.Sizes(min(count, groups * group * replicas), crops_per_pass)
    return memory.Sizes(chunk_size, memory.passes_fitting(budget, per_item, per_crop, nb_crops, per_device))


def _cpu_sizes(chunk_size, crops_per_pass, nb_crops: int, count: int, group: int) -> memory.Sizes:
    """On CPUs: chunks of about _CPU_CROPS_PER_CHUNK crops, passes of about _CPU_CROPS_PER_PASS
    crops, at most _CPU_MAX_PASSES of them."""
    if chunk_size is None:
        chunk_size = max(1, min(count, _CPU_CROPS_PER_CHUNK // nb_crops))
        if crops_per_pass is not None:
            chunk_size = min(chunk_size, crops_per_pass)
        chunk_size = max(group, chunk_size // group * group)
    if crops_per_pass is None:
        per_image = max(1, -(-nb_crops // _CPU_MAX_PASSES), _CPU_CROPS_PER_PASS // chunk_size)
        crops_per_pass = per_image * chunk_size
    return memory.Sizes(chunk_size, crops_per_pass)


def _on_accelerators(strategy) -> bool:
    return bool(
        strategy is not None or tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU")
    )


def after_out_of_memory(
    plan: Plan, replicas: int, group: int, error: tf.errors.ResourceExhaustedError
) -> Plan:
    """The plan with smaller chunks or passes, after a device ran out of memory (warned); the
    error again, explained, when a pass already holds one crop of one image."""
    before = memory.Sizes(plan.batch_size, plan.crops_per_pass)
    after = memory.smaller(before, plan.nb_crops, replicas, group)
    if after is None:
        least = "one image" if group == 1 else f"each of the {group} images of one Diversity group"
        raise tf.errors.ResourceExhaustedError(
            error.node_def,
            error.op,
            f"Out of memory even with one crop of {least} per model pass: lower `model_input_size`, "
            f"`image_shape` or `nb_crops`, or free the device's memory. The device said: {error.message}",
        ) from None
    warnings.warn(
        f"Out of memory with {_described(before, plan.nb_crops, replicas, group)}: retrying with "
        f"{_described(after, plan.nb_crops, replicas, group)} (batch_size={after.batch_size}, "
        f"crops_per_pass={after.crops_per_pass}). Finished chunks are kept and the images are those "
        "these settings give from the start; pass them to start there next time.",
        RuntimeWarning,
        stacklevel=4,
    )
    return replace(plan, batch_size=after.batch_size, crops_per_pass=after.crops_per_pass)


def _described(sizes: memory.Sizes, nb_crops: int, replicas: int, group: int) -> str:
    per_device = memory.per_device(sizes.batch_size, replicas, group)
    crops = per_device * nb_crops if sizes.crops_per_pass is None else sizes.crops_per_pass
    crops = min(crops, per_device * nb_crops)
    per_image = max(1, crops // per_device)
    return f"chunks of {sizes.batch_size} images and model passes of {per_device * per_image} crops"
