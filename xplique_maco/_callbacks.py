"""Following a run: a Keras-style Callback base, history, snapshots, recordings and the progress bar.

Callbacks live outside the compiled step: asking for nothing costs nothing. The per-item
objective values are fetched from the device only when some callback wants them at that step,
and the current images are rendered only when some callback asks for them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

from ._plots import _atomic_write, to_uint8

__all__ = ["Callback", "History", "Snapshots", "Recorder", "ProgressBar", "CallbackList"]


class Callback:
    """Base class: override any of the hooks; each receives plain NumPy values.

    Hooks:
        on_start(info): before the first step; `info` is a dict with "nb_steps", "batch_size",
            "image_shape", "values_range" and "objective" (its repr).
        on_step(step, values, images): after each step that `wants_values(step)` or
            `wants_images(step)`; `values` is a NumPy array (N,) of the objective per batch
            item measured at that step, `images` a function returning the current images
            (N, H, W, C) as NumPy (rendered on demand, then cached for the other callbacks).
        on_end(images, transparencies): after the last step, with the returned tensors.

    Example:
    >>> class PrintBest(Callback):
    ...     def on_step(self, step, values, images):
    ...         print(step, values.max())
    >>> maco(objective, callbacks=[PrintBest()])
    """

    def wants_values(self, step: int) -> bool:
        """Whether `on_step` should run at this step (True for every step by default)."""
        return True

    def wants_images(self, step: int) -> bool:
        """Whether this callback will ask for the current images at this step."""
        return False

    def on_start(self, info: dict) -> None:
        pass

    def on_step(self, step: int, values: np.ndarray, images: Callable[[], np.ndarray]) -> None:
        pass

    def on_end(self, images: tf.Tensor, transparencies: tf.Tensor) -> None:
        pass


class History(Callback):
    """Records the objective value of every batch item at every step.

    Attributes:
        values: NumPy array (steps, N) after the run.

    Example:
    >>> history = History()
    >>> maco(objective, callbacks=[history])
    >>> history.values[-1]  # last step, one value per image
    """

    def __init__(self):
        self._chunks: list[list[np.ndarray]] = []

    def on_start(self, info: dict) -> None:
        if info.get("chunk", 0) == 0:
            self._chunks = []
        self._chunks.append([])

    def on_step(self, step, values, images) -> None:
        self._chunks[-1].append(np.array(values, copy=True))

    @property
    def values(self) -> np.ndarray:
        """(steps, N): chunks of a `batch_size`-chunked run are joined along the items."""
        chunks = [np.stack(rows) for rows in self._chunks if rows]
        return np.concatenate(chunks, axis=1) if chunks else np.zeros((0, 0))


def _check_every(every) -> int:
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ValueError(f"`every` must be a positive int (steps), received {every!r}.")
    return every


class Snapshots(Callback):
    """Keeps the images every `every` steps (and at the last step).

    Frames are the images as the optimiser holds them; with wrapping crops, the images `maco`
    returns are the last frame rolled to centre its transparency.

    Attributes:
        steps: The step indices kept.
        images: NumPy array (snapshots, N, H, W, C).
    """

    def __init__(self, every: int = 16):
        self.every = _check_every(every)
        self.steps: list[int] = []
        self._chunks: list[list[np.ndarray]] = []
        self._last = -1

    def on_start(self, info: dict) -> None:
        if info.get("chunk", 0) == 0:
            self._chunks: list[list[np.ndarray]] = []
        self._chunks.append([])
        self.steps, self._last = [], info["nb_steps"] - 1

    def wants_values(self, step: int) -> bool:
        return step % self.every == 0 or step == self._last

    def wants_images(self, step: int) -> bool:
        return self.wants_values(step)

    def on_step(self, step, values, images) -> None:
        self.steps.append(step)
        self._chunks[-1].append(images())

    @property
    def images(self) -> np.ndarray:
        """(snapshots, N, H, W, C): chunks of a chunked run are joined along the items."""
        chunks = [np.stack(frames) for frames in self._chunks if frames]
        return np.concatenate(chunks, axis=1) if chunks else np.zeros((0,))


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
        self.every = _check_every(every)
        if item is not None and (isinstance(item, bool) or not isinstance(item, int) or item < 0):
            raise ValueError(f"`item` must be None or a batch index >= 0, received {item!r}.")
        if isinstance(fps, bool) or not isinstance(fps, int) or fps < 1:
            raise ValueError(f"`fps` must be a positive int, received {fps!r}.")
        self.item, self.fps = item, fps
        self.frames: list[np.ndarray] = []
        self._active, self._position = False, None
        self._last, self._values_range = -1, (0.0, 1.0)

    def on_start(self, info: dict) -> None:
        total = info.get("total", info["batch_size"])
        if self.item is not None and self.item >= total:
            raise ValueError(f"Recorder item {self.item} does not exist in a batch of {total}.")
        if self.item is None and info.get("nb_chunks", 1) > 1:
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
        items = list(info.get("items", range(info["batch_size"])))
        self._position = items.index(self.item) if self.item in items else None
        if self.item is not None and self._position is None:
            return  # the recorded item is in another chunk
        self._active = True
        self.frames, self._last = [], info["nb_steps"] - 1
        self._values_range = info["values_range"]

    def wants_values(self, step: int) -> bool:
        return self._active and (step % self.every == 0 or step == self._last)

    def wants_images(self, step: int) -> bool:
        return self.wants_values(step)

    def on_step(self, step, values, images) -> None:
        batch = to_uint8(images(), self._values_range)
        frame = batch[self._position] if self.item is not None else np.concatenate(list(batch), axis=1)
        if frame.shape[-1] == 1:
            frame = np.repeat(frame, 3, axis=-1)
        self.frames.append(frame[..., :3])

    def on_end(self, images, transparencies) -> None:
        if not self._active:
            return
        self._active = False
        if self.path.suffix.lower() == ".gif":
            payload = _gif_bytes(self.frames, self.fps)
        else:
            payload = _mp4_bytes(self.frames, self.fps, self.path)
        _atomic_write(self.path, payload)


def _gif_bytes(frames: Sequence[np.ndarray], fps: int) -> bytes:
    import io

    from PIL import Image

    pictures = [Image.fromarray(frame) for frame in frames]
    stream = io.BytesIO()
    pictures[0].save(
        stream,
        format="GIF",
        save_all=True,
        append_images=pictures[1:],
        duration=max(1, round(1000 / fps)),
        loop=0,
    )
    return stream.getvalue()


def _mp4_bytes(frames: Sequence[np.ndarray], fps: int, path: Path) -> bytes:
    import tempfile

    import cv2

    height, width = frames[0].shape[:2]
    handle, temporary = tempfile.mkstemp(suffix=".mp4", dir=path.parent if path.parent.exists() else None)
    os.close(handle)
    try:
        writer = cv2.VideoWriter(temporary, cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
        if not writer.isOpened():
            raise RuntimeError("OpenCV could not open an MP4 writer (codec mp4v unavailable).")
        for frame in frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        writer.release()
        return Path(temporary).read_bytes()
    finally:
        os.unlink(temporary)


class ProgressBar(Callback):
    """A Keras progress bar with the step and the current objective (mean, min and max over the batch)."""

    def __init__(self, every: int = 1):
        self.every = _check_every(every)
        self._bar = None
        self._last = -1

    def on_start(self, info: dict) -> None:
        import keras

        chunks = info.get("nb_chunks", 1)
        self._offset = info.get("chunk", 0) * info["nb_steps"]
        if self._offset == 0:
            self._bar = keras.utils.Progbar(
                info["nb_steps"] * chunks, stateful_metrics=["objective", "min", "max"]
            )
        self._last = info["nb_steps"] - 1

    def wants_values(self, step: int) -> bool:
        return step % self.every == 0 or step == self._last

    def on_step(self, step, values, images) -> None:
        metrics = [("objective", float(np.mean(values)))]
        if len(values) > 1:
            metrics += [("min", float(np.min(values))), ("max", float(np.max(values)))]
        self._bar.update(self._offset + step + 1, values=metrics)


def interactive() -> bool:
    """True in a terminal or a Jupyter kernel: where a progress bar is welcome by default."""
    if "ipykernel" in sys.modules:
        return True
    return bool(getattr(sys.stdout, "isatty", lambda: False)())


class CallbackList:
    """Dispatches the engine's events to several callbacks; renders images once per step at most."""

    def __init__(self, callbacks: Sequence[Callback]):
        for callback in callbacks:
            if not isinstance(callback, Callback):
                raise TypeError(
                    f"Callbacks must be instances of xplique_maco.Callback, received "
                    f"{type(callback).__name__}."
                )
        self.callbacks = list(callbacks)

    def __bool__(self) -> bool:
        return bool(self.callbacks)

    def on_start(self, info: dict) -> None:
        for callback in self.callbacks:
            callback.on_start(info)

    def wants_values(self, step: int) -> bool:
        return any(c.wants_values(step) or c.wants_images(step) for c in self.callbacks)

    def on_step(self, step: int, values: np.ndarray, render: Callable[[], tf.Tensor]) -> None:
        cache: list[np.ndarray] = []

        def images() -> np.ndarray:
            if not cache:
                cache.append(render().numpy())
            return cache[0]

        for callback in self.callbacks:
            if callback.wants_values(step) or callback.wants_images(step):
                callback.on_step(step, values, images)

    def on_end(self, images, transparencies) -> None:
        for callback in self.callbacks:
            callback.on_end(images, transparencies)
