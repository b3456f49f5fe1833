"""How the quality benchmarks score a set of images: top-1 and confidence on the source model,
top-1 and top-5 of the judge on the images and on their low-pass versions, how photo-like
their spectra are, and whether their finest detail is edges or noise (fine-band kurtosis)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from xplique_maco.metrics import fine_detail, spectrum_statistics, target_confidence, transferability

LOW_PASS_SIDE = 64
# The photos' fine detail is measured at the size the benchmark renders at.
FINE_DETAIL_SIDE = 512


def photo_statistics() -> dict:
    """The range of the high-frequency share, of the spectral slope and of the fine-band kurtosis
    (at `FINE_DETAIL_SIDE` pixels, resized antialiased) over offline photos."""
    import matplotlib.cbook
    import matplotlib.pyplot as plt
    from skimage import data
    from sklearn.datasets import load_sample_images

    photos = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket(), *data.stereo_motorcycle()[:2]]
    photos += [*load_sample_images().images, plt.imread(matplotlib.cbook.get_sample_data("grace_hopper.jpg"))]
    shares = [float(spectrum_statistics(p[None] / 255.0)["high_frequency_share"][0]) for p in photos]
    slopes = [float(spectrum_statistics(p[None] / 255.0)["slope"][0]) for p in photos]
    side = (FINE_DETAIL_SIDE, FINE_DETAIL_SIDE)
    fine = [
        float(fine_detail(tf.image.resize(p[None] / 255.0, side, antialias=True).numpy())[0]) for p in photos
    ]
    return {
        "share_min": min(shares),
        "share_max": max(shares),
        "slope_min": min(slopes),
        "slope_max": max(slopes),
        "fine_min": min(fine),
        "fine_max": max(fine),
    }


def low_pass(images, side: int = LOW_PASS_SIDE) -> np.ndarray:
    """The images shrunk to `side` pixels (antialiased) and back: only what reads at a glance."""
    size = images.shape[1:3]
    small = tf.image.resize(images, (side, side), antialias=True)
    return tf.image.resize(small, size, method="bilinear").numpy()


def score(images, labels, source, judge, photos) -> dict:
    """Everything the quality table reports for one set of images."""
    logits = source(tf.image.resize(images, (224, 224), antialias=True), training=False).numpy()
    stats = spectrum_statistics(images)
    shares = stats["high_frequency_share"]
    return {
        "source_top1": float(np.mean(np.argmax(logits, axis=1) == np.array(labels))),
        "source_confidence": float(np.mean(target_confidence(source, images, labels))),
        **{f"judge_{k}": v for k, v in transferability(images, labels, {"j": judge})["j"].items()},
        **{
            f"lowpass_{k}": v for k, v in transferability(low_pass(images), labels, {"j": judge})["j"].items()
        },
        "hf_share_median": float(np.median(shares)),
        "hf_share_min": float(shares.min()),
        "hf_share_max": float(shares.max()),
        "hf_in_photo_range": float(
            np.mean((shares >= photos["share_min"]) & (shares <= photos["share_max"]))
        ),
        "slope_median": float(np.median(stats["slope"])),
        **_fine_figures(fine_detail(images)),
    }


def _fine_figures(kurtosis: np.ndarray) -> dict:
    return {
        "fine_detail_median": float(np.median(kurtosis)),
        "fine_detail_min": float(kurtosis.min()),
        "fine_detail_max": float(kurtosis.max()),
    }
