"""Phase -> image: a fixed Fourier magnitude, the optimised phase, colour recorrelation, value range.

A parametrisation is what the optimiser moves and how it becomes an image (`Parametrization`):
MACO's phases under a fixed magnitude, the Fourier baseline's free coefficients, or the phases
of photos (`photo.PhotoSeeded`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, TypeVar

import numpy as np
import tensorflow as tf

from .spectrum import Spectrum, SpectrumTensors, natural_spectrum

Source = TypeVar("Source")


class Parametrization(Protocol[Source]):
    """What the optimiser moves and how it becomes an image: the four methods a new one defines.

    `Source` is what it renders from, made once per run (a `Spectrum`, a `FourierScale`, the
    photos' `PhotoSeeds`); the compiled step reads it as `SpectrumTensors`.
    """

    def spectrum(self, magnitude, channels: int, image_shape: tuple[int, int]) -> Source:
        """The run's source at `image_shape`, from the user's `magnitude` argument, checked
        against the model's `channels`."""
        ...

    def initial(
        self, spectrum: Source, item_seeds: tf.Tensor, positions: np.ndarray, image_shape: tuple[int, int]
    ) -> tf.Tensor:
        """The first parameters of the items at batch `positions`, from their own seeds."""
        ...

    def tensors(self, spectrum: Source, positions: np.ndarray) -> SpectrumTensors:
        """What the step reads of the source for the items at batch `positions`."""
        ...

    def to_image(
        self, params: tf.Tensor, spectrum: SpectrumTensors, values_range: tf.Tensor, width: int
    ) -> tf.Tensor:
        """The images (N, H, W, C) in `values_range` of parameters `params` (inside the step)."""
        ...


def self_conjugate_masks(height: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mirrored_rows = (-np.arange(height)) % height
    self_conjugate_rows = mirrored_rows == np.arange(height)
    edge_columns = np.zeros(width // 2 + 1, bool)
    edge_columns[0] = True
    if width % 2 == 0:
        edge_columns[-1] = True
    return mirrored_rows, self_conjugate_rows, edge_columns


def hermitian_phase(phase: tf.Tensor, width: int) -> tf.Tensor:
    """Makes the phase of the half-spectrum consistent with a real image.

    In the columns of an rfft that are their own mirror (frequency 0 and, for even widths,
    Nyquist), the bin at row u and the bin at row -u are conjugates in any real image. An
    arbitrary phase there would be projected by irfft2d, shrinking the magnitude. Using
    `(phase[u] - phase[-u]) / 2` makes them conjugate, so the magnitude is kept exactly; the
    few bins that are their own conjugate stay real (magnitude times cos(phase)).

    Args:
        phase: (..., H, W // 2 + 1) phases.
        width: The image width W.

    Returns:
        Phases of the same shape.
    """
    height = phase.shape[-2]
    mirrored_rows, self_conjugate_rows, edge_columns = self_conjugate_masks(height, width)
    mirrored = tf.gather(phase, mirrored_rows, axis=-2)
    antisymmetric = tf.where(self_conjugate_rows[:, None], phase, 0.5 * (phase - mirrored))
    return tf.where(edge_columns[None, :], antisymmetric, phase)


def phase_to_decorrelated(phase: tf.Tensor, magnitude: tf.Tensor, width: int) -> tf.Tensor:
    """The image in decorrelated channels whose rfft2d has the given magnitude and phase.

    Args:
        phase: (N, C, H, W // 2 + 1) phases.
        magnitude: (C, H, W // 2 + 1) magnitudes.
        width: The image width W.

    Returns:
        (N, H, W, C) real image, before colour recorrelation and squashing.
    """
    phase = hermitian_phase(phase, width)
    spectrum = tf.complex(magnitude * tf.cos(phase), magnitude * tf.sin(phase))
    height = phase.shape[-2]
    image = tf.signal.irfft2d(spectrum, fft_length=[height, width])
    return tf.transpose(image, (0, 2, 3, 1))


def decorrelated_to_image(
    decorrelated: tf.Tensor,
    recorrelation: tf.Tensor,
    mean: tf.Tensor,
    values_range: tf.Tensor,
) -> tf.Tensor:
    """Recorrelates channels, then squashes pixels smoothly into `values_range`.

    The squash is a sigmoid with unit slope at mid-grey in [0, 1] units, so typical natural
    contrast passes almost unchanged while outliers are compressed, never clipped (clipping
    would stop the gradient).
    """
    pixels = tf.einsum("nhwd,cd->nhwc", decorrelated, recorrelation) + mean
    squashed = tf.sigmoid(4.0 * (pixels - 0.5))
    low, high = values_range[0], values_range[1]
    return low + (high - low) * squashed


def _per_item(item_seeds: tf.Tensor, draw) -> tf.Tensor:
    """Stacks one draw per item, each from its own seed (so items do not depend on each other);
    a loop, not one draw per item, so a graph that holds it stays the same size for any count."""
    return tf.map_fn(
        lambda seed: draw(tf.random.experimental.stateless_fold_in(seed, -1, alg="philox")),
        item_seeds,
        fn_output_signature=tf.float32,
    )


# Compiled once per shape: run eagerly, the loop would dispatch every item's draw from Python.
@tf.function
def _uniform_phases(item_seeds: tf.Tensor, shape: tuple) -> tf.Tensor:
    return _per_item(
        item_seeds,
        lambda seed: tf.random.stateless_uniform(shape, seed, minval=-math.pi, maxval=math.pi, alg="philox"),
    )


@tf.function
def _small_normals(item_seeds: tf.Tensor, shape: tuple) -> tf.Tensor:
    return _per_item(item_seeds, lambda seed: 0.01 * tf.random.stateless_normal(shape, seed, alg="philox"))


@dataclass(frozen=True)
class MagnitudeConstrained:
    """MACO: the parameters are the phases; the magnitude is the spectrum's, fixed."""

    def spectrum(self, magnitude, channels: int, image_shape: tuple[int, int]) -> Spectrum:
        """The magnitude to impose, at `image_shape`: the shipped natural one for None, a
        `Spectrum`, or a bare (C, H, W // 2 + 1) array of magnitudes of [0, 1]-scaled images."""
        if magnitude is None:
            spectrum = natural_spectrum(channels)
        elif isinstance(magnitude, Spectrum):
            spectrum = magnitude
        else:
            spectrum = Spectrum.from_magnitude(magnitude)
        if spectrum.channels != channels:
            raise ValueError(
                f"The magnitude has {spectrum.channels} channels but the model takes {channels}; "
                "pass a spectrum computed from images with the model's channels "
                "(xplique_maco.compute_spectrum)."
            )
        return spectrum.resized(*image_shape)

    def initial(self, spectrum, item_seeds: tf.Tensor, positions, image_shape: tuple[int, int]) -> tf.Tensor:
        """The first phases of the items at batch `positions`: uniform, from their own seeds."""
        channels = spectrum.channels
        return _uniform_phases(item_seeds, (channels, image_shape[0], image_shape[1] // 2 + 1))

    def tensors(self, spectrum, positions) -> SpectrumTensors:
        """What the step reads of the spectrum for the items at batch `positions`: one magnitude for all."""
        return spectrum.tensors()

    def to_image(self, params, spectrum, values_range, width: int) -> tf.Tensor:
        magnitude, recorrelation, mean = spectrum
        return decorrelated_to_image(
            phase_to_decorrelated(params, magnitude, width), recorrelation, mean, values_range
        )


@dataclass(frozen=True, eq=False)
class FourierScale:
    """Lucid's scale of the Fourier baseline: 1 / max(f, 1 / max(H, W)) per frequency, with its
    colour decorrelation. Not a magnitude: the baseline multiplies free coefficients by it."""

    scale: np.ndarray  # (C, H, W // 2 + 1)
    recorrelation: np.ndarray  # (C, C)
    mean: np.ndarray  # (C,)

    @property
    def channels(self) -> int:
        return self.scale.shape[0]

    @classmethod
    def lucid(cls, channels: int, image_shape: tuple[int, int]) -> FourierScale:
        height, width = image_shape
        frequency = np.sqrt(np.fft.fftfreq(height)[:, None] ** 2 + np.fft.rfftfreq(width)[None, :] ** 2)
        # Lucid also multiplies by sqrt(H W), which makes its transform unitary (so learning rates
        # mean the same as in pixel space).
        scale = np.sqrt(height * width) / np.maximum(frequency, 1.0 / max(height, width))
        natural = natural_spectrum(channels).recorrelation
        # Lucid: sigmoid((x / 4) @ normalised colours); our squash is sigmoid(4 (y - 0.5)), hence / 16.
        recorrelation = natural / np.linalg.norm(natural, axis=0).max() / 16.0
        scales = np.repeat(scale[None], channels, 0).astype(np.float32)
        return cls(scales, recorrelation.astype(np.float32), np.full(channels, 0.5, np.float32))

    def tensors(self) -> SpectrumTensors:
        return SpectrumTensors(
            tf.constant(self.scale), tf.constant(self.recorrelation), tf.constant(self.mean)
        )


@dataclass(frozen=True)
class FourierBaseline:
    """Lucid's Fourier parametrisation: free real and imaginary parts, scaled by 1 / frequency.

    Its spectrum is a `FourierScale` instead of a magnitude; the optimiser changes magnitudes
    and phases alike, so nothing keeps the spectrum natural.
    """

    def spectrum(self, magnitude, channels: int, image_shape: tuple[int, int]) -> FourierScale:
        return FourierScale.lucid(channels, image_shape)

    def initial(self, spectrum, item_seeds: tf.Tensor, positions, image_shape: tuple[int, int]) -> tf.Tensor:
        shape = (spectrum.channels, image_shape[0], image_shape[1] // 2 + 1, 2)
        return _small_normals(item_seeds, shape)

    def tensors(self, spectrum, positions) -> SpectrumTensors:
        return spectrum.tensors()

    def to_image(self, params, spectrum, values_range, width: int) -> tf.Tensor:
        scale, recorrelation, mean = spectrum
        coefficients = tf.complex(params[..., 0] * scale, params[..., 1] * scale)
        height = params.shape[-3]
        decorrelated = tf.transpose(tf.signal.irfft2d(coefficients, fft_length=[height, width]), (0, 2, 3, 1))
        return decorrelated_to_image(decorrelated, recorrelation, mean, values_range)
