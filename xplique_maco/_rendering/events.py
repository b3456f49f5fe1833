"""The callback contract: what a run tells the code that follows it (`Callback`, `RunInfo`,
`StepInfo`), and `CallbackList`, which tells several callbacks about one run chunk by chunk.

Callbacks live outside the compiled step: asking for nothing costs nothing. The per-item
objective values are fetched from the device only at the steps some callback wants, and the
current images are rendered only when some callback asks for them. A large batch runs in
chunks; `CallbackList` tells each callback which items a step is about, so a callback sees one
run over all items and never counts chunks itself. The callbacks themselves (`History`,
`Recorder`, ...) live in `_outputs`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import tensorflow as tf


@dataclass(frozen=True)
class RunInfo:
    """What a rendering is: told to every callback once, before the first step.

    Attributes:
        objective: The objective's `repr`.
        items: The batch positions rendered, in the order of the results.
        chunks: The items of each chunk, in the order the chunks run.
        nb_steps: Steps per chunk.
        image_shape: (height, width) of the images.
        values_range: The images' value range.
    """

    objective: str
    items: tuple[int, ...]
    chunks: tuple[tuple[int, ...], ...]
    nb_steps: int
    image_shape: tuple[int, int]
    values_range: tuple[float, float]

    @property
    def batch_size(self) -> int:
        """How many images the run makes."""
        return len(self.items)


@dataclass(frozen=True)
class StepInfo:
    """One step of one chunk, told to the callbacks that want it.

    Attributes:
        index: The step, 0 to `nb_steps - 1`.
        chunk: Which chunk of `RunInfo.chunks` is running.
        items: The batch positions of this chunk.
        columns: Where these items stand in `RunInfo.items`: `values[columns] = step.values`
            fills an array over the whole run.
        values: The objective of each of these items, measured at this step (before the update).
        images: Returns the current images of these items, (n, H, W, C) NumPy (rendered on
            demand, once for all callbacks).
        done: Steps done over the whole run, this one included.
        total: Steps of the whole run (`nb_steps` times the number of chunks).
    """

    index: int
    chunk: int
    items: tuple[int, ...]
    columns: np.ndarray
    values: np.ndarray
    images: Callable[[], np.ndarray]
    done: int
    total: int


class Callback:
    """Base class: override any of the hooks; each receives plain Python and NumPy values.

    Hooks:
        on_start(run): before the first step, with a `RunInfo`.
        on_step(step): after each step at which `wants_step(index)` is True, with a `StepInfo`.
        on_end(images, transparencies): after the last step, with the returned tensors.
        should_stop(step) and on_stopped(items, steps): early stopping (see `EarlyStopping`).

    Example:
    >>> class PrintBest(Callback):
    ...     def on_step(self, step):
    ...         print(step.index, step.values.max())
    >>> maco(objective, callbacks=[PrintBest()])
    """

    def wants_step(self, index: int) -> bool:
        """Whether `on_step` should run after this step (every step by default)."""
        return True

    def on_start(self, run: RunInfo) -> None:
        pass

    def on_step(self, step: StepInfo) -> None:
        pass

    def on_end(self, images: tf.Tensor, transparencies: tf.Tensor) -> None:
        pass

    def should_stop(self, step: StepInfo) -> np.ndarray | None:
        """Right after `on_step`: True for each item of `step.items` whose image is done (its
        optimisation may stop), or None to let every item go on (the default)."""
        return None

    def on_stopped(self, items: tuple[int, ...], steps: int) -> None:
        """These items stopped early, after `steps` steps: their images will not change."""


def every_and_last(index: int, every: int, last: int) -> bool:
    """Whether a callback that runs every `every` steps, and at the last one (`last`), runs after step `index`."""
    return index % every == 0 or index == last


class CallbackList:
    """Tells several callbacks about one run, chunk by chunk; renders images once per step at most."""

    def __init__(self, callbacks: Sequence[Callback]):
        for callback in callbacks:
            if not isinstance(callback, Callback):
                raise TypeError(
                    f"Callbacks must be instances of xplique_maco.Callback, received {type(callback).__name__}."
                )
        self.callbacks = list(callbacks)
        self._run: RunInfo | None = None
        self._chunk = 0
        self._told: list[Callback] = []
        self._info: StepInfo | None = None

    def __bool__(self) -> bool:
        return bool(self.callbacks)

    def start(self, run: RunInfo) -> None:
        self._run, self._chunk = run, 0
        for callback in self.callbacks:
            callback.on_start(run)

    def begin_chunk(self, chunk: int) -> None:
        self._chunk = chunk

    def replan(self, chunks: tuple[tuple[int, ...], ...]) -> None:
        """The chunks cut anew from the current one on (after running out of memory): the current
        chunk restarts, and its steps are told again."""
        self._run = replace(self._run, chunks=chunks)

    def wants_step(self, index: int) -> bool:
        return any(callback.wants_step(index) for callback in self.callbacks)

    def step(self, index: int, values: np.ndarray, render: Callable[[], tf.Tensor], items=None) -> None:
        """After step `index` of the current chunk: `values` per item, `render()` the current images;
        `items`: the chunk's items still stepping (all of them by default)."""
        run = self._run
        chunk = run.chunks[self._chunk]
        start = sum(len(chunk) for chunk in run.chunks[: self._chunk])
        if items is None:
            items, columns = chunk, np.arange(start, start + len(chunk))
        else:
            items = tuple(int(i) for i in items)
            at = {item: start + column for column, item in enumerate(chunk)}
            columns = np.array([at[item] for item in items], int)
        cache: list[np.ndarray] = []

        def images() -> np.ndarray:
            if not cache:
                cache.append(render().numpy())
            return cache[0]

        info = StepInfo(
            index=index,
            chunk=self._chunk,
            items=items,
            columns=columns,
            values=values,
            images=images,
            done=self._chunk * run.nb_steps + index + 1,
            total=run.nb_steps * len(run.chunks),
        )
        self._told = [callback for callback in self.callbacks if callback.wants_step(index)]
        self._info = info
        for callback in self._told:
            callback.on_step(info)

    def stops(self, items) -> np.ndarray | None:
        """After `step`: True for each of `items` that a callback told of this step says is done."""
        verdicts = [callback.should_stop(self._info) for callback in self._told]
        verdicts = [np.asarray(v, bool).reshape(-1) for v in verdicts if v is not None]
        if not verdicts:
            return None
        return np.logical_or.reduce(verdicts)

    def stopped(self, items, steps: int) -> None:
        items = tuple(int(i) for i in items)
        for callback in self.callbacks:
            callback.on_stopped(items, steps)

    def end(self, images, transparencies) -> None:
        for callback in self.callbacks:
            callback.on_end(images, transparencies)
