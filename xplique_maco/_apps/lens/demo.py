"""The lens demo's images: the photos that ship with scikit-image, scikit-learn and matplotlib, each
in the folder of the class EfficientNet-Lite0 sees in it (one photo per class is not a dataset: the
demo shows the tool, not what a model learned)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ..._config.files import atomic_write
from ..._evaluation.photos import named_offline_photos
from .concepts import whole_images


def sorted_photos(model, folder: Path, classes) -> Path:
    """Writes each offline photo as `folder/<its top-1 class index>/<name>.png` (a photo already
    there is kept as it is); returns `folder`."""
    from PIL import Image

    photos = named_offline_photos()
    size = tuple(side or 224 for side in model.inputs[0].shape[1:3])
    seen = whole_images([photo / 255.0 for photo in photos.values()], size)
    top = np.argmax(np.asarray(model(seen, training=False)), axis=1)
    for (name, photo), index in zip(photos.items(), top, strict=True):
        path = Path(folder) / str(int(index)) / f"{name}.png"
        if path.exists():
            continue
        buffer = io.BytesIO()
        Image.fromarray(photo).save(buffer, format="PNG")
        atomic_write(path, buffer.getvalue())
        print(f"{name}: {classes[int(index)]} ({int(index)})", flush=True)
    return Path(folder)
