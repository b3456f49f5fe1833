"""A live view in notebooks: a small grid of the current images, updated in place while the run
goes, then the final images with their transparency as alpha."""

from __future__ import annotations

import cv2
import numpy as np

from .._config import checks
from .._rendering.events import Callback, RunInfo, StepInfo, every_and_last
from .plots import to_uint8, transparency_to_alpha


class Preview(Callback):
    """Shows the images forming, in one picture that updates in place (IPython's display handles).

    In Jupyter, `maco(..., verbose=1)` (or the default `verbose="auto"`) adds one; add it yourself
    to choose how often it updates. Outside a notebook it shows nothing useful: use `Snapshots` or
    `TensorBoard` there.

    Args:
        every: Update the picture every `every` steps (and at the last one).
        size: The side of each image in the grid, in pixels.
        columns: Images per row.
        max_items: The first `max_items` items are shown.

    Example:
    >>> maco(objective, callbacks=[Preview(every=4)])
    """

    def __init__(self, every: int = 8, size: int = 96, columns: int = 8, max_items: int = 16):
        self.every = checks.positive_int("every", every)
        self.size = checks.positive_int("size", size)
        self.columns = checks.positive_int("columns", columns)
        self.max_items = checks.positive_int("max_items", max_items)
        self._handle = None

    def on_start(self, run: RunInfo) -> None:
        self._last, self._range = run.nb_steps - 1, run.values_range
        shown = min(run.batch_size, self.max_items)
        self._tiles = np.full((shown, self.size, self.size, 4), 255, np.uint8)
        self._handle = None

    def wants_step(self, index: int) -> bool:
        return every_and_last(index, self.every, self._last)

    def on_step(self, step: StepInfo) -> None:
        shown = [(row, column) for row, column in enumerate(step.columns) if column < len(self._tiles)]
        if not shown:
            return
        images = to_uint8(step.images(), self._range)
        for row, column in shown:
            self._tiles[column, ..., :3] = self._thumbnail(images[row])
        self._show()

    def on_end(self, images, transparencies) -> None:
        count = len(self._tiles)
        images = to_uint8(np.asarray(images)[:count], self._range)
        alphas = transparency_to_alpha(np.asarray(transparencies)[:count])
        for index in range(count):
            self._tiles[index, ..., :3] = self._thumbnail(images[index])
            alpha = np.round(self._thumbnail(alphas[index].reshape(*alphas.shape[1:3], 1)) * 255)
            self._tiles[index, ..., 3] = alpha.reshape(self.size, self.size).astype(np.uint8)
        self._show()

    def _thumbnail(self, image: np.ndarray) -> np.ndarray:
        resized = cv2.resize(image, (self.size, self.size), interpolation=cv2.INTER_AREA)
        return resized.reshape(self.size, self.size, -1)

    def _grid(self) -> np.ndarray:
        count, columns = len(self._tiles), min(self.columns, len(self._tiles))
        rows = -(-count // columns)
        grid = np.zeros((rows * self.size, columns * self.size, 4), np.uint8)
        for index, tile in enumerate(self._tiles):
            top, left = (index // columns) * self.size, (index % columns) * self.size
            grid[top : top + self.size, left : left + self.size] = tile
        return grid

    def _show(self) -> None:
        from IPython.display import Image, display

        grid = self._grid()
        if grid.shape[-1] == 4 and (grid[..., 3] == 255).all():
            grid = grid[..., :3]
        ok, png = cv2.imencode(
            ".png", cv2.cvtColor(grid, cv2.COLOR_RGBA2BGRA if grid.shape[-1] == 4 else cv2.COLOR_RGB2BGR)
        )
        picture = Image(data=png.tobytes(), format="png")
        if self._handle is None:
            self._handle = display(picture, display_id=True)
        else:
            self._handle.update(picture)
