"""Natural images that need no download: the photos that ship with scikit-image, scikit-learn and
matplotlib, and random crops of photos as a pool of natural images."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from .._config import checks


def offline_photos() -> list[np.ndarray]:
    """The seven colour photos that install with scikit-image, scikit-learn and matplotlib, as uint8 RGB.

    skimage.data astronaut, chelsea, coffee and rocket; sklearn's sample images china and
    flower; matplotlib's grace_hopper.jpg. A natural pool for `random_crops`, needing no download.

    Example:
    >>> pool = random_crops(offline_photos(), count=256, size=(224, 224), seed=0)
    """
    return list(named_offline_photos(motorcycle=False).values())


def named_offline_photos(motorcycle: bool = True) -> dict[str, np.ndarray]:
    """The photos that install with scikit-image, scikit-learn and matplotlib, by name, as uint8
    RGB: those of `offline_photos`, and with `motorcycle` the left view of skimage's
    stereo_motorcycle."""
    try:
        import matplotlib.cbook
        import matplotlib.pyplot as plt
        from skimage import data
        from sklearn.datasets import load_sample_images
    except ImportError as error:
        raise ImportError(
            f"the offline photos need scikit-image, scikit-learn and matplotlib ({error}); "
            "install them with `pip install scikit-image scikit-learn matplotlib`."
        ) from error
    china, flower = load_sample_images().images
    photos = {
        "astronaut": data.astronaut(),
        "chelsea": data.chelsea(),
        "coffee": data.coffee(),
        "rocket": data.rocket(),
        "china": china,
        "flower": flower,
        "grace_hopper": plt.imread(matplotlib.cbook.get_sample_data("grace_hopper.jpg")),
    }
    if motorcycle:
        photos["motorcycle"] = data.stereo_motorcycle()[0]
    return {name: np.asarray(photo, np.uint8)[..., :3] for name, photo in photos.items()}


def _photo_in_unit_range(photo, position: int) -> np.ndarray:
    array = np.asarray(photo)
    if array.ndim != 3 or array.shape[-1] not in (1, 3) or min(array.shape[:2]) < 2:
        raise ValueError(
            f"`photos[{position}]` must be an image (H, W, C) with C in (1, 3) and H, W >= 2, "
            f"received shape {array.shape}."
        )
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    array = array.astype(np.float32)
    if not np.isfinite(array).all() or array.min() < 0.0 or array.max() > 1.0:
        raise ValueError(
            f"`photos[{position}]` is {np.asarray(photo).dtype} with values outside [0, 1]; "
            "pass uint8 (0..255) or floats in [0, 1]."
        )
    return array


def random_crops(
    photos: Sequence,
    count: int = 256,
    size: tuple[int, int] = (224, 224),
    seed: int = 0,
    scale: tuple[float, float] = (0.2, 0.6),
) -> np.ndarray:
    """Random square crops of photos, resized with antialiasing: a pool of natural images.

    Each crop takes a photo at random (each photo equally often on average), a side of a
    uniform fraction `scale` of the photo's shorter side, a uniform position, and is resized
    to `size`. The same arguments give the same crops.

    Args:
        photos: Images (H, W, C), uint8 in 0..255 or floats in [0, 1], all with the same C.
        count: Number of crops.
        size: (height, width) of the crops.
        seed: Seed of the crop positions.
        scale: (smallest, largest) side of a crop as a fraction of the photo's shorter side.

    Returns:
        (count, height, width, C) float32 in [0, 1].

    Example:
    >>> pool = random_crops(offline_photos(), count=256, size=(224, 224), seed=0)
    """
    count = checks.positive_int("count", count)
    size = checks.pair_of_ints("size", size)
    seed = checks.seed(seed)
    if isinstance(photos, np.ndarray) and photos.ndim == 3:
        raise ValueError("`photos` must be a sequence of images; wrap a single image in a list.")
    if len(photos) == 0:
        raise ValueError("`photos` must hold at least one image, received none.")
    try:
        smallest, largest = (float(value) for value in scale)
    except (TypeError, ValueError):
        smallest = largest = float("nan")
    if not 0.0 < smallest <= largest <= 1.0:
        raise ValueError(f"`scale` must be a pair 0 < smallest <= largest <= 1, received {scale!r}.")
    images = [_photo_in_unit_range(photo, position) for position, photo in enumerate(photos)]
    if len({image.shape[-1] for image in images}) > 1:
        raise ValueError("`photos` must all have the same number of channels.")
    rng = np.random.default_rng(seed)
    crops = []
    for _ in range(count):
        photo = images[rng.integers(len(images))]
        height, width = photo.shape[:2]
        side = max(2, int(round(rng.uniform(smallest, largest) * min(height, width))))
        top, left = rng.integers(height - side + 1), rng.integers(width - side + 1)
        crop = photo[top : top + side, left : left + side]
        crops.append(tf.image.resize(crop, size, method="bilinear", antialias=True).numpy())
    return np.stack(crops).astype(np.float32)
