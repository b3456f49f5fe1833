"""A lens's folder: each finished class's files (MACO images, top crops, concept vectors) and its
manifest line, written so that a kill leaves no half-written file and a rerun skips it."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ..._config.files import atomic_write
from ..._config.manifest import append_entry
from ..._outputs.plots import save_jpeg, write_unit

CLASSES = "classes"
CROP_SIDE = 128  # the top crops are kept this small: the page shows them as thumbnails


def class_folder(index: int) -> str:
    return f"{CLASSES}/{index:04d}"


def write_class(output: Path, analysis, settings: dict, manifest: Path, position: int, values_range) -> dict:
    """Writes one class's files (`analysis`, a `ClassConcepts`), then appends its manifest line (returned)."""
    folder = class_folder(analysis.index)
    files = {
        kind: f"{folder}/{name}"
        for kind, name in write_unit(
            output / folder, "class", analysis.image, analysis.transparency, values_range
        ).items()
    }
    files["vectors"] = f"{folder}/concepts.npy"
    atomic_write(output / files["vectors"], _npy(analysis.vectors))
    concepts = []
    for rank in range(len(analysis.vectors)):
        images = write_unit(
            output / folder,
            f"concept_{rank}",
            analysis.images[rank],
            analysis.transparencies[rank],
            values_range,
        )
        crops = [
            _crop(output, f"{folder}/crops/{rank}_{number}.jpg", crop, values_range)
            for number, crop in enumerate(analysis.crops[rank])
        ]
        concept_files = {kind: f"{folder}/{name}" for kind, name in images.items()}
        files.update({f"concept_{rank}_{kind}": name for kind, name in concept_files.items()})
        files.update({f"concept_{rank}_crop_{number}": name for number, name in enumerate(crops)})
        concepts.append(
            {
                "rank": rank,
                "importance": float(analysis.importance[rank]),
                "share": float(analysis.share[rank]),
                "value": float(analysis.values[rank]),
                "files": concept_files,
                "crops": crops,
                "crop_scores": [float(score) for score in analysis.crop_scores[rank]],
            }
        )
    entry = {
        "kind": "lens",
        "index": analysis.index,
        "label": analysis.label,
        "position": position,
        "settings": settings,
        "seed": settings["seed"],
        "images": analysis.nb_images,
        "crops": analysis.nb_crops,
        "value": float(analysis.value),
        "files": files,
        "concepts": concepts,
    }
    append_entry(manifest, entry)
    return entry


def _crop(output: Path, name: str, crop: np.ndarray, values_range) -> str:
    save_jpeg(output / name, crop, values_range, CROP_SIDE)
    return name


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array, np.float32), allow_pickle=False)
    return buffer.getvalue()


def read_vectors(output: Path, entry: dict) -> np.ndarray:
    """A finished class's concept vectors (K, C), in rank order (no pickles)."""
    return np.load(output / entry["files"]["vectors"], allow_pickle=False)
