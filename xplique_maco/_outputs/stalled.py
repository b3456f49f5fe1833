"""A warning for the images whose objective never moved: said at the end of a run, not hidden in
a noise image.

Two cases, told apart because they have different causes and fixes:

- **the gradient was zero at every step** (the item's transparency, the mean |gradient| on the
  image over the steps, is zero everywhere): the image is the starting noise. A unit behind a
  ReLU that is off for every image (a dead unit), a layer not reached from the input, a
  stop-gradient, an argmax or an integer cast inside the model.
- **the values vanished** (every value measured is below `VANISHED` in magnitude): the image moved
  (the optimiser normalises the gradient) but the objective stayed at nothing, as with an
  untrained or collapsed model whose activations vanish.

Only the first and last steps' values are fetched, once per chunk.
"""

from __future__ import annotations

import warnings

import numpy as np

from .._rendering.events import Callback, RunInfo, StepInfo

# Objective values below this in magnitude at every fetched step count as vanished.
VANISHED = 1e-8
# Items named in one warning; the rest are counted.
_SHOWN = 8


class StalledWarning(UserWarning):
    """Some images' objective never moved (see `xplique_maco._outputs.stalled`)."""


class WarnStalled(Callback):
    """Warns at the end of a run about the items whose objective never moved (module docstring)."""

    def on_start(self, run: RunInfo) -> None:
        self.items, self.last = run.items, run.nb_steps - 1
        self.values = np.zeros((2, run.batch_size))
        self.unchanged = np.zeros(run.batch_size, bool)

    def wants_step(self, index: int) -> bool:
        return self.last > 0 and index in (0, self.last)

    def on_step(self, step: StepInfo) -> None:
        self.values[0 if step.index == 0 else 1, step.columns] = step.values

    def on_end(self, images, transparencies) -> None:
        if self.last <= 0:
            return
        # The transparency is the mean |gradient| on the image over the steps: zero means the
        # gradient was zero at every step (a tiny step size leaves the image still, but not this).
        self.unchanged = np.all(np.asarray(transparencies) == 0, axis=(1, 2, 3))
        vanished = np.all(np.abs(self.values) < VANISHED, axis=0) & ~self.unchanged
        if self.unchanged.any():
            warnings.warn(
                f"The objective of {self._named(self.unchanged)} never moved: each image is the starting "
                "noise, because the objective's gradient was zero at every step. Likely causes: a dead "
                "unit (behind a ReLU that is off for every image: try another unit, or a layer before "
                "the ReLU), a layer the input does not reach, or a stop-gradient, argmax or integer "
                "cast between the input and the layer.",
                StalledWarning,
                stacklevel=5,
            )
        if vanished.any():
            warnings.warn(
                f"The objective of {self._named(vanished)} stayed below {VANISHED:g} at every step: "
                "each image is noise. Likely causes: an untrained or collapsed model (its activations "
                "vanish: check it on a photo with `evaluate`), or a unit that is nearly dead.",
                StalledWarning,
                stacklevel=5,
            )

    def _named(self, mask: np.ndarray) -> str:
        positions = np.flatnonzero(mask)
        shown = ", ".join(
            f"{self.items[p]} ({self.values[0, p]:.3g} -> {self.values[1, p]:.3g})"
            for p in positions[:_SHOWN]
        )
        more = f" and {len(positions) - _SHOWN} more" if len(positions) > _SHOWN else ""
        return f"item{'s' if len(positions) > 1 else ''} {shown}{more} (value at the first step -> the last)"
