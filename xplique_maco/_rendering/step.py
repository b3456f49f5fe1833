"""The compiled MACO step: phase in, phase out; the objective's gradient over the crops; transparency.

One `tf.function` is kept per (feature model, objective signature, image size, crop count,
model input size, optimizer, parametrisation, crop options). Targets, coefficients, seeds,
learning rate, noise, crop range, value range and the spectrum all enter as tensors, so a new
call with other values of those reuses the compiled step without retracing.

There is one path: the step always runs through a `tf.distribute.Strategy`, the default one
(a single device) when the user gives none, so one device and several share every line.
"""

from __future__ import annotations

import weakref
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf

from .._objectives.extractor import computes_in_float16, features
from .._objectives.objective import Objective, term_values
from .crops import Crops, crop_and_resize
from .parametrization import Parametrization
from .plan import Plan
from .task import Task

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


def _crop_extent(image_shape, input_size) -> np.ndarray:
    """Largest crop with the model's aspect ratio, as fractions of the image height and width."""
    scale = min(image_shape[0] / input_size[0], image_shape[1] / input_size[1])
    return np.array(
        [scale * input_size[0] / image_shape[0], scale * input_size[1] / image_shape[1]], np.float32
    )


def controls(plan: Plan) -> Controls:
    """The tensors a run's plan gives the step."""
    low, high = plan.values_range
    return Controls(
        values_range=tf.constant(plan.values_range, tf.float32),
        crop_range=tf.constant(plan.crop_size, tf.float32),
        crop_extent=tf.constant(_crop_extent(plan.image_shape, plan.model_input_size)),
        noise_std=tf.constant(plan.noise * (high - low), tf.float32),
        learning_rate=tf.constant(plan.learning_rate.endpoints(), tf.float32),
        nb_steps=tf.constant(plan.nb_steps, tf.float32),
    )


def step_size(controls: Controls, step_index: tf.Tensor) -> tf.Tensor:
    """The learning rate at this step: a half cosine between the schedule's first and last values.

    Every schedule is one (a constant one has equal ends), so a schedule enters the step as two
    numbers and another schedule does not retrace.
    """
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


