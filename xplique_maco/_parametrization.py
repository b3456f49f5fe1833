"""Phase -> image: a fixed Fourier magnitude, the optimised phase, colour recorrelation, value range."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from ._spectrum import Spectrum, SpectrumTensors, natural_spectrum


def _self_conjugate_masks(height: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
    mirrored_rows, self_conjugate_rows, edge_columns = _self_conjugate_masks(height, width)
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


# Photo values this close to an end of the value range (as a fraction of it) are moved inside:
# the squash reaches the ends only at infinity.
_SQUASH_MARGIN = 1e-3


def image_to_decorrelated(images: np.ndarray, recorrelation, mean, values_range) -> np.ndarray:
    """The inverse of `decorrelated_to_image`: (N, H, W, C) pixels in `values_range` -> the
    decorrelated channels (N, H, W, C) that render them (float64)."""
    low, high = values_range
    unit = np.clip((np.asarray(images, np.float64) - low) / (high - low), _SQUASH_MARGIN, 1 - _SQUASH_MARGIN)
    pixels = 0.5 + np.log(unit / (1.0 - unit)) / 4.0
    return (pixels - np.asarray(mean, np.float64)) @ np.linalg.inv(np.asarray(recorrelation, np.float64)).T


def _realisable_phase(phase: np.ndarray, width: int) -> np.ndarray:
    """The phases of a real image's rfft written as `hermitian_phase` reads them: in the columns
    that are their own mirror, row -u holds exactly minus row u (np.angle may give pi for both)."""
    height = phase.shape[-2]
    mirrored_rows, self_conjugate_rows, edge_columns = _self_conjugate_masks(height, width)
    lower = np.arange(height) > mirrored_rows  # rows whose mirror comes first
    phase = phase.copy()
    for column in np.flatnonzero(edge_columns):
        rows = np.flatnonzero(lower & ~self_conjugate_rows)
        phase[..., rows, column] = -phase[..., mirrored_rows[rows], column]
    return phase


@dataclass(frozen=True, eq=False)
class PhotoSeeds:
    """Each item's own Fourier magnitude and phase, read from a photo (`PhotoSeeded` keeps the
    first and starts from the second), with the colour statistics that rebuild its pixels.

    Attributes:
        magnitude: (N, C, H, W // 2 + 1) magnitudes of the photos' decorrelated channels; at
            the (up to four) real frequencies, 0 and Nyquist, their signed values.
        phase: (N, C, H, W // 2 + 1) their phases.
        recorrelation: (C, C) decorrelated channels -> image channels (the natural spectrum's).
        mean: (C,) mean pixel value per image channel, in [0, 1] units.
        width: The image width W.
    """

    magnitude: np.ndarray
    phase: np.ndarray
    recorrelation: np.ndarray
    mean: np.ndarray
    width: int

    @classmethod
    def from_photos(cls, photos: np.ndarray, values_range: tuple[float, float]) -> PhotoSeeds:
        """The seeds of photos (N, H, W, C) in `values_range`, decorrelated with the colour
        statistics of the shipped natural spectrum of C channels."""
        colours = natural_spectrum(photos.shape[-1])
        decorrelated = image_to_decorrelated(photos, colours.recorrelation, colours.mean, values_range)
        coefficients = np.transpose(np.fft.rfft2(decorrelated, axes=(1, 2)), (0, 3, 1, 2))
        width = photos.shape[2]
        real = _real_frequencies(photos.shape[1], width)
        return cls(
            magnitude=np.where(real, coefficients.real, np.abs(coefficients)).astype(np.float32),
            phase=_realisable_phase(np.angle(coefficients), width).astype(np.float32),
            recorrelation=colours.recorrelation,
            mean=colours.mean,
            width=width,
        )

    @property
    def channels(self) -> int:
        return self.magnitude.shape[1]

    @property
    def image_shape(self) -> tuple[int, int]:
        return (self.magnitude.shape[2], self.width)

    def tensors(self, positions) -> SpectrumTensors:
        """The magnitudes of the items at batch `positions`, with the colour statistics."""
        return SpectrumTensors(
            tf.constant(self.magnitude[positions]), tf.constant(self.recorrelation), tf.constant(self.mean)
        )


def _real_frequencies(height: int, width: int) -> np.ndarray:
    """(H, W // 2 + 1) mask of the frequencies whose coefficient is real in any real image."""
    _, self_conjugate_rows, edge_columns = _self_conjugate_masks(height, width)
    return self_conjugate_rows[:, None] & edge_columns[None, :]


@dataclass(frozen=True)
class PhotoSeeded(MagnitudeConstrained):
    """MACO started from photos: each item's parameters are phases, starting from its photo's,
    and its magnitude stays its photo's, so every step renders an image of the photo's spectrum.

    Unlike `MagnitudeConstrained`, the real frequencies (the mean, and Nyquist for even sizes)
    keep their photo's value: a phase there would only scale them (magnitude times cosine),
    which would change the photo's mean colour and spectrum, not rearrange it.
    """

    def spectrum(self, magnitude, channels: int, image_shape: tuple[int, int]) -> PhotoSeeds:
        """`magnitude` is the `PhotoSeeds` of the run, at `image_shape` with the model's channels."""
        if magnitude.channels != channels or magnitude.image_shape != tuple(image_shape):
            raise ValueError(
                f"The photos are {magnitude.image_shape} with {magnitude.channels} channels, but the run "
                f"renders {tuple(image_shape)} images for a model of {channels} channels."
            )
        return magnitude

    def initial(self, spectrum, item_seeds: tf.Tensor, positions, image_shape: tuple[int, int]) -> tf.Tensor:
        return tf.constant(spectrum.phase[positions])

    def tensors(self, spectrum, positions) -> SpectrumTensors:
        return spectrum.tensors(positions)

    def to_image(self, params, spectrum, values_range, width: int) -> tf.Tensor:
        # Phase 0 at the real frequencies: their signed magnitude is their value.
        phase = tf.where(_real_frequencies(params.shape[-2], width), 0.0, params)
        return super().to_image(phase, spectrum, values_range, width)
