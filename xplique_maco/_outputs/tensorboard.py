"""Following a run in TensorBoard: each item's objective as a scalar, its image every few steps,
and its transparency at the end, as `tf.summary` events that TensorBoard reads without a plugin.

The events are written with `tf.summary.write` and the metadata of TensorBoard's own scalar and
image summaries, so the `tensorboard` package is needed to look at them, not to write them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from .._config import checks
from .._rendering.events import Callback, RunInfo, StepInfo, every_and_last
from .plots import to_uint8, transparency_to_alpha


class TensorBoard(Callback):
    """Writes each item's objective, image and transparency for TensorBoard, under `log_dir`.

    Tags, one per item (its batch position, as in `items=`): `objective/0003` (a scalar at every
    step written), `image/0003` (the image every `every` steps and at the last one) and
    `transparency/0003` (the accumulated transparency at the end, scaled as the plots show it).
    Steps are the optimisation's steps. Values and images are fetched only at the steps written;
    the compiled step is not retraced.

    Args:
        log_dir: The folder of the event files (created if missing), as for Keras's callback.
        every: Write every `every` steps (and the last); images too.

    Example:
    >>> maco(objective, callbacks=[TensorBoard("logs/maco", every=8)])
    >>> # then: tensorboard --logdir logs
    """

    def __init__(self, log_dir, every: int = 8):
        self.log_dir = Path(log_dir)
        self.every = checks.positive_int("every", every)
        self._writer = None
        self._last, self._items, self._range = -1, (), (0.0, 1.0)

    def on_start(self, run: RunInfo) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._writer = tf.summary.create_file_writer(str(self.log_dir))
        self._last, self._items, self._range = run.nb_steps - 1, run.items, run.values_range

    def wants_step(self, index: int) -> bool:
        return every_and_last(index, self.every, self._last)

    def on_step(self, step: StepInfo) -> None:
        images = to_uint8(step.images(), self._range)
        with self._writer.as_default():
            for row, (item, value) in enumerate(zip(step.items, step.values, strict=True)):
                _scalar(f"objective/{item:04d}", float(value), step.index)
                _image(f"image/{item:04d}", images[row], step.index)

    def on_end(self, images, transparencies) -> None:
        alphas = np.asarray(transparency_to_alpha(transparencies), np.float32)
        with self._writer.as_default():
            for row, item in enumerate(self._items):
                alpha = alphas[row].reshape(*alphas.shape[1:3], 1)
                _image(f"transparency/{item:04d}", np.round(alpha * 255).astype(np.uint8), self._last)
        self._writer.flush()
        self._writer.close()


def _metadata(plugin: str) -> summary_pb2.SummaryMetadata:
    return summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin))


def _scalar(tag: str, value: float, step: int) -> None:
    tf.summary.write(tag, tf.constant(value, tf.float32), step=step, metadata=_metadata("scalars"))


def _image(tag: str, image: np.ndarray, step: int) -> None:
    """One uint8 image (H, W, C) as TensorBoard's image summary: width, height, then the PNG."""
    height, width = image.shape[:2]
    png = tf.io.encode_png(image)
    tensor = tf.stack([tf.constant(str(width)), tf.constant(str(height)), png])
    tf.summary.write(tag, tensor, step=step, metadata=_metadata("images"))
