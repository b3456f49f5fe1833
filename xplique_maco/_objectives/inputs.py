"""Which input of a model is the image, and what its other inputs are fixed to (`inputs=`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import keras
import numpy as np

from .taps import defined_inputs, image_input_shape, not_an_image


@dataclass(frozen=True, eq=False)
class ModelInputs:
    """The model's image input, and the values of its other inputs for every image.

    Attributes:
        image: The image input's position in `model.inputs`.
        shape: The image input's shape (None, H, W, C).
        values: The other inputs' values, in the model's order: one row for every image, or one row per batch
            position, each row of the input's shape and dtype.
    """

    image: int
    shape: tuple
    values: tuple[np.ndarray, ...] = ()

    def rows(self, positions: np.ndarray) -> list[np.ndarray]:
        """The other inputs' rows (len(positions), ...) for these batch positions."""
        positions = np.asarray(positions, int)
        return [
            np.repeat(value, len(positions), axis=0) if len(value) == 1 else value[positions]
            for value in self.values
        ]

    @property
    def row_specs(self) -> tuple[tuple[tuple, str], ...]:
        """(row shape, dtype) of each other input, for probes and shape checks."""
        return tuple((value.shape[1:], str(value.dtype)) for value in self.values)


def model_inputs(model: keras.Model, inputs: Mapping | None, batch_size: int) -> ModelInputs:
    """The image input of `model` and its other inputs fixed to `inputs`, checked before any step.

    Args:
        model: The objective's model.
        inputs: None, or input name -> array for every input but the image: one row (with or
            without its batch axis) for every image, or one row per image (`batch_size` rows).
        batch_size: The number of images of the objective.

    Raises:
        TypeError / ValueError: naming the input and what is accepted: an unknown name, a
            missing input, several image inputs left free, a value of the wrong shape or type.
    """
    tensors = defined_inputs(model)
    names = [tensor.name for tensor in tensors]
    given = _checked_mapping(inputs)
    if len(tensors) == 1:
        if given:
            raise ValueError(
                f"Model {model.name!r} has one input, {names[0]!r}, the image MACO optimises: `inputs` "
                f"fixes the other inputs of a model with several; leave it out (received {sorted(given)})."
            )
        return ModelInputs(image=0, shape=image_input_shape(model))
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise ValueError(
            f"`inputs` names {unknown}, which model {model.name!r} does not have; its inputs are {names}."
        )
    free = [i for i, name in enumerate(names) if name not in given]
    image = _image_among(model, tensors, free, given)
    fixed = [i for i in range(len(tensors)) if i != image]
    values = tuple(_checked_value(model, tensors[i], given[names[i]], batch_size) for i in fixed)
    return ModelInputs(image=image, shape=tuple(tensors[image].shape), values=values)


def _checked_mapping(inputs) -> dict:
    if inputs is None:
        return {}
    if not isinstance(inputs, Mapping) or not all(isinstance(key, str) for key in inputs):
        raise TypeError(
            "`inputs` must be a dict from input name to array (e.g. inputs={'meta': array}), "
            f"received {type(inputs).__name__}."
        )
    return dict(inputs)


def _image_among(model: keras.Model, tensors: list, free: list[int], given: dict) -> int:
    """The position of the one input left free, which must be an image."""
    names = [tensor.name for tensor in tensors]
    if not free:
        raise ValueError(
            f"`inputs` fixes every input of model {model.name!r} ({names}); leave out the image input "
            "MACO optimises."
        )
    images = [i for i in free if not_an_image(model, tensors[i]) is None]
    if len(free) == 1:
        problem = not_an_image(model, tensors[free[0]])
        if problem:
            raise ValueError(
                f"{problem} It is the one input `inputs` leaves free, so MACO would optimise it."
            )
        return free[0]
    if len(images) == 1:
        missing = [i for i in free if i != images[0]]
        listed = ", ".join(f"{names[i]!r} {tuple(tensors[i].shape)}" for i in missing)
        example = ", ".join(f"{names[i]!r}: array" for i in missing)
        raise ValueError(
            f"Model {model.name!r} has inputs {names}: MACO optimises the image {names[images[0]]!r} "
            f"and needs the value of every other one. Missing: {listed}. Give them as "
            f"inputs={{{example}}} (one row for every image, or one row per image)."
        )
    if len(images) > 1:
        choices = " or ".join(
            "inputs={" + ", ".join(f"{names[j]!r}: images" for j in images if j != i) + "}" for i in images
        )
        raise ValueError(
            f"Model {model.name!r} has {len(images)} image inputs left free "
            f"({', '.join(repr(names[i]) for i in images)}); MACO optimises one. Fix the others to "
            f"images of your own, to optimise the one left: {choices}."
        )
    problems = " ".join(not_an_image(model, tensors[i]) for i in free)
    raise ValueError(f"None of the inputs `inputs` leaves free is an image MACO can optimise: {problems}")


def _checked_value(model: keras.Model, tensor, value, batch_size: int) -> np.ndarray:
    """`value` as rows (1 or batch_size, ...) of `tensor`'s shape and dtype."""
    name, shape = tensor.name, tuple(tensor.shape)
    dtype = keras.backend.standardize_dtype(tensor.dtype)
    try:
        array = np.asarray(value)
        converted = array.astype(dtype)
    except (TypeError, ValueError):
        raise TypeError(
            f"`inputs[{name!r}]` must be an array of {dtype} values, received {type(value).__name__}."
        ) from None
    if array.dtype.kind in "fc" and np.dtype(dtype).kind in "iub" and not np.array_equal(converted, array):
        raise ValueError(f"`inputs[{name!r}]` has fractional values, but the input takes {dtype}.")
    if converted.ndim == len(shape) - 1:
        converted = converted[None]
    rows = "n" if batch_size > 1 else "1"
    expected = f"({', '.join(rows if s is None else str(s) for s in shape)})" + (
        f" with n 1 or {batch_size}" if batch_size > 1 else ""
    )
    fits = converted.ndim == len(shape) and all(
        s is None or s == got for s, got in zip(shape[1:], converted.shape[1:], strict=True)
    )
    if not fits or len(converted) not in (1, batch_size):
        raise ValueError(
            f"`inputs[{name!r}]` has shape {np.shape(value)}; input {name!r} of model {model.name!r} "
            f"takes {shape}: give {expected} (one row for every image, or one row per image; the "
            f"batch axis may be left out for one row)."
        )
    if converted.dtype.kind == "f" and not np.isfinite(converted).all():
        raise ValueError(f"`inputs[{name!r}]` contains NaN or infinite values.")
    return converted
