"""The Fourier magnitude MACO imposes: the `Spectrum` value, the shipped natural-image one, resizing."""

from __future__ import annotations

import io
import numbers
from dataclasses import dataclass
from importlib import resources
from typing import NamedTuple

import numpy as np
import tensorflow as tf

_SHIPPED_FILE = "natural_spectrum.npz"


class SpectrumTensors(NamedTuple):
    """A spectrum inside the compiled step: magnitude (or scale) (C, H, W // 2 + 1), (C, C), (C,)."""

    magnitude: tf.Tensor
    recorrelation: tf.Tensor
    mean: tf.Tensor


@dataclass(frozen=True, eq=False)
class Spectrum:
    """Average Fourier magnitude of natural images, with the colour statistics to rebuild pixels.

    Images are modelled in decorrelated channels `d`, with pixels (in [0, 1] units)
    `x = d @ recorrelation.T + mean`. `magnitude[c]` is the average |rfft2d| of channel `c`
    of `d` for images of size `magnitude.shape[1:]` (as `(H, W // 2 + 1)`).

    Args:
        magnitude: (C, H, W // 2 + 1) non-negative array.
        mean: (C,) mean pixel value per image channel, in [0, 1] units.
        recorrelation: (C, C) matrix mapping decorrelated channels to image channels.
        width: The image width W (needed because W // 2 + 1 is the same for W and W + 1).
    """

    magnitude: np.ndarray
    mean: np.ndarray
    recorrelation: np.ndarray
    width: int

    def __post_init__(self):
        if isinstance(self.width, bool) or not isinstance(self.width, (int, np.integer)) or self.width < 2:
            raise ValueError(f"`width` must be an int >= 2, received {self.width!r}.")
        object.__setattr__(self, "width", int(self.width))
        magnitude = np.asarray(self.magnitude, np.float32)
        if magnitude.ndim != 3:
            raise ValueError(
                f"A magnitude must have shape (C, H, W // 2 + 1), received shape {magnitude.shape}."
            )
        channels, height, half_width = magnitude.shape
        if half_width != self.width // 2 + 1:
            raise ValueError(
                f"Magnitude width axis {half_width} does not match width {self.width} "
                f"(expected {self.width // 2 + 1})."
            )
        if height < 2 or self.width < 2:
            raise ValueError(f"A magnitude needs at least 2x2 frequencies, received {magnitude.shape}.")
        if not np.isfinite(magnitude).all() or (magnitude < 0).any():
            raise ValueError("A magnitude must be finite and non-negative (no NaN, inf or < 0).")
        magnitude = _symmetric_edge_columns(magnitude, self.width)
        mean = np.broadcast_to(np.asarray(self.mean, np.float32), (channels,)).copy()
        recorrelation = np.asarray(self.recorrelation, np.float32)
        if recorrelation.shape != (channels, channels):
            raise ValueError(
                f"`recorrelation` must have shape ({channels}, {channels}), received {recorrelation.shape}."
            )
        if not (np.isfinite(mean).all() and np.isfinite(recorrelation).all()):
            raise ValueError("Spectrum mean and recorrelation must be finite.")
        object.__setattr__(self, "magnitude", magnitude)
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "recorrelation", recorrelation)

    @property
    def channels(self) -> int:
        return self.magnitude.shape[0]

    @property
    def image_shape(self) -> tuple[int, int]:
        return (self.magnitude.shape[1], self.width)

    @classmethod
    def from_magnitude(cls, magnitude, width: int | None = None) -> Spectrum:
        """Wraps a bare (C, H, W // 2 + 1) magnitude of [0, 1]-scaled images, channel by channel.

        The mean is 0.5 and channels are not mixed. `width` defaults to the even width.
        """
        magnitude = np.asarray(magnitude, np.float32)
        if magnitude.ndim != 3:
            raise ValueError(
                f"A magnitude must have shape (C, H, W // 2 + 1), received shape {magnitude.shape}."
            )
        channels = magnitude.shape[0]
        width = 2 * (magnitude.shape[2] - 1) if width is None else width
        return cls(magnitude, np.full(channels, 0.5), np.eye(channels), width)

    def resized(self, height: int, width: int) -> Spectrum:
        """The same spectrum for images of another size.

        Natural images are close to scale invariant: the magnitude times the radial frequency
        varies slowly with frequency. That product is interpolated bilinearly on the (periodic)
        grid of frequencies in cycles per pixel, then divided back; the overall scale follows
        the number of pixels so pixel statistics are unchanged.
        """
        for name, value in (("height", height), ("width", width)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 2:
                raise ValueError(f"`{name}` must be an int >= 2, received {value!r}.")
        if (height, width) == self.image_shape:
            return self
        source_height, source_width = self.image_shape
        full = _full_spectrum(self.magnitude, source_width)
        radius = _radial_frequency(source_height, source_width)
        whitened = full * radius
        # The DC bin carries the image mean, not the power law: interpolate near 0 from the first ring.
        whitened[:, 0, 0] = 0.5 * (whitened[:, 1, 0] + whitened[:, 0, 1])
        fy = np.fft.fftfreq(height)[:, None]
        fx = np.fft.rfftfreq(width)[None, :]
        rows = np.broadcast_to(fy * source_height, (height, width // 2 + 1))
        cols = np.broadcast_to(fx * source_width, (height, width // 2 + 1))
        sampled = _bilinear_periodic(whitened, rows, cols)
        target_radius = np.sqrt(fy**2 + fx**2)
        target_radius[0, 0] = 1.0
        pixel_ratio = (height * width) / (source_height * source_width)
        magnitude = sampled / target_radius * np.sqrt(pixel_ratio)
        # The DC is a sum over pixels: it scales with their number.
        magnitude[:, 0, 0] = self.magnitude[:, 0, 0] * pixel_ratio
        return Spectrum(magnitude, self.mean, self.recorrelation, width)

    def tensors(self) -> SpectrumTensors:
        """The arrays the compiled step reads, as tensors."""
        return SpectrumTensors(
            tf.constant(self.magnitude), tf.constant(self.recorrelation), tf.constant(self.mean)
        )

    def save(self, path) -> None:
        """Writes the spectrum as a .npz file readable by `load_spectrum`."""
        np.savez_compressed(
            path,
            magnitude=self.magnitude,
            mean=self.mean,
            recorrelation=self.recorrelation,
            width=np.int64(self.width),
        )

    def __repr__(self) -> str:
        return f"Spectrum(channels={self.channels}, image_shape={self.image_shape})"


def _symmetric_edge_columns(magnitude: np.ndarray, width: int) -> np.ndarray:
    """Any real image has |X(-u, v)| = |X(u, v)| in the columns v that are their own mirror
    (0 and, for even widths, W / 2); averaging the two rows makes a magnitude realisable exactly."""
    height = magnitude.shape[1]
    mirrored_rows = (-np.arange(height)) % height
    columns = [0] + ([width // 2] if width % 2 == 0 else [])
    magnitude = magnitude.copy()
    magnitude[:, :, columns] = 0.5 * (magnitude[:, :, columns] + magnitude[:, mirrored_rows][:, :, columns])
    return magnitude


def _full_spectrum(half: np.ndarray, width: int) -> np.ndarray:
    """(C, H, W // 2 + 1) -> (C, H, W) using |X(-k)| = |X(k)|."""
    height = half.shape[1]
    cols = np.arange(width)
    mirrored = cols > width // 2
    rows = np.arange(height)
    full = half[:, :, np.minimum(cols, width - cols)].copy()
    full[:, :, mirrored] = half[:, (-rows) % height][:, :, width - cols[mirrored]]
    return full


def _radial_frequency(height: int, width: int) -> np.ndarray:
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.fftfreq(width)[None, :]
    return np.sqrt(fy**2 + fx**2)


def _bilinear_periodic(grid: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Samples (C, H, W) at fractional (rows, cols), wrapping around both axes."""
    height, width = grid.shape[1:]
    row0 = np.floor(rows).astype(int)
    col0 = np.floor(cols).astype(int)
    row_weight = rows - row0
    col_weight = cols - col0
    r0, r1 = row0 % height, (row0 + 1) % height
    c0, c1 = col0 % width, (col0 + 1) % width
    top = grid[:, r0, c0] * (1 - col_weight) + grid[:, r0, c1] * col_weight
    bottom = grid[:, r1, c0] * (1 - col_weight) + grid[:, r1, c1] * col_weight
    return top * (1 - row_weight) + bottom * row_weight


def load_spectrum(path) -> Spectrum:
    """Reads a spectrum written by `Spectrum.save` (a .npz file; pickled objects are refused).

    Args:
        path: File path or binary file object.

    Returns:
        The `Spectrum`.
    """
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError(f"Spectrum file {path!r} is not a .npz archive written by Spectrum.save.")
        with data:
            missing = {"magnitude", "mean", "recorrelation", "width"} - set(data.files)
            if missing:
                raise ValueError(f"Spectrum file {path!r} lacks arrays {sorted(missing)}.")
            width = data["width"]
            if width.shape != () or not np.issubdtype(width.dtype, np.integer):
                raise ValueError(f"Spectrum file {path!r} has a malformed width {width!r}.")
            return Spectrum(data["magnitude"], data["mean"], data["recorrelation"], int(width))
    except (OSError, EOFError) as error:
        raise ValueError(f"Cannot read spectrum file {path!r}: {error}") from None


def natural_spectrum(channels: int = 3) -> Spectrum:
    """The natural-image spectrum shipped with the package (see data/PROVENANCE.md).

    Args:
        channels: 3 gives the colour spectrum (decorrelated RGB); 1 the grayscale one; any other
            number repeats the grayscale spectrum on independent channels.

    Returns:
        A `Spectrum` at its reference size; `Spectrum.resized` adapts it.

    Example:
    >>> natural_spectrum(3).image_shape
    (256, 256)
    """
    if not isinstance(channels, numbers.Integral) or channels < 1:
        raise ValueError(f"`channels` must be a positive int, received {channels!r}.")
    payload = resources.files("xplique_maco.data").joinpath(_SHIPPED_FILE).read_bytes()
    with np.load(io.BytesIO(payload), allow_pickle=False) as data:
        if channels == 3:
            prefix = "rgb"
        else:
            prefix = "gray"
        magnitude = data[f"{prefix}_magnitude"]
        mean = data[f"{prefix}_mean"]
        recorrelation = data[f"{prefix}_recorrelation"]
        width = int(data["width"])
    if channels not in (1, 3):
        magnitude = np.repeat(magnitude, channels, axis=0)
        mean = np.repeat(mean, channels)
        recorrelation = float(recorrelation[0, 0]) * np.eye(channels)
    return Spectrum(magnitude, mean, recorrelation, width)
