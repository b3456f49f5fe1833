"""Following a run: the Callback base, what callbacks are told, History, Snapshots, Recorder, a progress bar.

Callbacks live outside the compiled step: asking for nothing costs nothing. The per-item
objective values are fetched from the device only at the steps some callback wants, and the
current images are rendered only when some callback asks for them. A large batch runs in
chunks; `CallbackList` tells each callback which items a step is about, so a callback sees one
run over all items and never counts chunks itself.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import tensorflow as tf

from . import _settings
from ._io import atomic_write
from ._plots import to_uint8
from ._video import gif_bytes, mp4_bytes


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


class History(Callback):
    """Records the objective value of every batch item at every step.

    Attributes:
        values: NumPy array (steps, N) after the run; NaN after an item stopped early.

    Example:
    >>> history = History()
    >>> maco(objective, callbacks=[history])
    >>> history.values[-1]  # last step, one value per image
    """

    def __init__(self):
        self.values = np.zeros((0, 0))

    def on_start(self, run: RunInfo) -> None:
        self.values = np.full((run.nb_steps, run.batch_size), np.nan)

    def on_step(self, step: StepInfo) -> None:
        self.values[step.index, step.columns] = step.values


def _every(every) -> int:
    return _settings.positive_int("every", every)


def _kept(index: int, every: int, last: int) -> bool:
    return index % every == 0 or index == last


class Snapshots(Callback):
    """Keeps the images every `every` steps (and at the last step).

    Frames are the images as the optimiser holds them; with wrapping crops, the images `maco`
    returns are the last frame rolled to centre its transparency.

    Attributes:
        steps: The step indices kept.
        images: NumPy array (snapshots, N, H, W, C).
    """

    def __init__(self, every: int = 16):
        self.every = _every(every)
        self.steps: list[int] = []
        self.images = np.zeros((0,))
        self._last = -1

    def on_start(self, run: RunInfo) -> None:
        self._last = run.nb_steps - 1
        self.steps = [index for index in range(run.nb_steps) if _kept(index, self.every, self._last)]
        self._count = run.batch_size
        self.images = np.zeros((0,))

    def wants_step(self, index: int) -> bool:
        return _kept(index, self.every, self._last)

    def on_step(self, step: StepInfo) -> None:
        frame = step.images()
        if self.images.ndim == 1:  # the first frame gives the image shape
            self.images = np.zeros((len(self.steps), self._count, *frame.shape[1:]), frame.dtype)
        self.images[self.steps.index(step.index), step.columns] = frame


class Recorder(Callback):
    """Writes the optimisation as an animated GIF (Pillow) or MP4 (OpenCV) when the run ends.

    Args:
        path: Output file; the extension chooses the format: ".gif" or ".mp4".
        every: Keep a frame every `every` steps (the last step is always kept).
        item: Which batch item to record; None tiles all items side by side in one frame.
        fps: Frames per second.

    Example:
    >>> maco(Neuron(model, -1, [1, 2, 3]), callbacks=[Recorder("run.gif", every=4)])
    """

    def __init__(self, path, every: int = 4, item: int | None = None, fps: int = 12):
        self.path = Path(path)
        if self.path.suffix.lower() not in (".gif", ".mp4"):
            raise ValueError(f"Recorder writes .gif or .mp4 files, received {str(path)!r}.")
        self.every = _every(every)
        self.item = _settings.optional_index("item", item)
        self.fps = _settings.positive_int("fps", fps)
        self.frames: list[np.ndarray] = []
        self._last, self._recorded, self._values_range = -1, -1, (0.0, 1.0)

    def on_start(self, run: RunInfo) -> None:
        if self.item is not None and self.item not in run.items:
            raise ValueError(f"Recorder item {self.item} is not rendered (the items are {list(run.items)}).")
        if self.item is None and len(run.chunks) > 1:
            raise ValueError(
                "A Recorder of all items needs them in one chunk; pass `item=` to record one item "
                "of a run chunked by `batch_size`, or a larger `batch_size`."
            )
        folder = self.path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ValueError(f"Cannot create the folder for the recording {self.path}: {error}") from None
        if not os.access(folder, os.W_OK):
            raise ValueError(f"Cannot write the recording to {self.path}: folder not writable.")
        self.frames, self._last, self._recorded = [], run.nb_steps - 1, -1
        self._values_range = run.values_range

    def wants_step(self, index: int) -> bool:
        return _kept(index, self.every, self._last)

    def on_step(self, step: StepInfo) -> None:
        if self.item is not None and self.item not in step.items:
            return  # the recorded item is in another chunk
        if step.index <= self._recorded:  # its chunk restarted (out of memory): record it anew
            self.frames = []
        self._recorded = step.index
        batch = to_uint8(step.images(), self._values_range)
        if self.item is None:
            frame = np.concatenate(list(batch), axis=1)
        else:
            frame = batch[step.items.index(self.item)]
        if frame.shape[-1] == 1:
            frame = np.repeat(frame, 3, axis=-1)
        self.frames.append(frame[..., :3])

    def on_end(self, images, transparencies) -> None:
        if not self.frames:
            return
        if self.path.suffix.lower() == ".gif":
            payload = gif_bytes(self.frames, self.fps)
        else:
            payload = mp4_bytes(self.frames, self.fps, self.path.parent)
        atomic_write(self.path, payload)


class EarlyStopping(Callback):
    """Stops each image when it is done, so that finished images stop costing model passes.

    An item is done when its objective has risen by less than `min_rise` (relative to its best
    value before the window) over the last `window` steps, or when `criterion` says so. Values are
    fetched from the device every `every` steps only. On one device the items that stop leave
    the compiled step (each new number of items traces it once); with several replicas a chunk
    stops when all its items are done.

    Args:
        window: Steps over which the objective must still rise.
        min_rise: The smallest relative rise over `window` that keeps an item going.
        every: Check every this many steps.
        min_steps: Never stop before this many steps (default: twice `window`).
        criterion: None, or a function `(images, values) -> bool per item` called at the checks,
            with the current images (n, H, W, C) NumPy and their objective values (n,): True
            stops the item (for instance a judge model's confidence above a threshold).
            Without `min_rise`'s rule then, pass `min_rise=None`.

    Attributes:
        stopped_at: NumPy array (N,) over the run's items: the steps each item ran.

    Example:
    >>> stopping = EarlyStopping(window=16, min_rise=0.01)
    >>> images, _ = maco(objective, nb_steps=256, callbacks=[stopping])
    >>> stopping.stopped_at
    """

    def __init__(
        self,
        window: int = 16,
        min_rise: float | None = 0.01,
        every: int = 4,
        min_steps: int | None = None,
        criterion: Callable | None = None,
    ):
        self.window = _settings.positive_int("window", window)
        if min_rise is not None and not (isinstance(min_rise, (int, float)) and min_rise >= 0):
            raise ValueError(f"`min_rise` must be a number >= 0 or None, received {min_rise!r}.")
        if min_rise is None and criterion is None:
            raise ValueError("EarlyStopping needs `min_rise` or a `criterion` (both are None).")
        if criterion is not None and not callable(criterion):
            raise TypeError(
                f"`criterion` must be a function (images, values) -> bools, received {criterion!r}."
            )
        self.min_rise = min_rise
        self.every = _every(every)
        self.min_steps = (
            2 * self.window if min_steps is None else _settings.positive_int("min_steps", min_steps)
        )
        self.criterion = criterion
        self.stopped_at = np.zeros(0, int)
        self._seen: dict[int, dict[int, float]] = {}
        self._columns: dict[int, int] = {}

    def on_start(self, run: RunInfo) -> None:
        self.stopped_at = np.full(run.batch_size, run.nb_steps)
        self._columns = {item: column for column, item in enumerate(run.items)}
        self._seen = {item: {} for item in run.items}

    def wants_step(self, index: int) -> bool:
        return (index + 1) % self.every == 0

    def on_step(self, step: StepInfo) -> None:
        for item, value in zip(step.items, step.values, strict=True):
            self._seen[item][step.index] = float(value)  # a restarted chunk overwrites its steps

    def should_stop(self, step: StepInfo) -> np.ndarray:
        done = np.zeros(len(step.items), bool)
        if step.index + 1 >= self.min_steps and self.min_rise is not None:
            for row, item in enumerate(step.items):
                seen = self._seen[item]
                before = [v for i, v in seen.items() if i <= step.index - self.window]
                recent = [v for i, v in seen.items() if i > step.index - self.window]
                if before and recent and np.isfinite(max(before)):
                    best = max(before)
                    done[row] = max(recent) - best < self.min_rise * max(abs(best), 1e-12)
        if self.criterion is not None and step.index + 1 >= self.min_steps:
            verdict = np.asarray(self.criterion(step.images(), step.values), bool).reshape(-1)
            if verdict.shape != done.shape:
                raise ValueError(
                    f"EarlyStopping's criterion returned {verdict.shape[0]} values for {len(done)} images."
                )
            done |= verdict
        return done

    def on_stopped(self, items: tuple[int, ...], steps: int) -> None:
        for item in items:
            self.stopped_at[self._columns[item]] = steps


class ProgressBar(Callback):
    """A Keras progress bar with the step and the current objective (mean, min and max over the batch)."""

    def __init__(self, every: int = 1):
        self.every = _every(every)
        self._bar = None
        self._last = -1

    def on_start(self, run: RunInfo) -> None:
        import keras

        self._last = run.nb_steps - 1
        self._bar = keras.utils.Progbar(
            run.nb_steps * len(run.chunks), stateful_metrics=["objective", "min", "max"]
        )

    def wants_step(self, index: int) -> bool:
        return _kept(index, self.every, self._last)

    def on_step(self, step: StepInfo) -> None:
        metrics = [("objective", float(np.mean(step.values)))]
        if len(step.values) > 1:
            metrics += [("min", float(np.min(step.values))), ("max", float(np.max(step.values)))]
        self._bar.target = step.total  # more chunks after running out of memory
        self._bar.update(step.done, values=metrics)


def interactive() -> bool:
    """True in a terminal or a Jupyter kernel: where a progress bar is welcome by default."""
    if "ipykernel" in sys.modules:
        return True
    return bool(getattr(sys.stdout, "isatty", lambda: False)())


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
