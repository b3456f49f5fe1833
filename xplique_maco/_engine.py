"""The compiled MACO step and the loop around it: phase in, phase out; transparency accumulated.

One `tf.function` is kept per (feature model, objective signature, image size, crop count,
model input size, optimizer, parametrisation, crop options). Targets, coefficients, seeds,
learning rate, noise, crop range, value range and the spectrum all enter as tensors, so a new
call with other values of those reuses the compiled step without retracing.

There is one path: the step always runs through a `tf.distribute.Strategy`, the default one
(a single device) when the user gives none, so one device and several share every line.
"""

from __future__ import annotations

import warnings
import weakref
from dataclasses import dataclass
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf

from ._augment import crop_and_resize, crop_plan, glance_count
from ._callbacks import CallbackList
from ._model import computes_in_float16
from ._objective import Objective, term_values
from ._settings import Settings

_STEPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_TRACES = {"count": 0}


def trace_count() -> int:
    """How many times a MACO step has been traced in this process (for tests and benchmarks)."""
    return _TRACES["count"]


class Controls(NamedTuple):
    """The tensors of one call that shape no graph: other values do not retrace."""

    values_range: tf.Tensor
    crop_range: tf.Tensor
    crop_extent: tf.Tensor
    noise_std: tf.Tensor
    learning_rate: tf.Tensor
    nb_steps: tf.Tensor


@dataclass(frozen=True)
class Task:
    """What every chunk of one call shares.

    Attributes:
        objective: What to maximise.
        extractor: The keras.Model over the objective's taps (`_model.feature_model`).
        settings: The call's settings, decided (`wrap_crops`, `model_input_size` and
            `crops_per_pass` set, `optimizer` an instance).
        parametrization: `MagnitudeConstrained`, `PhotoSeeded` or `FourierBaseline`.
        spectrum: Its spectrum (Fourier scale, or photos' seeds) at `settings.image_shape`.
        item_seeds: (batch size, 2) int64: the random stream of each batch position.
        strategy: Runs each chunk's items split across its replicas.
    """

    objective: Objective
    extractor: keras.Model
    settings: Settings
    parametrization: object
    spectrum: object
    item_seeds: np.ndarray
    strategy: tf.distribute.Strategy


def _crop_extent(image_shape, input_size) -> np.ndarray:
    """Largest crop with the model's aspect ratio, as fractions of the image height and width."""
    scale = min(image_shape[0] / input_size[0], image_shape[1] / input_size[1])
    return np.array(
        [scale * input_size[0] / image_shape[0], scale * input_size[1] / image_shape[1]], np.float32
    )


def _controls(settings: Settings) -> Controls:
    low, high = settings.values_range
    return Controls(
        values_range=tf.constant(settings.values_range, tf.float32),
        crop_range=tf.constant(settings.crop_size, tf.float32),
        crop_extent=tf.constant(_crop_extent(settings.image_shape, settings.model_input_size)),
        noise_std=tf.constant(settings.noise * (high - low), tf.float32),
        learning_rate=tf.constant(settings.learning_rate, tf.float32),
        nb_steps=tf.constant(settings.nb_steps, tf.float32),
    )


def _step_size(controls: Controls, step_index: tf.Tensor) -> tf.Tensor:
    """The learning rate at this step: a half cosine from the first to the last value."""
    first, last = controls.learning_rate[0], controls.learning_rate[1]
    progress = tf.cast(step_index, tf.float32) / tf.maximum(controls.nb_steps - 1.0, 1.0)
    return last + (first - last) * 0.5 * (1.0 + tf.cos(np.pi * progress))


