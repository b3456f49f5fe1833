"""Photos as the start and the magnitude of the images: the parametrisation of feature accentuation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from .parametrization import MagnitudeConstrained, self_conjugate_masks
from .spectrum import SpectrumTensors, natural_spectrum

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
    mirrored_rows, self_conjugate_rows, edge_columns = self_conjugate_masks(height, width)
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
    _, self_conjugate_rows, edge_columns = self_conjugate_masks(height, width)
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
