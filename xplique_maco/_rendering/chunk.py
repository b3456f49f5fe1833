"""One chunk of a run: its images optimised step by step on the task's replicas, told to the
callbacks, retired when they stop early, and finished into images and transparencies."""

from __future__ import annotations

import warnings

import numpy as np
import tensorflow as tf

from .events import CallbackList
from .replicas import gathered, per_replica, split
from .step import compiled_step, controls, phases_to_images
from .task import Task


class ChunkRun:
    """The state of one chunk's optimisation, on the replicas of the task's strategy.

    `rows` are the positions in `items` of the rows still stepping. On one device the rows of
    items that stop early leave the state (their phase and transparency are kept aside), so they
    cost no more model passes; each new number of rows traces the step once. With several
    replicas the rows stay (every replica must step) and the chunk ends when all its items stop.
    The images of a `Diversity` group are optimised together: they leave when all of them are done.
    """

    def __init__(self, task: Task, items: np.ndarray):
        self.task, self.items = task, items
        plan, strategy = task.plan, task.strategy
        self._step = compiled_step(task)
        self._controls = controls(plan)
        parts = split(items, strategy.num_replicas_in_sync, task.objective.group)
        states, seeds, arguments, spectra = [], [], [], []
        for part in parts:
            part_seeds = tf.constant(task.item_seeds[part], tf.int64)
            params = task.parametrization.initial(task.source, part_seeds, part, plan.image_shape)
            transparency = tf.zeros((params.shape[0], *plan.image_shape, 1))
            states.append((params, plan.optimizer.init(params), transparency))
            seeds.append(part_seeds)
            arguments.append(task.arguments(part))
            spectra.append(task.parametrization.tensors(task.source, part))
        self.state = per_replica(strategy, states)
        self._seeds, self._arguments = per_replica(strategy, seeds), per_replica(strategy, arguments)
        self._spectra = per_replica(strategy, spectra)
        # The batch positions of the rows of the phases, in the order `_parts_of` puts them
        # (padding included): a parametrisation may hold data per item (`PhotoSeeded`'s magnitudes).
        self._positions = np.concatenate(parts)
        # With several workers (MultiWorkerMirroredStrategy) a process holds only its own replicas'
        # parts: every worker gathers all of them, so each returns (and tells its callbacks) all items.
        self.several_workers = (
            len(strategy.experimental_local_results(self._seeds)) < strategy.num_replicas_in_sync
        )
        self._compact = strategy.num_replicas_in_sync == 1 and not self.several_workers
        self.rows = np.arange(len(items))
        self._steps_done = np.full(len(items), plan.nb_steps)
        self._done = np.zeros(len(items), bool)  # by position in `items`
        self._aside: list[tuple[np.ndarray, tf.Tensor, tf.Tensor]] = []
        self._values, self._value_rows = None, self.rows

    def step(self, index: int) -> None:
        """Runs step `index` on the rows still stepping."""
        self.state, self._values = self._step(
            self.state,
            tf.constant(index, tf.int64),
            self._seeds,
            self._arguments,
            self._spectra,
            self._controls,
        )
        self._value_rows = self.rows

    def values(self) -> np.ndarray:
        """The objective of each stepping row at the last step (fetched from the devices)."""
        return np.concatenate([v.numpy() for v in self._parts_of(self._values)])[: len(self._value_rows)]

    def images(self):
        """A function rendering the stepping rows' images as they are now."""
        return lambda phases=self.state[0], at=self._positions: self._images_of(phases, at)

    def leaving(self, stops: np.ndarray) -> np.ndarray | None:
        """The rows that leave now, given which stepping rows the callbacks say are done; None if none."""
        self._done[self.rows[stops]] = True
        if not self._compact:  # every replica steps: the chunk stops once all its items are done
            return self._done if self._done.all() else None
        if self.task.objective.group > 1:  # a group leaves once all its images are done
            group = self.task.objective.group
            stops = np.repeat(self._done[self.rows].reshape(-1, group).all(axis=1), group)
        return stops if stops.any() else None

    @property
    def finished(self) -> bool:
        """Whether every row has left."""
        return len(self.rows) == 0

    def retire(self, leaving: np.ndarray, steps: int) -> np.ndarray:
        """Takes the `leaving` rows out of the optimisation after `steps` steps; returns their items."""
        task, rows = self.task, self.rows[leaving]
        self._steps_done[rows] = steps
        if leaving.all():  # the chunk is done: its state stays as it is
            self._final_rows, self.rows = self.rows, self.rows[:0]
            return self.items[rows]
        gone = np.flatnonzero(leaving)
        self._aside.append((rows, tf.gather(self.state[0], gone), tf.gather(self.state[2], gone)))
        keep = np.flatnonzero(~leaving)
        self.rows = self.rows[keep]
        self.state = tf.nest.map_structure(lambda t: tf.gather(t, keep) if t.shape.rank else t, self.state)
        self._seeds = tf.constant(task.item_seeds[self.items[self.rows]], tf.int64)
        self._arguments = task.arguments(self.items[self.rows])
        self._positions = self.items[self.rows]
        self._spectra = task.parametrization.tensors(task.source, self._positions)
        return self.items[rows]

    def finish(self) -> tuple[tf.Tensor, tf.Tensor]:
        """The images (n, H, W, C) and transparencies (n, H, W, 1) of all `items`, in their order."""
        phases, sums = self.state[0], tf.concat(self._parts_of(self.state[2]), 0)[: len(self.items)]
        positions = self._positions
        if self._aside:  # the rows that stopped early, back in the order of `items`
            rows = self._final_rows if self.finished else self.rows
            order = np.argsort(np.concatenate([rows, *[part[0] for part in self._aside]]))
            phases = tf.gather(tf.concat([phases, *[part[1] for part in self._aside]], 0), order)
            sums = tf.gather(tf.concat([sums, *[part[2] for part in self._aside]], 0), order)
            positions = self.items
        images = self._images_of(phases, positions)
        transparencies = sums / tf.constant(self._steps_done, tf.float32)[:, None, None, None]
        if self.task.plan.wrap_crops:
            images, transparencies = centre_on_transparency(images, transparencies)
        self._warn_if_not_finite()
        return images, transparencies

    def _warn_if_not_finite(self) -> None:
        last_values = self.values()
        if np.isfinite(last_values).all():
            return
        bad = [int(self.items[self._value_rows[i]]) for i in np.flatnonzero(~np.isfinite(last_values))]
        warnings.warn(
            f"The objective was NaN or infinite at the last step for batch items {bad} "
            "(an activation undefined for these images?). Non-finite gradients were skipped, so "
            "the images are finite, but they may not maximise anything.",
            RuntimeWarning,
            stacklevel=6,
        )

    def _parts_of(self, values) -> list[tf.Tensor]:
        """The parts of all replicas, in replica order. The gather across workers is a collective
        that every worker must make at the same point: here at the same steps on all workers."""
        strategy = self.task.strategy
        if self.several_workers:
            return [gathered(strategy, values)]
        return list(strategy.experimental_local_results(values))

    def _images_of(self, phases, positions: np.ndarray) -> tf.Tensor:
        task, rendered, first = self.task, [], 0
        for part in self._parts_of(phases):
            spectrum = task.parametrization.tensors(task.source, positions[first : first + part.shape[0]])
            values_range = self._controls.values_range
            rendered.append(
                phases_to_images(task.parametrization, part, spectrum, values_range, task.plan.image_shape[1])
            )
            first += part.shape[0]
        return tf.concat(rendered, 0)[: len(self.items)]


