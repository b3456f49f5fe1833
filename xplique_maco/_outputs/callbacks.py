"""The callbacks that ship: History, Snapshots, Recorder, EarlyStopping, and the final values."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .._config import checks
from .._config.files import atomic_write
from .._rendering.events import Callback, RunInfo, StepInfo, every_and_last
from .plots import to_uint8
from .video import gif_bytes, mp4_bytes


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


class Snapshots(Callback):
    """Keeps the images every `every` steps (and at the last step).

    Frames are the images as the optimiser holds them; with wrapping crops, the images `maco`
    returns are the last frame rolled to centre its transparency.

    Attributes:
        steps: The step indices kept.
        images: NumPy array (snapshots, N, H, W, C).
    """

    def __init__(self, every: int = 16):
        self.every = checks.positive_int("every", every)
        self.steps: list[int] = []
        self.images = np.zeros((0,))
        self._last = -1

    def on_start(self, run: RunInfo) -> None:
        self._last = run.nb_steps - 1
        self.steps = [index for index in range(run.nb_steps) if every_and_last(index, self.every, self._last)]
        self._count = run.batch_size
        self.images = np.zeros((0,))

    def wants_step(self, index: int) -> bool:
        return every_and_last(index, self.every, self._last)

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
        self.every = checks.positive_int("every", every)
        self.item = checks.optional_index("item", item)
        self.fps = checks.positive_int("fps", fps)
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
        return every_and_last(index, self.every, self._last)

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
        self.window = checks.positive_int("window", window)
        if min_rise is not None and not (isinstance(min_rise, (int, float)) and min_rise >= 0):
            raise ValueError(f"`min_rise` must be a number >= 0 or None, received {min_rise!r}.")
        if min_rise is None and criterion is None:
            raise ValueError("EarlyStopping needs `min_rise` or a `criterion` (both are None).")
        if criterion is not None and not callable(criterion):
            raise TypeError(
                f"`criterion` must be a function (images, values) -> bools, received {criterion!r}."
            )
        self.min_rise = min_rise
        self.every = checks.positive_int("every", every)
        self.min_steps = 2 * self.window if min_steps is None else checks.positive_int("min_steps", min_steps)
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


class FinalValues(Callback):
    """Keeps each item's objective value at the last step (one device fetch per chunk).

    Attributes:
        values: NumPy array (N,) over the run's items.
    """

    def on_start(self, run: RunInfo) -> None:
        self.last, self.values = run.nb_steps - 1, np.full(run.batch_size, np.nan)

    def wants_step(self, index: int) -> bool:
        return index == self.last

    def on_step(self, step: StepInfo) -> None:
        self.values[step.columns] = step.values
