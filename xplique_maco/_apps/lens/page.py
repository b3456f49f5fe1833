"""The lens page: one self-contained index.html of a lens folder, rebuilt from its manifests.

As the atlas page: the page is rebuilt from every manifest of the folder (all shards, all resumed
runs) and never read back, writes only `index.html` and `thumbnails/` (one WebP per class image
and per concept image, made once; `lens.json`, the labels given once; `similar.npz`, each
concept's most similar concepts of other classes, kept so a rebuild compares the new classes
only), and refuses to replace an `index.html` or a `thumbnails/` folder it did not write.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..._config.files import atomic_write
from ..._config.manifest import MANIFESTS, read_manifest
from ..._outputs.page import (
    PAGE,
    check_own_page,
    inside_folder,
    kept_labels,
    page_html,
    read_finished,
    read_labels,
    warn_left_off,
)
from ..._outputs.thumbnails import THUMBNAILS, page_lock, thumbnail, thumbnail_name
from .similar import Similar, read_similar, similar_concepts, to_bytes

MARKER = (
    "<!-- xplique-maco lens page: rebuilt from the manifests after each batch of `lens`; edits are lost -->"
)
_STATE = "lens.json"  # in THUMBNAILS: the labels given once; it also marks the folder as the lens page's
_SIMILAR = "similar.npz"  # in THUMBNAILS: the similar concepts of the last build
_KINDS = ("image", "transparency", "rgba")
# What takes a path out of the folder or makes it a URL: an empty, "." or ".." part (a leading "/"
# is an empty first part), a backslash or a colon.
_ACCEPTED_FOLDER = (
    "a folder written by `lens(..., output=...)`, which holds manifest.jsonl or one "
    "manifest.shard-I-of-N.jsonl per shard next to its classes/ folder"
)
_ACCEPTED_ENTRY = (
    "Accepted: a JSON object with an index >= 0, settings, files (image, transparency, rgba, vectors) "
    "and concepts in rank order (0, 1, ...), each with its files (image, transparency, rgba) and crops, "
    "as `lens` writes"
)


@dataclass(frozen=True)
class _Concept:
    """One concept of a class, as its class's manifest line describes it."""

    rank: int
    importance: float | None
    share: float | None
    value: float | None
    files: dict
    crops: tuple[str, ...]
    crop_scores: tuple[float | None, ...]


@dataclass(frozen=True)
class _Class:
    """One finished class, as its manifest line describes it; `files` is every file it needs."""

    index: int
    label: str
    value: float | None
    nb_images: int | None
    nb_crops: int | None
    manifest: str
    images: dict
    vectors: str
    concepts: tuple[_Concept, ...]
    files: dict


def is_lens_folder(folder: Path) -> bool:
    """Whether the folder's manifests are a lens's (their lines say `"kind": "lens"`)."""
    for path in sorted(Path(folder).glob(MANIFESTS)):
        for _, entry in read_manifest(path).entries:
            return entry.get("kind") == "lens"
    return False


def check_lens_folder(folder: Path) -> None:
    """Raises ValueError if `folder` holds an index.html or a thumbnails/ folder that the lens page did
    not write (a user's page, or the atlas page's): the lens never replaces them."""
    check_own_page(folder, MARKER, _STATE, "the lens page")