def run_chunk(task: Task, items: np.ndarray, callbacks: CallbackList) -> tuple[tf.Tensor, tf.Tensor]:
    """Optimises the phase of the images of `items` (batch positions of the task's objective).

    Returns images (n, H, W, C) and transparencies (n, H, W, 1), in the order of `items`.
    `callbacks` are told after each step that one of them wants, with the per-item objective
    values measured at that step (before the update) and a function rendering the images.
    With several workers every worker returns, and tells its callbacks, all items; callbacks that
    render images must then be the same on every worker, as each rendering gathers all phases.
    """
    chunk = ChunkRun(task, items)
    for index in range(task.plan.nb_steps):
        chunk.step(index)
        wanted = callbacks.wants_step(index)
        # Several workers gather the values at every step, whatever their callbacks want, so that
        # differing callbacks (a progress bar on one worker only) cannot mismatch the collectives.
        if wanted or chunk.several_workers:
            values = chunk.values()
        if not wanted:
            continue
        stepping = items[chunk.rows]
        callbacks.step(index, values, chunk.images(), items=stepping)
        stops = callbacks.stops(stepping)
        leaving = None if stops is None or not stops.any() else chunk.leaving(stops)
        if leaving is None:
            continue
        callbacks.stopped(chunk.retire(leaving, index + 1), index + 1)
        if chunk.finished:
            break
    return chunk.finish()


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
