"""Users' images, read as Keras reads them: a folder `root/<class>/*.jpg|png` grouped by class (as
`image_dataset_from_directory` reads it), arrays with labels, a `tf.data.Dataset` of (image, label),
or every image below a folder. No TensorFlow here: a dataset is only iterated.

A class folder is named by a class index of the model or by a label of its label list. Files are
read when their class is processed, so a 1,000-class folder never sits in memory at once. Real
folders are messy: grayscale, CMYK and palette images are converted to the model's channels (as
Keras's image loading does) and counted; unreadable and non-image files, and images with more
pixels than Pillow's safety limit (never decoded), are skipped by name with a warning.
"""

from __future__ import annotations

import difflib
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# What Keras's image_dataset_from_directory reads.
IMAGE_SUFFIXES = (".bmp", ".gif", ".jpeg", ".jpg", ".png")


@dataclass
class Summary:
    """What reading the images met: images converted from another mode, files skipped and why."""

    converted: Counter = field(default_factory=Counter)  # source mode -> count
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)

    def describe(self) -> str:
        parts = [f"{count} {mode} image(s) converted" for mode, count in sorted(self.converted.items())]
        if self.skipped:
            parts.append(f"{len(self.skipped)} file(s) skipped")
        return "; ".join(parts) or "every image read as it is"


@dataclass(frozen=True)
class ClassSource:
    """One class of the lens: its index in the model's output, its label, and where its images are.

    `files` (a folder's images, read on `load`) or `arrays` (images given in memory) is set.
    """

    index: int
    label: str
    files: tuple[Path, ...] = ()
    arrays: tuple[np.ndarray, ...] = ()

    @property
    def count(self) -> int:
        return len(self.files) or len(self.arrays)

    def load(self, channels: int, values_range: tuple[float, float], summary: Summary) -> list[np.ndarray]:
        """The class's images as float32 (H, W, channels) in `values_range`; skipped files are noted."""
        if self.arrays:
            return [np.asarray(image, np.float32) for image in self.arrays]
        low, high = values_range
        images = []
        for path in self.files:
            pixels = read_image(path, channels, summary)
            if pixels is not None:
                images.append(low + pixels.astype(np.float32) / 255.0 * (high - low))
        if not images:
            raise ValueError(
                f"No image of class {self.label!r} ({self.index}) could be read: "
                f"{', '.join(name for name, _ in summary.skipped[-3:])} ... were skipped."
            )
        return images


def read_image(path: Path, channels: int, summary: Summary) -> np.ndarray | None:
    """A file's pixels as uint8 (H, W, channels), converted as Keras's loading does; None (noted
    in `summary`) for a file that is not a readable image or holds too many pixels."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as picture:  # reads the header only: a bomb is refused here
                wanted = "L" if channels == 1 else "RGB"
                if picture.mode != wanted:
                    summary.converted[picture.mode] += 1
                pixels = np.asarray(picture.convert(wanted))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        summary.skipped.append(
            (str(path), "more pixels than Pillow's safety limit (a decompression bomb?), not decoded")
        )
        return None
    except (OSError, SyntaxError, ValueError) as error:
        summary.skipped.append((str(path), f"not a readable image ({type(error).__name__})"))
        return None
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if channels not in (1, 3):
        pixels = np.repeat(pixels[..., :1], channels, axis=-1)
    return pixels


def class_index(name: str, labels: Sequence[str] | None, count: int) -> int:
    """The class a folder name or label means: an index of the model's outputs, or a label of its
    label list; a clear error otherwise."""
    if name.isdigit():
        index = int(name)
        if index >= count:
            raise ValueError(
                f"Class {name!r} is not an output of the model, which has {count} classes (0 to {count - 1})."
            )
        return index
    if labels is not None and name in labels:
        return list(labels).index(name)
    if labels is None:
        raise ValueError(
            f"Class folder {name!r} is neither a class index nor a label: the model has no label list "
            "(pass `labels`, one per output), so name the folders by class index (0, 1, ...), or say "
            "that the folders sorted by name are in the model's class order (`folders_in_class_order`)."
        )
    close = difflib.get_close_matches(name, list(labels), n=3)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(
        f"Class {name!r} is not a label of the model.{hint} Name class folders by a label of its label "
        "list or a class index, or say that the folders sorted by name are in the model's class order "
        "(`folders_in_class_order`, as for ImageNet's WordNet-id folders)."
    )


def folder_classes(
    root, labels: Sequence[str] | None, count: int, in_class_order: bool = False
) -> list[ClassSource]:
    """The classes of a folder `root/<class>/<images>`, in the order of their class indices.

    With `in_class_order`, the folders sorted by name are classes 0, 1, 2, ... whatever their
    names (as `image_dataset_from_directory` numbers them: ImageNet's WordNet-id folders sort in
    its class order); there must be as many folders as classes.
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(
            f"No folder {str(root)!r}. Accepted: a folder with one subfolder of images per class."
        )
    folders = sorted(path for path in root.iterdir() if path.is_dir() and not path.name.startswith("."))
    if not folders:
        raise ValueError(f"{root} holds no class folder: put each class's images in root/<class>/.")
    if in_class_order and len(folders) != count:
        raise ValueError(
            f"{root} holds {len(folders)} class folders for a model of {count} classes: in class order, "
            "folder i (sorted by name) is class i, so there must be one folder per class."
        )
    classes, ignored = [], []
    for position, folder in enumerate(folders):
        files = sorted(path for path in folder.iterdir() if path.is_file() and not path.name.startswith("."))
        images = tuple(path for path in files if path.suffix.lower() in IMAGE_SUFFIXES)
        ignored += [str(path) for path in files if path.suffix.lower() not in IMAGE_SUFFIXES]
        if not images:
            raise ValueError(f"Class folder {folder} holds no image ({', '.join(IMAGE_SUFFIXES)}).")
        index = position if in_class_order else class_index(folder.name, labels, count)
        classes.append(ClassSource(index, _label(index, labels, folder.name), files=images))
    _check_distinct(classes)
    if ignored:
        shown = ", ".join(ignored[:5]) + (f", ... ({len(ignored)} in all)" if len(ignored) > 5 else "")
        warnings.warn(
            f"Skipped files that are not images ({', '.join(IMAGE_SUFFIXES)}): {shown}.", stacklevel=3
        )
    return sorted(classes, key=lambda source: source.index)


