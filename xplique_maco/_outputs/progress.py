"""The progress bar that `verbose` shows: a Keras progress bar with the step and the objective."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np

from .._config import checks
from .._rendering.events import Callback, RunInfo, StepInfo, every_and_last
from .preview import Preview


class ProgressBar(Callback):
    """A Keras progress bar with the step and the current objective (mean, min and max over the batch)."""

    def __init__(self, every: int = 1):
        self.every = checks.positive_int("every", every)
        self._bar = None
        self._last = -1

    def on_start(self, run: RunInfo) -> None:
        import keras

        self._last = run.nb_steps - 1
        self._bar = keras.utils.Progbar(
            run.nb_steps * len(run.chunks), stateful_metrics=["objective", "min", "max"]
        )

    def wants_step(self, index: int) -> bool:
        return every_and_last(index, self.every, self._last)

    def on_step(self, step: StepInfo) -> None:
        metrics = [("objective", float(np.mean(step.values)))]
        if len(step.values) > 1:
            metrics += [("min", float(np.min(step.values))), ("max", float(np.max(step.values)))]
        self._bar.target = step.total  # more chunks after running out of memory
        self._bar.update(step.done, values=metrics)


def interactive() -> bool:
    """True in a terminal or a Jupyter kernel: where a progress bar is welcome by default."""
    if in_notebook():
        return True
    return bool(getattr(sys.stdout, "isatty", lambda: False)())


def with_progress(callbacks: Sequence[Callback] | None, verbose) -> list[Callback]:
    """The user's callbacks, and a progress bar when `verbose` asks for one (1, or "auto" in a
    terminal or a notebook); in a notebook also a live `Preview` of the images, unless the user
    gave one."""
    verbose = checks.verbose(verbose)
    listeners = list(callbacks or [])
    if verbose == 1 or (verbose == "auto" and interactive()):
        # The picture first, so the bar's line goes under it rather than one line above and the
        # rest below.
        if in_notebook() and not any(isinstance(listener, Preview) for listener in listeners):
            listeners.append(Preview())
        listeners.append(ProgressBar())
    return listeners


def in_notebook() -> bool:
    """True in a Jupyter kernel, where a live picture of the images can be shown."""
    return "ipykernel" in sys.modules


class _Count:
    """Finished work counted one plain line per update: no terminal codes in a redirected log."""

    def __init__(self, total: int, what: str):
        self.total, self.what, self.done = total, what, 0

    def add(self, count: int) -> None:
        self.done += count
        print(f"{self.done}/{self.total} {self.what}", flush=True)


def work_progress(total: int, what: str):
    """A progress bar over `total` pieces of work (objects with `add(count)`): Keras's bar in a
    terminal or a notebook, plain lines ("3/8 objectives") elsewhere, such as a log file."""
    if interactive():
        import keras

        return keras.utils.Progbar(total)
    return _Count(total, what)