def build_lens_page(folder, labels=None) -> Path:
    """Writes `index.html` in a lens folder: every class, searchable, and a view per class with its concepts.

    The page is rebuilt from all the folder's manifests (every shard and resumed run) and is
    self-contained: script, style and data are inline, so it opens from the file system or any
    static web server, offline. It lists the classes (thumbnail, index, label); a class's view
    shows its image and its concepts by importance: each concept's image with its transparency,
    its top crops, its share of the importance, and the most similar concepts of other classes
    (cosine of the concept vectors) as links. `#281` links to class 281, `#281/2` to its concept
    of rank 2. Thumbnails go to `thumbnails/`, made only for new or changed images, and the
    similar concepts of unchanged classes are kept: `lens` calls it after each batch of classes.

    Args:
        folder: A folder written by `lens(..., output=folder)`.
        labels: Class labels that replace those of the manifest lines: a sequence of strings
            (label i for class i, e.g. `zoo.imagenet_classes()`) or the path of a text file with
            one label per line. None keeps the labels given to an earlier build of this page
            (none: the manifests' labels).

    Returns:
        The path of `index.html`.

    Raises:
        ValueError: The folder has no manifest, its manifests mix two runs' settings, a manifest
            line before the last is not JSON (a cut last line is skipped: its class is not
            finished) or is not a lens entry, a concept vectors file does not fit its line, labels
            are too few for the indices, or `index.html` (or `thumbnails/`) exists and was not
            written by the lens page.

    Example:
    >>> from xplique_maco.zoo import imagenet_classes
    >>> build_lens_page("lens/", labels=imagenet_classes())  # then open lens/index.html
    """
    folder = Path(folder)
    labels = read_labels(labels)
    settings, classes, lost = read_finished(folder, _ACCEPTED_FOLDER, _class)
    check_lens_folder(folder)
    thumbnails = folder / THUMBNAILS
    thumbnails.mkdir(exist_ok=True)
    with page_lock(thumbnails):
        known = kept_labels(thumbnails / _STATE, labels, classes[-1].index if classes else -1, "class")
        root = str(folder)  # plain strings: thousands of paths per rebuild
        for shown in classes:
            for name in [shown.images["rgba"], *(concept.files["rgba"] for concept in shown.concepts)]:
                thumbnail(os.path.join(root, name), os.path.join(root, thumbnail_name(name)), "rgba")
        similar = _similar(folder, thumbnails / _SIMILAR, classes)
        title = f"Lens of {settings.get('layer', folder.name) if isinstance(settings, dict) else folder.name}"
        data = _data(title, settings, classes, known, similar, lost)
        page = folder / PAGE
        atomic_write(page, page_html("lens.html", MARKER, title, data).encode("utf-8"))
    warn_left_off(
        lost, f"Classes left off the lens page of {folder}", "Rerun `lens` with the same folder to redo them."
    )
    return page


def _class(entry, manifest: Path, number: int) -> _Class:
    """A manifest line read as a class, or a ValueError naming the line and what is accepted."""
    where = f"{manifest}, line {number},"

    def refuse(reason: str):
        raise ValueError(f"{where} is not a lens manifest entry ({reason}). {_ACCEPTED_ENTRY}.")

    if not isinstance(entry, dict) or not {"index", "settings", "files", "concepts"} <= set(entry):
        refuse("it lacks an index, settings, files or concepts")
    index, files, concepts = entry["index"], entry["files"], entry["concepts"]
    if not _whole_number(index) or index < 0:
        refuse(f"its index is {index!r}")
    if not isinstance(files, dict) or {*_KINDS, "vectors"} - set(files):
        refuse("its files lack the class's image, transparency, rgba or vectors")
    if not isinstance(concepts, list) or not all(isinstance(concept, dict) for concept in concepts):
        refuse("its concepts are not a list of objects")
    if [concept.get("rank") for concept in concepts] != list(range(len(concepts))):
        refuse("its concepts are not in rank order 0, 1, ...")
    read = []
    for concept in concepts:
        images, crops = concept.get("files"), concept.get("crops")
        if not isinstance(images, dict) or set(_KINDS) - set(images):
            refuse(f"concept {concept['rank']} lacks its image, transparency or rgba")
        if not isinstance(crops, list):
            refuse(f"concept {concept['rank']} has no list of crops")
        scores = concept.get("crop_scores")
        scores = scores if isinstance(scores, list) and len(scores) == len(crops) else [None] * len(crops)
        read.append(
            _Concept(
                rank=concept["rank"],
                importance=_finite(concept.get("importance")),
                share=_finite(concept.get("share")),
                value=_finite(concept.get("value")),
                files={kind: images[kind] for kind in _KINDS},
                crops=tuple(crops),
                crop_scores=tuple(_finite(score) for score in scores),
            )
        )
    needed = dict(files)
    for concept in read:
        needed.update({f"concept_{concept.rank}_{kind}": name for kind, name in concept.files.items()})
        needed.update({f"concept_{concept.rank}_crop_{n}": name for n, name in enumerate(concept.crops)})
    for name in needed.values():
        if not inside_folder(name):
            raise ValueError(
                f"{where} names the file {name!r}, which is not in the folder. Accepted: paths relative "
                "to the folder, with / between folders and no '..'."
            )
    label = entry.get("label")
    return _Class(
        index=index,
        label=label if isinstance(label, str) else "",
        value=_finite(entry.get("value")),
        nb_images=entry.get("images") if _whole_number(entry.get("images")) else None,
        nb_crops=entry.get("crops") if _whole_number(entry.get("crops")) else None,
        manifest=manifest.name,
        images={kind: files[kind] for kind in _KINDS},
        vectors=files["vectors"],
        concepts=tuple(read),
        files=needed,
    )


