"""A natural-image spectrum from your own photos: `compute_spectrum`."""

from __future__ import annotations

import numbers

import numpy as np

from .._config import checks
from .spectrum import Spectrum


def _periodic_component(image: np.ndarray) -> np.ndarray:
    """Removes the smooth part that makes an image's borders discontinuous (Moisan, 2011).

    Without it, the jump between opposite borders puts a bright cross on the frequency axes
    of every spectrum, which is an artefact of the FFT, not a property of the photo.
    """
    height, width = image.shape[:2]
    boundary = np.zeros_like(image)
    vertical_jump = image[-1] - image[0]
    boundary[0] += vertical_jump
    boundary[-1] -= vertical_jump
    horizontal_jump = image[:, -1] - image[:, 0]
    boundary[:, 0] += horizontal_jump
    boundary[:, -1] -= horizontal_jump
    fy = np.cos(2 * np.pi * np.arange(height) / height)[:, None]
    fx = np.cos(2 * np.pi * np.arange(width) / width)[None, :]
    denominator = 2 * fy + 2 * fx - 4
    denominator[0, 0] = 1.0
    spectrum = np.fft.fft2(boundary, axes=(0, 1))
    spectrum /= denominator[..., None]
    spectrum[0, 0] = 0.0
    smooth = np.real(np.fft.ifft2(spectrum, axes=(0, 1)))
    return image - smooth


def _iterate_images(images):
    """Yields float (H, W, C) arrays from an array, a list, or a tf.data.Dataset of images or batches."""
    if hasattr(images, "as_numpy_iterator"):
        images = images.as_numpy_iterator()
    elif isinstance(images, np.ndarray) and images.dtype != object:
        if images.ndim in (2, 3):
            images = [images]
        elif images.ndim != 4:
            raise ValueError(
                f"Images must be (H, W), (H, W, C) or batches (N, H, W, C); received shape {images.shape}."
            )
    for item in images:
        item = np.asarray(item, dtype=np.float64)
        if item.ndim == 4:
            yield from item
        elif item.ndim == 3:
            yield item
        elif item.ndim == 2:
            yield item[..., None]
        else:
            raise ValueError(
                f"Images must be (H, W), (H, W, C) or batches (N, H, W, C); received shape {item.shape}."
            )


def _crops(image: np.ndarray, size: int):
    """Square crops of side `size` on a half-overlapping grid, at native resolution."""
    height, width = image.shape[:2]
    tops = np.unique(np.linspace(0, height - size, max(1, 2 * height // size - 1)).astype(int))
    lefts = np.unique(np.linspace(0, width - size, max(1, 2 * width // size - 1)).astype(int))
    for top in tops:
        for left in lefts:
            yield image[top : top + size, left : left + size]


def compute_spectrum(
    images,
    size: int = 256,
    values_range: tuple[float, float] = (0.0, 1.0),
    decorrelate: bool = True,
) -> Spectrum:
    """Average Fourier magnitude of your own images, for `maco(..., magnitude=...)`.

    Pixel values are rescaled from `values_range` to [0, 1]; with `decorrelate` the channels are
    first rotated onto the principal axes of the pixel colours (for RGB: luminance and two
    colour-opponent channels), so the optimised phases produce natural colours. Each image is
    cut into half-overlapping square crops of side `size` at native resolution (images smaller
    than `size` are skipped), made periodic (Moisan's periodic-plus-smooth decomposition), and
    its magnitudes averaged together with their horizontal mirror.

    Args:
        images: An array (H, W), (H, W, C) or (N, H, W, C), a list of such arrays, or a
            `tf.data.Dataset` yielding images or batches. It is read twice.
        size: Side of the square spectrum in pixels.
        values_range: The range of the pixel values given.
        decorrelate: Whether to decorrelate the channels (otherwise each channel is kept).

    Returns:
        A `Spectrum` of shape (C, size, size // 2 + 1).

    Example:
    >>> from skimage import data
    >>> spectrum = compute_spectrum([data.astronaut(), data.coffee()], values_range=(0, 255))
    """
    if not isinstance(size, numbers.Integral) or size < 8:
        raise ValueError(f"`size` must be an int >= 8, received {size!r}.")
    low, high = checks.values_range(values_range)
    if not hasattr(images, "as_numpy_iterator") and iter(images) is images:
        images = list(images)  # a generator can be read only once; two passes are needed
    margin = 0.05 * (high - low)

    def scaled():
        for image in _iterate_images(images):
            if image.size and (image.min() < low - margin or image.max() > high + margin):
                raise ValueError(
                    f"Pixel values span [{image.min():g}, {image.max():g}], outside `values_range` "
                    f"{values_range}; pass the range your images use (e.g. values_range=(0, 255) for uint8)."
                )
            yield (image - low) / (high - low)

    mean, recorrelation = _colour_statistics(scaled(), decorrelate)
    magnitude = _average_magnitude(scaled(), mean, np.linalg.inv(recorrelation), size)
    return Spectrum(magnitude, mean, recorrelation, size)


def _colour_statistics(images, decorrelate: bool) -> tuple[np.ndarray, np.ndarray]:
    """First pass: the mean pixel (C,) and the recorrelation (C, C) over all pixels of `images`."""
    count, total, outer, channels = 0, 0.0, 0.0, None
    for image in images:
        pixels = image.reshape(-1, image.shape[-1])
        if channels is None:
            channels = pixels.shape[1]
        elif pixels.shape[1] != channels:
            raise ValueError(
                f"All images must have the same number of channels ({channels}), "
                f"received one with {pixels.shape[1]}."
            )
        count += len(pixels)
        total = total + pixels.sum(axis=0)
        outer = outer + pixels.T @ pixels
    if count == 0:
        raise ValueError("`images` is empty: at least one image is needed to compute a spectrum.")
    mean = total / count
    covariance = outer / count - np.outer(mean, mean)
    if not decorrelate:
        return mean, np.diag(np.sqrt(np.maximum(np.diag(covariance), 1e-12)))
    variances, axes = np.linalg.eigh(covariance)
    order = np.argsort(variances)[::-1]
    variances = np.maximum(variances[order], 1e-12)
    axes = axes[:, order]
    # Fix each axis's sign so the first component is brightness, not darkness.
    axes = axes * np.where(axes.sum(axis=0) < 0, -1.0, 1.0)
    return mean, axes * np.sqrt(variances)


def _average_magnitude(images, mean: np.ndarray, decorrelation: np.ndarray, size: int) -> np.ndarray:
    """Second pass: the average magnitude (C, size, size // 2 + 1) of the decorrelated, periodic
    crops of `images` and of their mirror images."""
    accumulated, crops = 0.0, 0
    for image in images:
        if min(image.shape[:2]) < size:
            continue
        decorrelated = (image - mean) @ decorrelation.T
        for crop in _crops(decorrelated, size):
            periodic = _periodic_component(crop)
            magnitude = np.abs(np.fft.rfft2(periodic, axes=(0, 1)))
            mirrored = np.abs(np.fft.rfft2(periodic[:, ::-1], axes=(0, 1)))
            accumulated = accumulated + magnitude + mirrored
            crops += 2
    if crops == 0:
        raise ValueError(
            f"No image is at least {size}x{size} pixels; pass larger images or a smaller `size`."
        )
    return np.transpose(accumulated / crops, (2, 0, 1))
