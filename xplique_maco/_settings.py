"""Every argument check in one place, and `Settings`: the validated controls of one rendering.

Each check returns the value in its plain Python form or raises an error that names the
argument, what was received and what is accepted. NumPy scalars are accepted wherever Python
numbers are (`np.float32(0.9)` is a number). This module imports no TensorFlow, so the
command line can read defaults and check arguments before TensorFlow loads.
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass

# Crops are resized to this side when the model accepts any input size.
DEFAULT_INPUT_SIZE = 224
_MIN_CROP_PIXELS = 4
_MAX_SEED = 2**63 - 1


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not _is_bool(value)


def _is_bool(value) -> bool:
    return type(value).__name__ in ("bool", "bool_")  # Python's and NumPy's booleans


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not _is_bool(value)


def positive_int(name: str, value) -> int:
    if not _is_int(value) or value <= 0:
        raise ValueError(f"`{name}` must be a positive int, received {value!r}.")
    return int(value)


def group_size(name: str, value) -> int:
    """An int >= 2: a number of images compared with each other."""
    if not _is_int(value) or value < 2:
        raise ValueError(
            f"`{name}` must be an int >= 2 (the images of each item, compared with each other), "
            f"received {value!r}."
        )
    return int(value)


def optional_index(name: str, value) -> int | None:
    """None, or an int >= 0 (a batch position)."""
    if value is not None and (not _is_int(value) or value < 0):
        raise ValueError(f"`{name}` must be None or a batch index >= 0, received {value!r}.")
    return None if value is None else int(value)


def optional_positive_int(name: str, value) -> int | None:
    return None if value is None else positive_int(name, value)


def number(
    name: str, value, minimum: float = -math.inf, maximum: float = math.inf, accepted: str = ""
) -> float:
    """A finite real number within [minimum, maximum]."""
    if not _is_number(value) or not math.isfinite(value) or not minimum <= value <= maximum:
        accepted = accepted or _interval(minimum, maximum)
        raise ValueError(f"`{name}` must be {accepted}, received {value!r}.")
    return float(value)


def fraction(owner: str, name: str, value) -> float:
    """A number in [0, 1), as momentum and decay rates are."""
    if not _is_number(value) or not 0.0 <= value < 1.0:
        raise ValueError(f"{owner} `{name}` must be a number in [0, 1), received {value!r}.")
    return float(value)


def small_positive(owner: str, name: str, value) -> float:
    if not _is_number(value) or not 0.0 < value < 1.0:
        raise ValueError(f"{owner} `{name}` must be a small positive number, received {value!r}.")
    return float(value)


def _interval(minimum: float, maximum: float) -> str:
    if maximum == math.inf:
        return "a finite number" if minimum == -math.inf else f"a finite number >= {minimum:g}"
    return f"a number in [{minimum:g}, {maximum:g}]"


def boolean(name: str, value, accepted: str = "True or False") -> bool:
    if not _is_bool(value):
        raise ValueError(f"`{name}` must be {accepted}, received {value!r}.")
    return bool(value)


def optional_boolean(name: str, value) -> bool | None:
    return None if value is None else boolean(name, value, "True, False or None")


def pair_of_ints(name: str, value, minimum: int = 1) -> tuple[int, int]:
    try:
        first, second = value
        valid = _is_int(first) and _is_int(second)
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(f"`{name}` must be a pair of ints (height, width), received {value!r}.")
    if first < minimum or second < minimum:
        raise ValueError(f"`{name}` must be at least ({minimum}, {minimum}), received {value!r}.")
    return int(first), int(second)


def values_range(value, name: str = "values_range") -> tuple[float, float]:
    try:
        low, high = value
        valid = _is_number(low) and _is_number(high)
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(f"`{name}` must be a pair (low, high) of numbers, received {value!r}.")
    if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
        raise ValueError(f"`{name}` must satisfy low < high with finite values, received {value!r}.")
    return float(low), float(high)


def crop_range(value) -> tuple[float, float]:
    """(smallest, largest) crop sides as fractions of the image side; one fraction for both."""
    pair = (value, value) if _is_number(value) else value
    try:
        low, high = pair
        valid = _is_number(low) and _is_number(high)
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(
            f"`crop_size` must be a fraction or a pair (smallest, largest) of fractions of the "
            f"image side, received {value!r}."
        )
    if not 0.0 < low <= high <= 1.0:
        raise ValueError(f"`crop_size` must satisfy 0 < smallest <= largest <= 1, received {value!r}.")
    return float(low), float(high)


def learning_rates(value) -> tuple[float, float]:
    """(first, last) step sizes; one number means a constant step size."""
    pair = (value, value) if _is_number(value) else value
    try:
        first, last = pair
        valid = all(_is_number(v) and math.isfinite(v) and v > 0 for v in (first, last))
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(
            "`learning_rate` must be a finite number > 0, or a pair (first, last) of them for a "
            f"cosine decay, received {value!r}."
        )
    return float(first), float(last)


def seed(value) -> int | None:
    if value is not None and (not _is_int(value) or not 0 <= value <= _MAX_SEED):
        raise ValueError(f"`seed` must be None or an int in [0, 2**63 - 1], received {value!r}.")
    return None if value is None else int(value)


def verbose(value) -> int | str:
    if isinstance(value, str) and value == "auto":
        return value
    if (_is_int(value) or _is_bool(value)) and value in (0, 1):
        return int(value)
    raise ValueError(f"`verbose` must be 0, 1 or 'auto', received {value!r}.")


def slug(text: str) -> str:
    """A file-name-safe form of a layer name or class name: 'block_6/expand' -> 'block_6_expand'."""
    return re.sub(r"[^A-Za-z0-9]+", "_", str(text)).strip("_")


@dataclass(frozen=True)
class Settings:
    """The controls of one rendering, checked when made (see `maco` for what each means).

    `wrap_crops`, `model_input_size`, `batch_size` and `crops_per_pass` may be None: the
    driver decides them from the objective, the model and the device, and the engine
    receives them decided (`batch_size` then the size of a chunk). `optimizer` is a name or
    an instance until the driver resolves it.
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
    learning_rate: tuple[float, float]
    values_range: tuple[float, float]
    seed: int | None
    model_input_size: tuple[int, int] | None
    batch_size: int | None
    crops_per_pass: int | None

    def __post_init__(self):
        checked = {
            "nb_steps": positive_int("nb_steps", self.nb_steps),
            "image_shape": pair_of_ints("image_shape", self.image_shape),
            "nb_crops": positive_int("nb_crops", self.nb_crops),
            "crop_size": crop_range(self.crop_size),
            "wrap_crops": optional_boolean("wrap_crops", self.wrap_crops),
            "antialias": boolean("antialias", self.antialias),
            "glance": number("glance", self.glance, 0.0, 1.0, "a share of the crops in [0, 1]"),
            "noise": number("noise", self.noise, minimum=0.0),
            "learning_rate": learning_rates(self.learning_rate),
            "values_range": values_range(self.values_range),
            "seed": seed(self.seed),
            "model_input_size": (
                None
                if self.model_input_size is None
                else pair_of_ints("model_input_size", self.model_input_size)
            ),
            "batch_size": optional_positive_int("batch_size", self.batch_size),
            "crops_per_pass": optional_positive_int("crops_per_pass", self.crops_per_pass),
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
