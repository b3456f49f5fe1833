"""Computes xplique_maco/data/natural_spectrum.npz from photos that install offline.

Run: python scripts/make_natural_spectrum.py   (needs scikit-image, scikit-learn, matplotlib)

RGB: the 9 colour photos named in PHOTOS_RGB. Grayscale: the grayscale photos in PHOTOS_GRAY
plus the luma (0.299 R + 0.587 G + 0.114 B) of the colour photos.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import matplotlib.cbook
import matplotlib.pyplot as plt
import numpy as np
import skimage.data
from sklearn.datasets import load_sample_images

from xplique_maco import compute_spectrum

SIZE = 256
OUTPUT = Path(__file__).resolve().parents[1] / "xplique_maco" / "data" / "natural_spectrum.npz"
PHOTOS_GRAY = ["camera", "brick", "grass", "gravel", "moon", "coins", "clock"]


def rgb_photos() -> dict[str, np.ndarray]:
    photos = {name: getattr(skimage.data, name)() for name in ("astronaut", "chelsea", "coffee", "rocket")}
    left, right, _ = skimage.data.stereo_motorcycle()
    photos["stereo_motorcycle_left"], photos["stereo_motorcycle_right"] = left, right
    china, flower = load_sample_images().images
    photos["sklearn_china"], photos["sklearn_flower"] = china, flower
    photos["matplotlib_grace_hopper"] = plt.imread(matplotlib.cbook.get_sample_data("grace_hopper.jpg"))
    return photos


def main() -> None:
    colour = rgb_photos()
    gray = {name: getattr(skimage.data, name)() for name in PHOTOS_GRAY}
    luma = {f"luma_{name}": image @ np.array([0.299, 0.587, 0.114]) for name, image in colour.items()}
    rgb = compute_spectrum(list(colour.values()), size=SIZE, values_range=(0, 255))
    grayscale = compute_spectrum(list(gray.values()) + list(luma.values()), size=SIZE, values_range=(0, 255))
    np.savez_compressed(
        OUTPUT,
        rgb_magnitude=rgb.magnitude,
        rgb_mean=rgb.mean,
        rgb_recorrelation=rgb.recorrelation,
        gray_magnitude=grayscale.magnitude,
        gray_mean=grayscale.mean,
        gray_recorrelation=grayscale.recorrelation,
        width=np.int64(SIZE),
    )
    print(f"wrote {OUTPUT} ({OUTPUT.stat().st_size} bytes)")
    print("sha256", hashlib.sha256(OUTPUT.read_bytes()).hexdigest())
    for name, image in {**colour, **gray}.items():
        print(f"  {name}: {image.shape}")
    print("rgb mean", rgb.mean.round(4), "recorrelation\n", rgb.recorrelation.round(4))
    print("gray mean", grayscale.mean.round(4), "std", grayscale.recorrelation.round(4))


if __name__ == "__main__":
    main()
