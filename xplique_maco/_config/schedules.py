"""Step-size schedules: how the optimiser's step size moves over a run, as values with names."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .checks import is_number


@dataclass(frozen=True)
class Constant:
    """The same step size at every step."""

    value: float

    def endpoints(self) -> tuple[float, float]:
        """The step sizes at the first and the last step."""
        return (self.value, self.value)


@dataclass(frozen=True)
class HalfCosine:
    """From `first` at the first step to `last` at the last one, along a half cosine: large
    steps explore, small ones settle the details."""

    first: float
    last: float

    def endpoints(self) -> tuple[float, float]:
        """The step sizes at the first and the last step."""
        return (self.first, self.last)


Schedule = Constant | HalfCosine


def learning_rate(value) -> Schedule:
    """The schedule a `learning_rate` argument names: one number is `Constant`, a pair
    (first, last) a `HalfCosine`."""
    pair = (value, value) if is_number(value) else value
    try:
        first, last = pair
        valid = all(is_number(v) and math.isfinite(v) and v > 0 for v in (first, last))
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(
            "`learning_rate` must be a finite number > 0, or a pair (first, last) of them for a "
            f"cosine decay, received {value!r}."
        )
    if is_number(value):
        return Constant(float(value))
    return HalfCosine(float(first), float(last))