def array_classes(images, class_labels, labels: Sequence[str] | None, count: int) -> list[ClassSource]:
    """The classes of images (N, H, W, C) given with their class indices (N,)."""
    images, class_labels = np.asarray(images), np.asarray(class_labels)
    if images.ndim != 4 or class_labels.shape != (len(images),):
        raise ValueError(
            f"Images must be (N, H, W, C) with one class index each (N,); received shapes "
            f"{images.shape} and {class_labels.shape}."
        )
    if (
        not np.issubdtype(class_labels.dtype, np.integer)
        or class_labels.min() < 0
        or class_labels.max() >= count
    ):
        raise ValueError(
            f"Class indices must be ints in 0..{count - 1}, received {class_labels[:8].tolist()}..."
        )
    return [
        ClassSource(
            int(index), _label(int(index), labels, str(index)), arrays=tuple(images[class_labels == index])
        )
        for index in np.unique(class_labels)
    ]


def dataset_classes(dataset, labels: Sequence[str] | None, count: int) -> list[ClassSource]:
    """The classes of a `tf.data.Dataset` of (image, label) or of batches of them."""
    images, indices = [], []
    for image, label in dataset.as_numpy_iterator():
        image, label = np.asarray(image), np.asarray(label)
        if image.ndim == 4:
            images += list(image)
            indices += list(label.reshape(len(image), -1).argmax(axis=1) if label.ndim == 2 else label)
        else:
            images.append(image)
            indices.append(int(label.argmax()) if label.ndim == 1 else int(label))
    return array_classes(np.stack(images), np.asarray(indices, np.int64), labels, count)


def _label(index: int, labels: Sequence[str] | None, fallback: str) -> str:
    return labels[index] if labels is not None and index < len(labels) else fallback


def _check_distinct(classes: list[ClassSource]) -> None:
    seen: dict[int, str] = {}
    for source in classes:
        if source.index in seen:
            raise ValueError(
                f"Two class folders mean class {source.index}: {seen[source.index]!r} and {source.label!r}."
            )
        seen[source.index] = source.label


def image_files(root) -> list[Path]:
    """Every image file below `root` (its subfolders included), sorted; the files that are not images
    are skipped with a warning naming them."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"No folder {str(root)!r}. Accepted: a folder of images (subfolders included).")
    files = sorted(path for path in root.rglob("*") if path.is_file() and not path.name.startswith("."))
    images = [path for path in files if path.suffix.lower() in IMAGE_SUFFIXES]
    ignored = [str(path) for path in files if path.suffix.lower() not in IMAGE_SUFFIXES]
    if ignored:
        shown = ", ".join(ignored[:5]) + (f", ... ({len(ignored)} in all)" if len(ignored) > 5 else "")
        warnings.warn(
            f"Skipped files that are not images ({', '.join(IMAGE_SUFFIXES)}): {shown}.", stacklevel=3
        )
    if not images:
        raise ValueError(f"{root} holds no image ({', '.join(IMAGE_SUFFIXES)}).")
    return images
