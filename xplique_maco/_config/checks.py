"""Every argument check in one place.

Each check returns the value in its plain Python form or raises an error that names the
argument, what was received and what is accepted. NumPy scalars are accepted wherever Python
numbers are (`np.float32(0.9)` is a number). This module imports no TensorFlow, so the
command line can check arguments before TensorFlow loads.
"""

from __future__ import annotations

import math
import numbers
import re

_MAX_SEED = 2**63 - 1


def is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not is_bool(value)


def is_bool(value) -> bool:
    return type(value).__name__ in ("bool", "bool_")  # Python's and NumPy's booleans


def is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not is_bool(value)


def positive_int(name: str, value) -> int:
    if not is_int(value) or value <= 0:
        raise ValueError(f"`{name}` must be a positive int, received {value!r}.")
    return int(value)


def group_size(name: str, value) -> int:
    """An int >= 2: a number of images compared with each other."""
    if not is_int(value) or value < 2:
        raise ValueError(
            f"`{name}` must be an int >= 2 (the images of each item, compared with each other), "
            f"received {value!r}."
        )
    return int(value)


def optional_index(name: str, value) -> int | None:
    """None, or an int >= 0 (a batch position)."""
    if value is not None and (not is_int(value) or value < 0):
        raise ValueError(f"`{name}` must be None or a batch index >= 0, received {value!r}.")
    return None if value is None else int(value)


def optional_positive_int(name: str, value) -> int | None:
    return None if value is None else positive_int(name, value)


def number(
    name: str, value, minimum: float = -math.inf, maximum: float = math.inf, accepted: str = ""
) -> float:
    """A finite real number within [minimum, maximum]."""
    if not is_number(value) or not math.isfinite(value) or not minimum <= value <= maximum:
        accepted = accepted or _interval(minimum, maximum)
        raise ValueError(f"`{name}` must be {accepted}, received {value!r}.")
    return float(value)


def fraction(owner: str, name: str, value) -> float:
    """A number in [0, 1), as momentum and decay rates are."""
    if not is_number(value) or not 0.0 <= value < 1.0:
        raise ValueError(f"{owner} `{name}` must be a number in [0, 1), received {value!r}.")
    return float(value)


def small_positive(owner: str, name: str, value) -> float:
    if not is_number(value) or not 0.0 < value < 1.0:
        raise ValueError(f"{owner} `{name}` must be a small positive number, received {value!r}.")
    return float(value)


def _interval(minimum: float, maximum: float) -> str:
    if maximum == math.inf:
        return "a finite number" if minimum == -math.inf else f"a finite number >= {minimum:g}"
    return f"a number in [{minimum:g}, {maximum:g}]"


def boolean(name: str, value, accepted: str = "True or False") -> bool:
    if not is_bool(value):
        raise ValueError(f"`{name}` must be {accepted}, received {value!r}.")
    return bool(value)


def optional_boolean(name: str, value) -> bool | None:
    return None if value is None else boolean(name, value, "True, False or None")


def pair_of_ints(name: str, value, minimum: int = 1) -> tuple[int, int]:
    try:
        first, second = value
        valid = is_int(first) and is_int(second)
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
        valid = is_number(low) and is_number(high)
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(f"`{name}` must be a pair (low, high) of numbers, received {value!r}.")
    if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
        raise ValueError(f"`{name}` must satisfy low < high with finite values, received {value!r}.")
    return float(low), float(high)


def crop_range(value) -> tuple[float, float]:
    """(smallest, largest) crop sides as fractions of the image side; one fraction for both."""
    pair = (value, value) if is_number(value) else value
    try:
        low, high = pair
        valid = is_number(low) and is_number(high)
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


def seed(value) -> int | None:
    if value is not None and (not is_int(value) or not 0 <= value <= _MAX_SEED):
        raise ValueError(f"`seed` must be None or an int in [0, 2**63 - 1], received {value!r}.")
    return None if value is None else int(value)


def verbose(value) -> int | str:
    if isinstance(value, str) and value == "auto":
        return value
    if (is_int(value) or is_bool(value)) and value in (0, 1):
        return int(value)
    raise ValueError(f"`verbose` must be 0, 1 or 'auto', received {value!r}.")


def slug(text: str) -> str:
    """A file-name-safe form of a layer name or class name: 'block_6/expand' -> 'block_6_expand'."""
    return re.sub(r"[^A-Za-z0-9]+", "_", str(text)).strip("_")


def shard(value) -> tuple[int, int]:
    """(I, N) with 0 <= I < N: this job renders items I, I + N, I + 2N, ..."""
    try:
        index, count = value
        valid = is_int(index) and is_int(count) and 0 <= index < count
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(f"`shard` must be a pair (I, N) of ints with 0 <= I < N, received {value!r}.")
    return int(index), int(count)


def fraction_range(name: str, value) -> tuple[float, float]:
    """(smallest, largest) fractions with 0 < smallest <= largest <= 1; one fraction for both."""
    pair = (value, value) if is_number(value) else value
    try:
        low, high = pair
        valid = is_number(low) and is_number(high) and 0.0 < low <= high <= 1.0
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(
            f"`{name}` must be a fraction or a pair (smallest, largest) with 0 < smallest <= largest <= 1, "
            f"received {value!r}."
        )
    return float(low), float(high)


def jsonable(settings: dict) -> dict:
    """Settings as JSON values, sorted by name: tuples as lists, NumPy numbers as Python's,
    anything else as its repr."""

    def convert(value):
        if isinstance(value, (tuple, list)):
            return [convert(v) for v in value]
        if isinstance(value, (str, bool)) or value is None:
            return value
        if is_int(value):
            return int(value)
        if is_number(value):
            return float(value)
        return repr(value)

    return {key: convert(value) for key, value in sorted(settings.items())}


def parse_indices(text: str) -> list[int]:
    """Parses "0:1000", "1,94,130", "0:10:2" or mixes like "0:4,10,20:22" into a list of indices.

    Ranges are half-open like Python slices: "0:4" is 0, 1, 2, 3.

    Example:
    >>> parse_indices("0:3,10")
    [0, 1, 2, 10]
    """
    indices: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        if re.fullmatch(r"\d+", part):
            indices.append(int(part))
        elif match := re.fullmatch(r"(\d+):(\d+)(?::(\d+))?", part):
            start, stop, step = int(match[1]), int(match[2]), int(match[3] or 1)
            if stop <= start or step < 1:
                raise ValueError(f"Empty or backward range {part!r} in indices {text!r}.")
            indices.extend(range(start, stop, step))
        else:
            raise ValueError(
                f"Cannot read indices {text!r}: {part!r} is neither an index nor a range. "
                "Accepted: '0:1000', '1,94,130', '0:100:2' or a comma-separated mix."
            )
    if len(set(indices)) != len(indices):
        raise ValueError(f"Indices {text!r} list some index twice.")
    return indices


def parse_shard(text: str) -> tuple[int, int]:
    """Parses "I/N" (0 <= I < N): this machine renders objectives I, I + N, I + 2N, ..."""
    match = re.fullmatch(r"(\d+)/(\d+)", str(text).strip())
    if not match or not 0 <= int(match[1]) < int(match[2]):
        raise ValueError(f"`shard` must be 'I/N' with 0 <= I < N (e.g. '0/4'), received {text!r}.")
    return int(match[1]), int(match[2])
