"""`optimize`: the one internal entry point that runs an objective with given settings, chunk by chunk."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np
import tensorflow as tf

from .._config.settings import Given
from .._objectives.extractor import feature_model
from .._objectives.inputs import model_inputs
from .._objectives.keys import item_keys
from .._objectives.objective import Objective
from .chunk import run_chunk
from .events import Callback, CallbackList, RunInfo
from .parametrization import Parametrization
from .plan import after_out_of_memory, make_plan
from .task import Task


def optimize(
    objective: Objective,
    given: Given,
    parametrization: Parametrization,
    source,
    callbacks: Sequence[Callback] = (),
    items: Sequence[int] | None = None,
    strategy: tf.distribute.Strategy | None = None,
    streams: np.ndarray | None = None,
    inputs: Mapping | None = None,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Renders `objective` with the settings `given`: plans the run, then optimises chunk by chunk.

    Everything is checked before the first step. A chunk that runs out of memory restarts with
    a smaller plan (`plan.after_out_of_memory`); finished chunks are kept.

    Args:
        objective: What to maximise (already ours: see `_objectives.coerce.objective_from`).
        given: The settings as the user gave them.
        parametrization: What the optimiser moves and how it becomes an image.
        source: What the parametrisation renders from, as the user gave it (`magnitude`, photos).
        callbacks: Told at the start, after the steps they want, and at the end.
        items: Batch positions to render (all by default).
        strategy: Splits each chunk across its replicas; None for the current one.
        streams: (batch size, 2) int64: the random stream of each batch position, for callers
            that key images their own way; None gives each image the stream (seed, its key), its
            key saying what it renders (`_objectives.keys`).
        inputs: For a model with several inputs, the values of every input but the image, by name
            (`_objectives.inputs.model_inputs`).

    Returns:
        `(images, transparencies)` of `items`, in their order.
    """
    if strategy is not None and not isinstance(strategy, tf.distribute.Strategy):
        raise TypeError(f"`strategy` must be a tf.distribute.Strategy, received {type(strategy).__name__}.")
    listeners = CallbackList(list(callbacks))
    model_input = model_inputs(objective.model, inputs, objective.batch_size)
    input_shape = model_input.shape
    positions = batch_positions(items, objective.batch_size, objective.group)
    extractor = feature_model(objective.model, objective.taps, model_input.image)
    plan = make_plan(
        given, objective, extractor, input_shape, len(positions), strategy, model_input.row_specs
    )
    task = Task(
        objective=objective,
        extractor=extractor,
        plan=plan,
        parametrization=parametrization,
        source=parametrization.spectrum(source, input_shape[-1], plan.image_shape),
        item_seeds=item_seeds(given.seed, item_keys(objective))
        if streams is None
        else _checked(streams, objective),
        strategy=strategy or tf.distribute.get_strategy(),
        inputs=model_input,
    )
    chunks = _chunks(positions, plan.batch_size)
    listeners.start(
        RunInfo(
            objective=repr(objective),
            items=tuple(int(i) for i in positions),
            chunks=_listed(chunks),
            nb_steps=plan.nb_steps,
            image_shape=plan.image_shape,
            values_range=plan.values_range,
        )
    )
    results, done = [], 0
    while done < len(chunks):
        listeners.begin_chunk(done)
        try:
            results.append(run_chunk(task, chunks[done], listeners))
        except tf.errors.ResourceExhaustedError as error:
            replicas = task.strategy.num_replicas_in_sync
            task = replace(task, plan=after_out_of_memory(task.plan, replicas, objective.group, error))
            chunks = chunks[:done] + _chunks(np.concatenate(chunks[done:]), task.plan.batch_size)
            listeners.replan(_listed(chunks))
            continue
        done += 1
    images = results[0][0] if len(results) == 1 else tf.concat([r[0] for r in results], axis=0)
    transparencies = results[0][1] if len(results) == 1 else tf.concat([r[1] for r in results], axis=0)
    listeners.end(images, transparencies)
    return images, transparencies


def _checked(streams, objective: Objective) -> np.ndarray:
    streams = np.asarray(streams, np.int64)
    if streams.shape != (objective.batch_size, 2):
        raise ValueError(
            f"`streams` must be ({objective.batch_size}, 2) int64, one per image; received {streams.shape}."
        )
    return streams


def _chunks(positions: np.ndarray, size: int) -> list[np.ndarray]:
    return [positions[start : start + size] for start in range(0, len(positions), size)]


def _listed(chunks: list[np.ndarray]) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(int(i) for i in chunk) for chunk in chunks)


def item_seeds(seed: int | None, keys: np.ndarray) -> np.ndarray:
    """The random stream of each image: (seed, its key); None draws a seed."""
    if seed is None:
        seed = int(np.random.default_rng().integers(0, 2**31))
    return np.stack([np.full(len(keys), seed), keys], axis=1).astype(np.int64)


def batch_positions(items, batch_size: int, group: int = 1) -> np.ndarray:
    """The batch positions `items` names (all of them for None), checked: whole groups of `group`."""
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
    if group > 1:
        blocks = np.sort(positions.reshape(-1, group), axis=1) if positions.size % group == 0 else None
        if blocks is None or not (blocks == blocks[:, :1] // group * group + np.arange(group)).all():
            raise ValueError(
                f"`items` must select whole groups of {group} images (a Diversity compares the images "
                f"of a group, 0..{group - 1}, {group}..{2 * group - 1}, ...): a run of {group} "
                f"consecutive positions starting at a multiple of {group}, for each group; received "
                f"{items!r}."
            )
    return positions.astype(np.int64)