def crop_passes(batch_size: int, nb_crops: int, crops_per_pass: int | None) -> list[tuple[int, int]]:
    """The model passes of one step, as ranges [first, last) of each item's crops.

    A pass takes the same crops of every item, so it holds batch_size * (last - first) crops:
    at most `crops_per_pass` (and at least one per item); None means one pass over all.
    """
    per_item = nb_crops if crops_per_pass is None else max(1, min(nb_crops, crops_per_pass // batch_size))
    return [(first, min(first + per_item, nb_crops)) for first in range(0, nb_crops, per_item)]


def _gradient_scale(total_of, outputs: list, *arguments) -> tf.Tensor:
    """The power of two that brings the largest |d total_of(outputs, *arguments) / d outputs| to about 1.

    A model computing in float16 (mixed_float16) backpropagates in float16, whose smallest
    number is 6e-8: the gradient of an objective averaged over crops and positions would
    underflow to zero on its way to the image (and float16's largest, 65504, leaves room for
    the gradient to grow through the model). Multiplying the objective by this scale, then the
    float32 gradient by its inverse, is exact (a power of two), and needs no state between
    steps, unlike Keras's dynamic loss scale.
    """
    activations = [tf.cast(output, tf.float32) for output in outputs]
    with tf.GradientTape() as tape:
        tape.watch(activations)
        total = total_of(activations, *arguments)
    cotangents = tape.gradient(total, activations, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    largest = tf.reduce_max(tf.stack([tf.reduce_max(tf.abs(c)) for c in cotangents]))
    usable = tf.math.is_finite(largest) & (largest > 0.0)
    exponent = -tf.round(tf.math.log(tf.where(usable, largest, 1.0)) / np.log(2.0))
    return tf.pow(2.0, tf.clip_by_value(exponent, -64.0, 64.0))


def _build_step(extractor: keras.Model, signature, layer_names, settings: Settings, parametrization):
    optimizer = settings.optimizer
    width = settings.image_shape[1]
    nb_crops = settings.nb_crops
    glances = glance_count(nb_crops, settings.glance)
    input_size = settings.model_input_size
    float16 = computes_in_float16(extractor)

    def objective_of(outputs, arguments, batch_size):
        """Per-item objective (N, K) of the extractor's outputs: reduced in float32."""
        return term_values(signature, dict(zip(layer_names, outputs, strict=True)), arguments, batch_size)

    def total_of(outputs, arguments, batch_size):
        """What each pass differentiates: the objective summed over items, averaged over crops."""
        return tf.reduce_sum(objective_of(outputs, arguments, batch_size)) / nb_crops

    def objective_gradient(sources, boxes, box_indices, noise, arguments, batch_size):
        """Per-item objective (N, K) on the crops, and its gradient on the sources, pass by pass.

        Each pass waits for the previous one's gradient, so only one pass's activations are
        alive at a time; the gradients of the passes add up to that of one big pass.
        """
        values, gradient, previous = [], None, []
        for first, last in crop_passes(batch_size, nb_crops, settings.crops_per_pass):
            if last - first == nb_crops:
                rows = None
            else:  # crops first .. last - 1 of every item
                rows = tf.reshape(
                    tf.range(batch_size)[:, None] * nb_crops + tf.range(first, last)[None], [-1]
                )
            with tf.control_dependencies(previous), tf.GradientTape() as tape:
                tape.watch(sources)
                selected = [t if rows is None else tf.gather(t, rows) for t in (boxes, box_indices, noise)]
                crops = crop_and_resize(sources, selected[0], selected[1], input_size, settings.wrap_crops)
                outputs = extractor(crops + selected[2], training=False)
                if not isinstance(outputs, (list, tuple)):
                    outputs = [outputs]
                value = objective_of(outputs, arguments, batch_size)
                total = tf.reduce_sum(value) / nb_crops
                if float16:
                    with tape.stop_recording():
                        scale = _gradient_scale(total_of, outputs, arguments, batch_size)
                    total = total * scale
            part = tape.gradient(total, sources)
            if float16:
                part = part / scale
            gradient = part if gradient is None else gradient + part
            values.append(value)
            previous = [gradient]
        return tf.concat(values, axis=1), gradient

    @tf.function
    def step(state, step_index, item_seeds, arguments, spectrum, controls):
        _TRACES["count"] += 1  # Python side effect: runs only while tracing
        params, optimizer_state, transparency = state
        batch_size = params.shape[0]
        with tf.GradientTape() as tape:
            tape.watch(params)
            image = parametrization.to_image(params, spectrum, controls.values_range, width)
            sources, boxes, box_indices, noise = crop_plan(
                image,
                item_seeds,
                step_index,
                nb_crops,
                controls.crop_range,
                controls.crop_extent,
                input_size,
                controls.noise_std,
                settings.wrap_crops,
                settings.antialias,
                glances,
            )
        values, sources_gradient = objective_gradient(
            sources, boxes, box_indices, noise, arguments, batch_size
        )
        per_item = tf.reduce_mean(values, axis=1)
        params_gradient, image_gradient = tape.gradient(
            sources,
            [params, image],
            output_gradients=sources_gradient,
            unconnected_gradients=tf.UnconnectedGradients.ZERO,
        )
        # A NaN or inf gradient (an objective undefined somewhere) must never reach the
        # parameters: those entries are skipped, so images stay finite; `render` reports it.
        params_gradient = tf.where(tf.math.is_finite(params_gradient), params_gradient, 0.0)
        image_gradient = tf.where(tf.math.is_finite(image_gradient), image_gradient, 0.0)
        # Gradient ascent: the optimizers minimise, so they receive the negated gradient.
        params, optimizer_state = optimizer.apply(
            params, -params_gradient, optimizer_state, _step_size(controls, step_index), step_index
        )
        transparency = transparency + tf.reduce_mean(tf.abs(image_gradient), axis=-1, keepdims=True)
        return (params, optimizer_state, transparency), per_item

    return step


def _compiled_step(task: Task):
    """The step for this task's shapes, built once per user model and kept while it lives."""
    settings = task.settings
    key = (
        task.objective.signature,
        task.objective.layer_names,
        task.parametrization,
        settings.image_shape,
        settings.nb_crops,
        settings.model_input_size,
        settings.optimizer,
        settings.wrap_crops,
        settings.antialias,
        glance_count(settings.nb_crops, settings.glance),
        settings.crops_per_pass,
    )
    # Keyed by the user's model (the steps hold the extractor, not the model), so both are
    # freed when the user drops the model.
    per_model = _STEPS.setdefault(task.objective.model, {})
    if key not in per_model:
        objective = task.objective
        step = _build_step(
            task.extractor, objective.signature, objective.layer_names, settings, task.parametrization
        )
        per_model[key] = (step, {})
    step, per_strategy = per_model[key]
    if task.strategy not in per_strategy:
        strategy = task.strategy

        @tf.function
        def distributed(state, index, seeds, arguments, spectrum, controls):
            return strategy.run(step, args=(state, index, seeds, arguments, spectrum, controls))

        per_strategy[strategy] = distributed
    return per_strategy[task.strategy]


def _split(items: np.ndarray, replicas: int, group: int = 1) -> list[np.ndarray]:
    """Contiguous parts of whole groups of `group` items, one part per replica; fewer groups than
    replicas are padded with copies of the last group (their results are dropped), since every
    replica must run."""
    if replicas == 1:
        return [items]
    groups = items.reshape(-1, group)
    padded = np.concatenate([groups, np.repeat(groups[-1:], max(0, replicas - len(groups)), axis=0)])
    return [part.reshape(-1) for part in np.array_split(padded, replicas)]


def _per_replica(strategy: tf.distribute.Strategy, values: list):
    """One value per replica, placed on that replica's device."""
    return strategy.experimental_distribute_values_from_function(
        lambda context: values[context.replica_id_in_sync_group]
    )


@tf.function
def _gathered(strategy: tf.distribute.Strategy, per_replica) -> tf.Tensor:
    """The parts of all replicas of all workers, concatenated along the batch, on every worker.

    Compiled (once per strategy and shapes): eager `strategy.gather` retraces at every call.
    """
    return strategy.gather(per_replica, axis=0)


def render(task: Task, items: np.ndarray, callbacks: CallbackList) -> tuple[tf.Tensor, tf.Tensor]:
    """Optimises the phase of the images of `items` (batch positions of the task's objective).

    Returns images (n, H, W, C) and transparencies (n, H, W, 1), in the order of `items`.
    `callbacks` are told after each step that one of them wants, with the per-item objective
    values measured at that step (before the update) and a function rendering the images.
    With several workers every worker returns, and tells its callbacks, all items; callbacks that
    render images must then be the same on every worker, as each rendering gathers all phases.
    """
    settings, strategy = task.settings, task.strategy
    step = _compiled_step(task)
    parametrization = task.parametrization
    controls = _controls(settings)
    group = task.objective.group
    parts = _split(items, strategy.num_replicas_in_sync, group)
    states, seeds, arguments, spectra = [], [], [], []
    for part in parts:
        part_seeds = tf.constant(task.item_seeds[part], tf.int64)
        params = parametrization.initial(task.spectrum, part_seeds, part, settings.image_shape)
        transparency = tf.zeros((params.shape[0], *settings.image_shape, 1))
        states.append((params, settings.optimizer.init(params), transparency))
        seeds.append(part_seeds)
        arguments.append(tf.nest.map_structure(tf.convert_to_tensor, task.objective.arguments(part)))
        spectra.append(parametrization.tensors(task.spectrum, part))
    state = _per_replica(strategy, states)
    seeds, arguments = _per_replica(strategy, seeds), _per_replica(strategy, arguments)
    spectra = _per_replica(strategy, spectra)
    # The batch positions of the rows of the phases, in the order `parts_of` puts them (padding
    # included): a parametrisation may hold data per item (`PhotoSeeded`'s magnitudes).
    positions = np.concatenate(parts)
    # With several workers (MultiWorkerMirroredStrategy) a process holds only its own replicas'
    # parts: every worker gathers all of them, so each returns (and tells its callbacks) all items.
    several_workers = len(strategy.experimental_local_results(seeds)) < strategy.num_replicas_in_sync
    width = settings.image_shape[1]

    def parts_of(per_replica) -> list[tf.Tensor]:
        """The parts of all replicas, in replica order. The gather across workers is a collective
        that every worker must make at the same point: here at the same steps on all workers."""
        if several_workers:
            return [_gathered(strategy, per_replica)]
        return list(strategy.experimental_local_results(per_replica))

    def images_of(phases, positions: np.ndarray) -> tf.Tensor:
        rendered, first = [], 0
        for part in parts_of(phases):
            spectrum = parametrization.tensors(task.spectrum, positions[first : first + part.shape[0]])
            rendered.append(_render_images(parametrization, part, spectrum, controls.values_range, width))
            first += part.shape[0]
        return tf.concat(rendered, 0)[: len(items)]

    def values_of(values) -> np.ndarray:
        return np.concatenate([v.numpy() for v in parts_of(values)])[: len(items)]

    # Early stopping: `rows` are the positions in `items` of the state's rows. On one device the
    # rows of items that stopped leave the state (their phase and transparency are kept aside), so
    # they cost no more model passes; each new number of rows traces the step once. With several
    # replicas the rows stay (every replica must step) and a chunk ends when all its items stop.
    # The images of a Diversity group are optimised together: they leave when all of them are done.
    rows = np.arange(len(items))
    steps_done = np.full(len(items), settings.nb_steps)
    aside: list[tuple[np.ndarray, tf.Tensor, tf.Tensor]] = []
    compact = strategy.num_replicas_in_sync == 1 and not several_workers
    done = np.zeros(len(items), bool)  # by position in `items`
    for index in range(settings.nb_steps):
        state, values = step(state, tf.constant(index, tf.int64), seeds, arguments, spectra, controls)
        # Several workers gather the values at every step, whatever their callbacks want, so that
        # differing callbacks (a progress bar on one worker only) cannot mismatch the collectives.
        if callbacks.wants_step(index) or several_workers:
            step_values = values_of(values)
        if not callbacks.wants_step(index):
            continue
        callbacks.step(
            index, step_values, lambda phases=state[0], at=positions: images_of(phases, at), items=items[rows]
        )
        stops = callbacks.stops(items[rows])
        if stops is None or not stops.any():
            continue
        done[rows[stops]] = True
        if not compact:  # every replica steps: the chunk stops once all its items are done
            stops = done
        elif group > 1:  # a group leaves once all its images are done
            stops = np.repeat(done[rows].reshape(-1, group).all(axis=1), group)
            if not stops.any():
                continue
        if stops.all():
            steps_done[rows] = index + 1
            callbacks.stopped(items[rows], index + 1)
            break
        if not compact:
            continue
        steps_done[rows[stops]] = index + 1
        callbacks.stopped(items[rows[stops]], index + 1)
        aside.append(
            (
                rows[stops],
                tf.gather(state[0], np.flatnonzero(stops)),
                tf.gather(state[2], np.flatnonzero(stops)),
            )
        )
        keep = np.flatnonzero(~stops)
        rows = rows[keep]
        state = tf.nest.map_structure(lambda t, keep=keep: tf.gather(t, keep) if t.shape.rank else t, state)
        seeds = tf.constant(task.item_seeds[items[rows]], tf.int64)
        arguments = tf.nest.map_structure(tf.convert_to_tensor, task.objective.arguments(items[rows]))
        positions = items[rows]
        spectra = parametrization.tensors(task.spectrum, positions)
    phases, sums = state[0], tf.concat(parts_of(state[2]), 0)[: len(items)]
    if aside:  # the rows that stopped early, back in the order of `items`
        order = np.argsort(np.concatenate([rows, *[part[0] for part in aside]]))
        phases = tf.gather(tf.concat([phases, *[part[1] for part in aside]], 0), order)
        sums = tf.gather(tf.concat([sums, *[part[2] for part in aside]], 0), order)
        positions = items
    images = images_of(phases, positions)
    transparencies = sums / tf.constant(steps_done, tf.float32)[:, None, None, None]
    if settings.wrap_crops:
        images, transparencies = centre_on_transparency(images, transparencies)
    last_values = values_of(values)
    if not np.isfinite(last_values).all():
        bad = [int(items[rows[i]]) for i in np.flatnonzero(~np.isfinite(last_values))]
        warnings.warn(
            f"The objective was NaN or infinite at the last step for batch items {bad} "
            "(an activation undefined for these images?). Non-finite gradients were skipped, so "
            "the images are finite, but they may not maximise anything.",
            RuntimeWarning,
            stacklevel=4,
        )
    return images, transparencies


def _circular_centre(weights: tf.Tensor, axis: int) -> tf.Tensor:
    """Per item, the centre of mass of `weights` (N, H, W) along a periodic axis, in pixels."""
    size = weights.shape[axis]
    profile = tf.reduce_sum(weights, axis=3 - axis)  # (N, size)
    angle = 2.0 * np.pi * tf.range(size, dtype=tf.float32) / size
    direction = tf.atan2(tf.reduce_sum(profile * tf.sin(angle), 1), tf.reduce_sum(profile * tf.cos(angle), 1))
    return tf.math.floormod(direction * size / (2.0 * np.pi), size)


def centre_on_transparency(images: tf.Tensor, transparencies: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Rolls each periodic image, and its transparency, so that where the model looked is centred.

    Images optimised with crops that wrap around are periodic: any roll is the same image, and
    the one with the transparency's (circular) centre of mass in the middle shows what the
    model looked at whole instead of cut by the frame.
    """
    weights = transparencies[..., 0]
    for axis in (1, 2):
        size = weights.shape[axis]
        shift = tf.cast(tf.round(size / 2 - _circular_centre(weights, axis)), tf.int32)
        index = tf.math.floormod(tf.range(size)[None] - shift[:, None], size)  # (N, size)
        images = tf.gather(images, index, axis=axis, batch_dims=1)
        transparencies = tf.gather(transparencies, index, axis=axis, batch_dims=1)
    return images, transparencies


@tf.function
def _render_images(parametrization, params, spectrum, values_range, width):
    return parametrization.to_image(params, spectrum, values_range, width)
