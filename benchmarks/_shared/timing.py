"""Timing helpers: seconds per step of several runs side by side, and the bare model pass."""

from __future__ import annotations

import time
from collections.abc import Callable

import keras
import tensorflow as tf


def call_times(
    runs: dict[str, Callable[[int], object]], steps: int, repeats: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Seconds of each run's call of 1 step and of 1 + `steps` steps, measured in turn within every
    repeat (machine drift hits all alike)."""
    short = {name: [] for name in runs}
    long = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run(1)
            short[name].append(time.perf_counter() - start)
            start = time.perf_counter()
            run(1 + steps)
            long[name].append(time.perf_counter() - start)
    return short, long


def per_step(runs: dict[str, Callable[[int], object]], steps: int, repeats: int) -> dict[str, list[float]]:
    """Seconds per step of each run in every repeat: (time of `run(1 + steps)` - time of `run(1)`)
    / steps, which cancels the per-call set-up."""
    short, long = call_times(runs, steps, repeats)
    return {
        name: [(more - one) / steps for one, more in zip(short[name], long[name], strict=True)]
        for name in runs
    }


def bare_pass(model: keras.Model, crops: int, size: int, jit_compile: bool = False) -> Callable[[], object]:
    """Compiled forward + backward (gradient with respect to the input) on a crop batch; with
    `jit_compile`, compiled by XLA."""
    batch = tf.random.uniform((crops, size, size, 3))

    @tf.function(jit_compile=jit_compile)
    def step(inputs):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            value = tf.reduce_sum(model(inputs, training=False)[:, 1])
        return tape.gradient(value, inputs)

    step(batch)  # trace
    return lambda: step(batch).numpy()