class _Step:
    """One step of the optimisation for one objective's shapes: `function` is the compiled step,
    `(state, step index, item seeds, arguments, spectrum, controls) -> (state, per-item values)`
    with state `(params, optimizer state, transparency sum)` and arguments `(the objective's
    arguments, the rows of the model's other inputs)` (`Task.arguments`)."""

    def __init__(self, extractor: keras.Model, objective: Objective, plan: Plan, parametrization):
        # Only what `compiled_step`'s key holds: the step is reused for every plan with that key.
        self.extractor = extractor
        self.signature, self.layer_names = objective.signature, objective.layer_names
        self.parametrization: Parametrization = parametrization
        self.crops = plan.crop_plan
        self.width = plan.image_shape[1]
        self.optimizer = plan.optimizer
        self.crops_per_pass = plan.crops_per_pass
        self.float16 = computes_in_float16(extractor)
        self.function = tf.function(self._step)

    def _objective_of(self, outputs, arguments, batch_size):
        """Per-item objective (N, K) of the extractor's outputs: reduced in float32."""
        activations = dict(zip(self.layer_names, outputs, strict=True))
        return term_values(self.signature, activations, arguments, batch_size)

    def _total_of(self, outputs, arguments, batch_size):
        """What each pass differentiates: the objective summed over items, averaged over crops."""
        return tf.reduce_sum(self._objective_of(outputs, arguments, batch_size)) / self.crops.nb_crops

    def _rows(self, batch_size: int, first: int, last: int):
        """The rows of crops first .. last - 1 of every item, or None for all of them."""
        nb_crops = self.crops.nb_crops
        if last - first == nb_crops:
            return None
        return tf.reshape(tf.range(batch_size)[:, None] * nb_crops + tf.range(first, last)[None], [-1])

    def _pass(self, crops: Crops, rows, arguments, others, batch_size):
        """One model pass over the crops at `rows`: the per-item objective (N, k) and its gradient
        on the crops' sources. `others` are the rows (N, ...) of the model's other inputs: each
        crop goes in with its item's."""
        with tf.GradientTape() as tape:
            tape.watch(crops.sources)
            boxes, box_indices, noise = (
                t if rows is None else tf.gather(t, rows)
                for t in (crops.boxes, crops.box_indices, crops.noise)
            )
            plan = self.crops
            resized = crop_and_resize(crops.sources, boxes, box_indices, plan.output_size, plan.wrap)
            if others:
                items = tf.range(batch_size * plan.nb_crops) if rows is None else rows
                others = [tf.gather(rows_of, items // plan.nb_crops) for rows_of in others]
            outputs = features(self.extractor, resized + noise, others)
            value = self._objective_of(outputs, arguments, batch_size)
            total = tf.reduce_sum(value) / plan.nb_crops
            if self.float16:
                with tape.stop_recording():
                    scale = _gradient_scale(self._total_of, outputs, arguments, batch_size)
                total = total * scale
        # An objective the input does not reach (a stop-gradient, an integer cast) has no gradient:
        # zeros, not None, which the image's backward pass would read as ones.
        part = tape.gradient(total, crops.sources, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        if self.float16:
            part = part / scale
        return value, part

    def _objective_gradient(self, crops: Crops, arguments, others, batch_size):
        """Per-item objective (N, K) on the crops, and its gradient on the sources, pass by pass.

        Each pass waits for the previous one's gradient, so only one pass's activations are
        alive at a time; the gradients of the passes add up to that of one big pass.
        """
        values, gradient, previous = [], None, []
        for first, last in crop_passes(batch_size, self.crops.nb_crops, self.crops_per_pass):
            with tf.control_dependencies(previous):
                rows = self._rows(batch_size, first, last)
                value, part = self._pass(crops, rows, arguments, others, batch_size)
            gradient = part if gradient is None else gradient + part
            values.append(value)
            previous = [gradient]
        return tf.concat(values, axis=1), gradient

    def _step(self, state, step_index, item_seeds, arguments, spectrum, controls: Controls):
        _TRACES["count"] += 1  # Python side effect: runs only while tracing
        params, optimizer_state, transparency = state
        arguments, others = arguments  # the objective's, and the model's other inputs' rows
        batch_size = params.shape[0]
        with tf.GradientTape() as tape:
            tape.watch(params)
            image = self.parametrization.to_image(params, spectrum, controls.values_range, self.width)
            crops = self.crops.draw(
                image, item_seeds, step_index, controls.crop_range, controls.crop_extent, controls.noise_std
            )
        values, sources_gradient = self._objective_gradient(crops, arguments, others, batch_size)
        per_item = tf.reduce_mean(values, axis=1)
        params_gradient, image_gradient = tape.gradient(
            crops.sources,
            [params, image],
            output_gradients=sources_gradient,
            unconnected_gradients=tf.UnconnectedGradients.ZERO,
        )
        # A NaN or inf gradient (an objective undefined somewhere) must never reach the
        # parameters: those entries are skipped, so images stay finite; the chunk reports it.
        params_gradient = tf.where(tf.math.is_finite(params_gradient), params_gradient, 0.0)
        image_gradient = tf.where(tf.math.is_finite(image_gradient), image_gradient, 0.0)
        # Gradient ascent: the optimizers minimise, so they receive the negated gradient.
        params, optimizer_state = self.optimizer.apply(
            params, -params_gradient, optimizer_state, step_size(controls, step_index), step_index
        )
        transparency = transparency + tf.reduce_mean(tf.abs(image_gradient), axis=-1, keepdims=True)
        return (params, optimizer_state, transparency), per_item


def compiled_step(task: Task):
    """The step for this task's shapes, run by its strategy; built once per user model and kept
    while the model lives."""
    plan = task.plan
    key = (
        task.extractor,  # which taps, and which input is the image
        task.objective.signature,
        task.objective.layer_names,
        task.parametrization,
        plan.image_shape,
        plan.model_input_size,
        plan.optimizer,
        plan.crop_plan,
        plan.crops_per_pass,
    )
    # Keyed by the user's model (the steps hold the extractor, not the model), so both are
    # freed when the user drops the model.
    per_model = _STEPS.setdefault(task.objective.model, {})
    if key not in per_model:
        step = _Step(task.extractor, task.objective, plan, task.parametrization).function
        per_model[key] = (step, {})
    step, per_strategy = per_model[key]
    if task.strategy not in per_strategy:
        strategy = task.strategy

        @tf.function
        def distributed(state, index, seeds, arguments, spectrum, controls):
            return strategy.run(step, args=(state, index, seeds, arguments, spectrum, controls))

        per_strategy[strategy] = distributed
    return per_strategy[task.strategy]


@tf.function
def phases_to_images(parametrization, params, spectrum, values_range, width):
    """The images of parameters `params`, outside the step (for callbacks and the results)."""
    return parametrization.to_image(params, spectrum, values_range, width)
