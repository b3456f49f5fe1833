"""Seeing results: images with their transparency as alpha, grids, and PNG files."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

from .._config import checks
from .._config.files import atomic_write


def _numpy(array) -> np.ndarray:
    return array.numpy() if isinstance(array, tf.Tensor) else np.asarray(array)


def to_uint8(images, values_range: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """Maps images from `values_range` to uint8 0..255 (values outside are clipped).

    Example:
    >>> to_uint8(images, values_range=(-1, 1))
    """
    low, high = checks.values_range(values_range)
    scaled = (_numpy(images).astype(np.float64) - low) / (high - low)
    return np.round(np.clip(scaled, 0.0, 1.0) * 255.0).astype(np.uint8)


def transparency_to_alpha(transparency, percentile: float = 99.0) -> np.ndarray:
    """Scales a transparency map (H, W[, 1]) or batch to alpha in [0, 1], robust to outliers.

    Each map is divided by its own `percentile`-th percentile and clipped, so a few very bright
    pixels do not make the rest invisible.
    """
    maps = np.nan_to_num(_numpy(transparency).astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if maps.shape[-1] == 1:
        maps = maps[..., 0]
    flat = maps.reshape((-1, *maps.shape[-2:])) if maps.ndim >= 2 else maps
    ceilings = np.percentile(flat.reshape(len(flat), -1), percentile, axis=1)
    ceilings = np.where(ceilings > 0, ceilings, 1.0)
    alpha = np.clip(flat / ceilings[:, None, None], 0.0, 1.0)
    return alpha.reshape(maps.shape)


def save_image(path, image, values_range: tuple[float, float] = (0.0, 1.0)) -> Path:
    """Saves one image (H, W, C) with C in {1, 3} as PNG; returns the path."""
    pixels = to_uint8(image, values_range)
    if pixels.ndim != 3 or pixels.shape[-1] not in (1, 3, 4):
        raise ValueError(f"Expected one image (H, W, C) with C in (1, 3, 4), received shape {pixels.shape}.")
    path = Path(path)
    atomic_write(path, tf.io.encode_png(pixels).numpy())
    return path


def save_rgba(path, image, transparency, values_range=(0.0, 1.0), percentile: float = 99.0) -> Path:
    """Saves an image with its transparency as the alpha channel (RGBA PNG); returns the path."""
    pixels = to_uint8(image, values_range)
    if pixels.shape[-1] == 1:
        pixels = np.repeat(pixels, 3, axis=-1)
    alpha = np.round(transparency_to_alpha(transparency, percentile) * 255).astype(np.uint8)
    if alpha.shape != pixels.shape[:2]:
        raise ValueError(f"Transparency shape {alpha.shape} does not match image shape {pixels.shape[:2]}.")
    path = Path(path)
    atomic_write(path, tf.io.encode_png(np.dstack([pixels, alpha])).numpy())
    return path


def write_unit(folder: Path, stem: str, image, transparency, values_range) -> dict[str, str]:
    """Writes one objective's three PNGs into `folder`: `<stem>.png` (the image),
    `<stem>_transparency.png` (the map scaled to its 99th percentile) and `<stem>_rgba.png` (the
    image with the map as alpha); returns their names by kind ("image", "transparency", "rgba")."""
    folder = Path(folder)
    files = {"image": f"{stem}.png", "transparency": f"{stem}_transparency.png", "rgba": f"{stem}_rgba.png"}
    save_image(folder / files["image"], image, values_range)
    save_image(folder / files["transparency"], transparency_to_alpha(transparency)[..., None])
    save_rgba(folder / files["rgba"], image, transparency, values_range)
    return files


def save_jpeg(path, image, values_range=(0.0, 1.0), side: int = 128) -> Path:
    """Saves one image (H, W, C) as a JPEG no larger than `side` pixels (a crop shown as a
    thumbnail); returns the path."""
    from PIL import Image

    pixels = to_uint8(image, values_range)
    picture = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels[..., :3])
    picture.thumbnail((side, side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=88)
    path = Path(path)
    atomic_write(path, buffer.getvalue())
    return path


def _stretch(pixels: np.ndarray, contrast) -> np.ndarray:
    """Robust contrast for display: the given low and high percentiles map to 0 and 1."""
    if contrast is None:
        return pixels
    low, high = np.percentile(pixels, contrast)
    return np.clip((pixels - low) / (high - low), 0.0, 1.0) if high > low else pixels


def _display(image, transparency, values_range, percentile, show_alpha: bool, contrast=None) -> np.ndarray:
    pixels = _stretch(to_uint8(image, values_range).astype(np.float64) / 255.0, contrast)
    if pixels.ndim != 3 or pixels.shape[-1] not in (1, 3):
        raise ValueError(f"Expected one image (H, W, C) with C in (1, 3), received shape {pixels.shape}.")
    if transparency is not None and np.shape(transparency)[:2] != pixels.shape[:2]:
        raise ValueError(
            f"Transparency shape {np.shape(transparency)} does not match image shape {pixels.shape}."
        )
    if pixels.shape[-1] == 1:
        pixels = np.repeat(pixels, 3, axis=-1)
    if transparency is None or not show_alpha:
        return pixels
    return np.dstack([pixels, transparency_to_alpha(transparency, percentile)])


def plot_maco(
    image,
    transparency=None,
    values_range: tuple[float, float] = (0.0, 1.0),
    percentile: float = 99.0,
    show: str = "alpha",
    title: str | None = None,
    ax=None,
    contrast: tuple[float, float] | None = (0.5, 99.5),
):
    """Shows a visualisation with its transparency as alpha (or beside it); returns the axes.

    Args:
        image: (H, W, C) image, or (1, H, W, C).
        transparency: (H, W, 1) map, or None.
        values_range: The range of the image values.
        percentile: Alpha is the map divided by this percentile of itself, clipped to 1.
        show: "alpha" (image with alpha), "image" (image alone) or "both" (image, then the map).
        title: Optional title.
        ax: Matplotlib axes to draw in (for "both", a pair); created if None.
        contrast: Percentiles of the image shown as black and white (robust to a few extreme
            pixels; MACO images have a natural, modest contrast); None shows values as they are.
            Only the display changes, never the image.

    Returns:
        The matplotlib axes (a list of two for "both"; for a batch, one axes per image, in a grid).

    Example:
    >>> images, transparencies = maco(objective)
    >>> plot_maco(images[0], transparencies[0])
    """
    import matplotlib.pyplot as plt

    if show not in ("alpha", "image", "both"):
        raise ValueError(f"`show` must be 'alpha', 'image' or 'both', received {show!r}.")
    image = _numpy(image)
    if image.ndim == 4 and len(image) > 1:
        if ax is not None:
            raise ValueError(f"A batch of {len(image)} images needs its own figure: pass ax=None.")
        figure = plot_maco_grid(
            image,
            transparency,
            values_range=values_range,
            percentile=percentile,
            show=show,
            contrast=contrast,
        )
        return list(figure.axes[: len(image)])
    if image.ndim == 4:
        image = image[0]
    if transparency is not None:
        transparency = _numpy(transparency)
        transparency = transparency[0] if transparency.ndim == 4 else transparency
    if show == "both":
        if transparency is None:
            raise ValueError("show='both' needs a transparency map.")
        axes = ax if ax is not None else plt.subplots(1, 2, figsize=(8, 4))[1]
        axes[0].imshow(_display(image, None, values_range, percentile, False, contrast))
        axes[1].imshow(transparency_to_alpha(transparency, percentile), cmap="magma", vmin=0, vmax=1)
        for axis in axes:
            axis.axis("off")
        if title:
            axes[0].set_title(title)
        return list(axes)
    axis = ax if ax is not None else plt.subplots(figsize=(4, 4))[1]
    axis.imshow(_display(image, transparency, values_range, percentile, show == "alpha", contrast))
    axis.axis("off")
    if title:
        axis.set_title(title)
    return axis


def plot_maco_grid(
    images,
    transparencies=None,
    titles: Sequence[str] | None = None,
    columns: int = 4,
    values_range: tuple[float, float] = (0.0, 1.0),
    percentile: float = 99.0,
    show: str = "alpha",
    size: float = 3.0,
    contrast: tuple[float, float] | None = (0.5, 99.5),
):
    """Shows a batch of visualisations in a grid with optional titles; returns the figure.

    `show` is as in `plot_maco`: with "both", each image takes two cells of its row (the image,
    then its transparency map), so a row holds `columns` images in twice as many cells.

    Example:
    >>> figure = plot_maco_grid(images, transparencies, titles=[classes[i] for i in indices])
    >>> figure.savefig("grid.png")
    """
    import matplotlib.pyplot as plt

    if show not in ("alpha", "image", "both"):
        raise ValueError(f"`show` must be 'alpha', 'image' or 'both', received {show!r}.")
    images = _numpy(images)
    count = len(images)
    if show == "both" and transparencies is None:
        raise ValueError("show='both' needs the transparency maps.")
    if count == 0:
        raise ValueError("plot_maco_grid needs at least one image.")
    if titles is not None and len(titles) != count:
        raise ValueError(f"Got {len(titles)} titles for {count} images.")
    if transparencies is not None and len(transparencies) != count:
        raise ValueError(f"Got {len(transparencies)} transparencies for {count} images.")
    columns = max(1, min(columns, count))
    rows, cells = -(-count // columns), 2 if show == "both" else 1
    figure, axes = plt.subplots(
        rows, columns * cells, figsize=(size * columns * cells, size * rows + 0.3 * rows), squeeze=False
    )
    for axis in axes.flat[count * cells :]:
        axis.axis("off")
    for position in range(count):
        first = position * cells
        cell = list(axes.flat[first : first + cells]) if cells == 2 else axes.flat[first]
        mask = None if transparencies is None else transparencies[position]
        title = None if titles is None else titles[position]
        plot_maco(images[position], mask, values_range, percentile, show, title, cell, contrast)
    figure.tight_layout()
    return figure