def _whole_number(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _finite(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _similar(folder: Path, path: Path, classes: list[_Class]) -> Similar:
    """Each concept's similar concepts of other classes; only new or changed classes are compared."""
    stamps = []
    for shown in classes:
        status = os.stat(folder / shown.vectors)
        stamps.append((status.st_mtime_ns, status.st_size))
    previous = read_similar(path)
    similar = similar_concepts(
        [shown.index for shown in classes],
        stamps,
        [len(shown.concepts) for shown in classes],
        lambda: _all_vectors(folder, classes),
        previous,
    )
    if similar is not previous:
        atomic_write(path, to_bytes(similar))
    return similar


def _all_vectors(folder: Path, classes: list[_Class]) -> list[np.ndarray]:
    """Every class's concept vectors (K, C), checked against its line: K concepts, one C for all."""
    vectors, first = [], None
    for shown in classes:
        path = folder / shown.vectors
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise ValueError(f"Cannot read the concept vectors {path}: {error}") from None
        channels = array.shape[1] if array.ndim == 2 else None
        if (
            array.ndim != 2
            or array.shape[0] != len(shown.concepts)
            or not np.issubdtype(array.dtype, np.number)
            or (first is not None and channels != first[1])
        ):
            expected = f"(K, C) numbers, one row per concept of its manifest line (K = {len(shown.concepts)})"
            if first is not None:
                expected += f", C = {first[1]} as in {first[0]}"
            raise ValueError(
                f"The concept vectors {path} hold an array of shape {array.shape} ({array.dtype}). "
                f"Accepted: {expected}."
            )
        first = first or (path, channels)
        vectors.append(array)
    return vectors


def _data(title: str, settings, classes: list[_Class], labels, similar: Similar, lost: list[str]) -> dict:
    """What the page's script reads: the run, and each class with its concepts (names relative to its folder)."""
    rows = np.cumsum([0, *(len(shown.concepts) for shown in classes)])
    listed = []
    for number, shown in enumerate(classes):
        inner = _common_folder(shown.files.values())

        def relative(name: str, inner=inner) -> str:
            return name[len(inner) + 1 :] if inner else name

        concepts = []
        for concept in shown.concepts:
            row = int(rows[number]) + concept.rank
            near = [
                [int(index), int(rank), round(float(cosine), 4)]
                for index, rank, cosine in zip(
                    similar.neighbour_class[row],
                    similar.neighbour_rank[row],
                    similar.cosine[row],
                    strict=True,
                )
                if index >= 0
            ]
            concepts.append(
                {
                    "rank": concept.rank,
                    "importance": _short(concept.importance),
                    "share": _short(concept.share),
                    "value": _short(concept.value),
                    "files": {kind: relative(name) for kind, name in concept.files.items()},
                    "thumbnail": thumbnail_name(concept.files["rgba"]),
                    "crops": [relative(name) for name in concept.crops],
                    "crop_scores": [_short(score) for score in concept.crop_scores],
                    "similar": near,
                }
            )
        listed.append(
            {
                "index": shown.index,
                "label": labels[shown.index] if labels is not None else shown.label,
                "value": _short(shown.value),
                "images": shown.nb_images,
                "crops": shown.nb_crops,
                "manifest": shown.manifest,
                "folder": inner,
                "files": {
                    **{kind: relative(name) for kind, name in shown.images.items()},
                    "vectors": relative(shown.vectors),
                },
                "thumbnail": thumbnail_name(shown.images["rgba"]),
                "concepts": concepts,
            }
        )
    return {"title": title, "settings": settings, "missing": lost, "classes": listed}


def _common_folder(names) -> str:
    """The deepest folder that holds all these files ("" for the page's own folder)."""
    prefix = os.path.commonprefix(list(names))
    return prefix[: max(prefix.rfind("/"), 0)]


def _short(value: float | None) -> float | None:
    """Four significant digits: what the page shows, in a quarter of the JSON."""
    return None if value is None else float(f"{value:.4g}")
