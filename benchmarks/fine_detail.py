"""Fine detail at full size: one setting of `maco`, its fine-band kurtosis per band, and the
quality figures, on a few classes at 512 px (issue 35's probe).

Run: python -m benchmarks.fine_detail NAME '{"crop_size": [0.1, 0.5]}' [--classes 323 954 130 980]
     python -m benchmarks.fine_detail NAME '{}' --spectrum-scale 0.5   (the photos' spectrum at half size)
     python -m benchmarks.fine_detail --picture NAME NAME ...   (results/fine_detail.jpg)

NAME labels the row. Renders the classes of EfficientNet-Lite0 at the given `maco` settings
(seed 0), and appends to results/fine_detail.jsonl: the median fine-band kurtosis (the
benchmark's figure), the kurtosis of four octave bands of the luma (Gaussian differences of
sigma 0-1, 1-2, 2-4 and 4-8 pixels: is only the finest band noise-like, or the whole image?),
each band's energy, the quality figures of `_shared.scoring.score` and the seconds. The images
go to results/parts/fine_detail_NAME.npz (not committed) to be looked at full size.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from scipy.ndimage import gaussian_filter  # noqa: E402

from xplique_maco import Neuron, compute_spectrum, maco  # noqa: E402
from xplique_maco.metrics import offline_photos  # noqa: E402

from ._shared.models import load  # noqa: E402
from ._shared.results import PARTS, RESULTS  # noqa: E402
from ._shared.scoring import photo_statistics, score  # noqa: E402

CLASSES = [323, 954, 130, 980]  # monarch, banana, flamingo, volcano
_LUMA = np.array([0.299, 0.587, 0.114])


def octave_bands(images: np.ndarray) -> dict:
    """Median kurtosis and energy of each octave band of the images' luma (module docstring)."""
    kurtosis, energy = [], []
    for image in images:
        luma, rows = np.asarray(image, np.float64) @ _LUMA, ([], [])
        finer = luma
        for sigma in (1, 2, 4, 8):
            coarser = gaussian_filter(luma, sigma, mode="reflect")
            band = finer - coarser
            band = band - band.mean()
            rows[0].append(float(np.mean(band**4) / np.mean(band**2) ** 2))
            rows[1].append(float(np.mean(band**2)))
            finer = coarser
        kurtosis.append(rows[0])
        energy.append(rows[1])
    return {
        "band_kurtosis": np.median(kurtosis, axis=0).round(2).tolist(),
        "band_energy": [float(f"{e:.3g}") for e in np.median(energy, axis=0)],
    }


def photos_spectrum(scale: float):
    """The spectrum of the offline photos shrunk by `scale` (antialiased), at the largest power
    of two that fits the smallest of them."""
    import cv2

    photos = [np.asarray(p, np.float32) for p in offline_photos()]
    small = [cv2.resize(p, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) for p in photos]
    side = 2 ** int(np.log2(min(min(p.shape[:2]) for p in small)))
    return compute_spectrum(small, size=side, values_range=(0, 255))


def picture(names: list[str], crop: int = 128) -> None:
    """results/fine_detail.jpg: per setting, a row of the images shrunk to 200 px, then a row of
    the centre `crop` pixels of each at full size (enlarged, nearest), to judge the detail by eye."""
    import cv2

    rows = []
    for name in names:
        images = np.load(PARTS / f"fine_detail_{name}.npz")["images"]
        rows.append(
            np.concatenate([cv2.resize(i, (200, 200), interpolation=cv2.INTER_AREA) for i in images], 1)
        )
        top = (images.shape[1] - crop) // 2
        centre = np.concatenate([i[top : top + crop, top : top + crop] for i in images], 1)
        rows.append(cv2.resize(centre, None, fx=200 / crop, fy=200 / crop, interpolation=cv2.INTER_NEAREST))
    cv2.imwrite(
        str(RESULTS / "fine_detail.jpg"), np.concatenate(rows, 0)[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92]
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("name", nargs="?")
    parser.add_argument("settings", nargs="?", default="{}", help="maco keyword arguments as JSON")
    parser.add_argument("--classes", type=int, nargs="+", default=CLASSES)
    parser.add_argument("--spectrum-scale", type=float, default=None)
    parser.add_argument("--picture", nargs="+", metavar="NAME", help="the picture of these runs' images")
    args = parser.parse_args()
    if args.picture:
        picture(args.picture)
        return
    if args.name is None:
        parser.error("give a NAME and its settings, or --picture NAME ...")
    settings = json.loads(args.settings)
    if args.spectrum_scale is not None:
        settings["magnitude"] = photos_spectrum(args.spectrum_scale)
    source, judge = load("efficientnet_lite0"), load("mobilenet_v2")
    start = time.perf_counter()
    images = maco(Neuron(source, -1, args.classes), seed=0, verbose=0, **settings)[0].numpy()
    seconds = time.perf_counter() - start
    PARTS.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        PARTS / f"fine_detail_{args.name}.npz", images=(np.clip(images, 0, 1) * 255).astype(np.uint8)
    )
    figures = score(images, args.classes, source, judge, photo_statistics())
    row = {
        "name": args.name,
        "settings": {k: v for k, v in settings.items() if k != "magnitude"},
        "spectrum_scale": args.spectrum_scale,
        "classes": args.classes,
        "seconds": round(seconds, 1),
        **{k: round(v, 3) for k, v in figures.items()},
        **octave_bands(images),
    }
    with open(RESULTS / "fine_detail.jsonl", "a") as log:
        log.write(json.dumps(row) + "\n")
    print(json.dumps(row))


if __name__ == "__main__":
    main()
