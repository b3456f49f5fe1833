"""`Given`: the controls of one rendering as the user gave them, checked when made (no TensorFlow).

What the run decides from them (crops' wrapping, the model's input size, chunk and pass sizes,
the optimiser instance) is another value, `_rendering.plan.Plan`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields

from . import checks, schedules

# The smallest crop must span this many pixels of the image.
_MIN_CROP_PIXELS = 4


@dataclass(frozen=True)
class Given:
    """The controls of one rendering, as given and checked (see `maco` for what each means).

    `wrap_crops`, `model_input_size`, `batch_size` and `crops_per_pass` may be None: the run
    decides them from the objective, the model and the device. `optimizer` is a name or an
    instance, resolved when the run is planned. `learning_rate` is the schedule the argument
    names (`Constant` or `HalfCosine`).
    """

    nb_steps: int
    image_shape: tuple[int, int]
    nb_crops: int
    crop_size: tuple[float, float]
    wrap_crops: bool | None
    antialias: bool
    glance: float
    noise: float
    optimizer: object
    learning_rate: schedules.Schedule
    values_range: tuple[float, float]
    seed: int | None
    model_input_size: tuple[int, int] | None
    batch_size: int | None
    crops_per_pass: int | None

    @classmethod
    def of(cls, arguments: Mapping) -> Given:
        """The checked controls among a call's arguments (its `locals()`), by name."""
        return cls(**{field.name: arguments[field.name] for field in fields(cls)})

    def __post_init__(self):
        checked = {
            "nb_steps": checks.positive_int("nb_steps", self.nb_steps),
            "image_shape": checks.pair_of_ints("image_shape", self.image_shape),
            "nb_crops": checks.positive_int("nb_crops", self.nb_crops),
            "crop_size": checks.crop_range(self.crop_size),
            "wrap_crops": checks.optional_boolean("wrap_crops", self.wrap_crops),
            "antialias": checks.boolean("antialias", self.antialias),
            "glance": checks.number("glance", self.glance, 0.0, 1.0, "a share of the crops in [0, 1]"),
            "noise": checks.number("noise", self.noise, minimum=0.0),
            "learning_rate": schedules.learning_rate(self.learning_rate),
            "values_range": checks.values_range(self.values_range),
            "seed": checks.seed(self.seed),
            "model_input_size": (
                None
                if self.model_input_size is None
                else checks.pair_of_ints("model_input_size", self.model_input_size)
            ),
            "batch_size": checks.optional_positive_int("batch_size", self.batch_size),
            "crops_per_pass": checks.optional_positive_int("crops_per_pass", self.crops_per_pass),
        }
        for name, value in checked.items():
            object.__setattr__(self, name, value)
        smallest = self.crop_size[0] * min(self.image_shape)
        if smallest < _MIN_CROP_PIXELS:
            needed = math.ceil(_MIN_CROP_PIXELS / self.crop_size[0])
            raise ValueError(
                f"`image_shape` {self.image_shape} is too small: its smallest crops ({self.crop_size[0]:g} "
                f"of the side) would span {smallest:.1f} pixels. Use at least {needed} pixels per side, "
                f"or a larger smallest `crop_size`."
            )
