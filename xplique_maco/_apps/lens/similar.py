"""Each concept's most similar concepts of other classes (the cosine of their vectors), computed in
blocks and kept from one page build to the next, so a rebuild after a batch compares the new classes only."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

import numpy as np

TOP = 3  # similar concepts kept per concept
_BLOCK = 1024  # concepts per product: 1,024 x 10,000 float32 cosines are 40 MB


@dataclass(frozen=True)
class Similar:
    """The similar concepts of every concept of a lens, one row per concept (class by class, then
    rank by rank).

    Attributes:
        classes: (n,) the class indices, in order.
        stamps: (n, 2) what identifies each class's vectors file (modification time in ns, size):
            a class whose file changed (it was redone) is compared again.
        counts: (n,) the concepts of each class.
        neighbour_class: (N, TOP) the class of each similar concept, most similar first; -1 where
            there is none (fewer than TOP concepts in other classes).
        neighbour_rank: (N, TOP) its rank in its class.
        cosine: (N, TOP) the cosine of the two concepts' vectors (-inf where there is none).
    """

    classes: np.ndarray
    stamps: np.ndarray
    counts: np.ndarray
    neighbour_class: np.ndarray
    neighbour_rank: np.ndarray
    cosine: np.ndarray


def similar_concepts(
    classes: Sequence[int],
    stamps: Sequence[tuple[int, int]],
    counts: Sequence[int],
    load: Callable[[], list[np.ndarray]],
    previous: Similar | None = None,
) -> Similar:
    """The TOP concepts of other classes nearest to each concept, by the cosine of their vectors.

    Rows of classes that `previous` holds with the same stamp are kept and compared with the new
    or changed classes only; a kept row that named a changed or removed class is compared with
    all again. `load()` gives every class's vectors (K_i, C) in the order of `classes`; it is
    called only when something is new or changed.
    """
    classes = np.asarray(classes, np.int64)
    stamps = np.asarray(stamps, np.int64).reshape(-1, 2)
    counts = np.asarray(counts, np.int64)
    known = _rows_by_class(previous)
    kept_from = np.full(int(counts.sum()), -1, np.int64)  # each row's row in `previous`, -1 if new
    start = 0
    for index, stamp, count in zip(classes.tolist(), stamps.tolist(), counts.tolist(), strict=True):
        old = known.get(index)
        if old is not None and old[0] == tuple(stamp) and old[1] == count:
            kept_from[start : start + count] = np.arange(old[2], old[2] + count)
        start += count
    fresh = kept_from < 0
    if previous is not None and not fresh.any() and np.array_equal(previous.classes, classes):
        return previous
    owner = np.repeat(classes, counts)
    ranks = np.concatenate([np.arange(count) for count in counts]) if len(counts) else np.zeros(0, np.int64)
    neighbour_class = np.full((len(owner), TOP), -1, np.int64)
    neighbour_rank = np.full((len(owner), TOP), -1, np.int64)
    cosine = np.full((len(owner), TOP), -np.inf, np.float32)
    kept = np.flatnonzero(~fresh)
    if len(kept):
        neighbour_class[kept] = previous.neighbour_class[kept_from[kept]]
        neighbour_rank[kept] = previous.neighbour_rank[kept_from[kept]]
        cosine[kept] = previous.cosine[kept_from[kept]]
        unchanged = set(classes[np.isin(classes, owner[kept])].tolist())
        lost_neighbour = np.isin(neighbour_class[kept], list(unchanged), invert=True) & (
            neighbour_class[kept] >= 0
        )
        fresh[kept[lost_neighbour.any(axis=1)]] = True  # it named a class that changed or left
    if len(owner) == 0:
        return Similar(classes, stamps, counts, neighbour_class, neighbour_rank, cosine)
    vectors = _unit(np.concatenate(load()).astype(np.float32))
    everything, new_columns = np.arange(len(owner)), np.flatnonzero(kept_from < 0)
    again = np.flatnonzero(fresh)
    found = _nearest(vectors, owner, ranks, again, everything)
    neighbour_class[again], neighbour_rank[again], cosine[again] = found
    rest = np.flatnonzero(~fresh)
    if len(rest) and len(new_columns):
        found = _nearest(vectors, owner, ranks, rest, new_columns)
        merged = _best(
            (neighbour_class[rest], neighbour_rank[rest], cosine[rest]),
            found,
        )
        neighbour_class[rest], neighbour_rank[rest], cosine[rest] = merged
    return Similar(classes, stamps, counts, neighbour_class, neighbour_rank, cosine)


def _rows_by_class(previous: Similar | None) -> dict[int, tuple[tuple[int, int], int, int]]:
    """class -> (stamp, count, first row) of an earlier result."""
    if previous is None:
        return {}
    starts = np.concatenate([[0], np.cumsum(previous.counts)[:-1]]).astype(np.int64)
    return {
        int(index): (tuple(stamp), int(count), int(start))
        for index, stamp, count, start in zip(
            previous.classes.tolist(), previous.stamps.tolist(), previous.counts.tolist(), starts, strict=True
        )
    }


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def _nearest(vectors, owner, ranks, rows, columns) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each row, the TOP columns of other classes with the highest cosine, in blocks of rows."""
    shape = (len(rows), TOP)
    found_class, found_rank = np.full(shape, -1, np.int64), np.full(shape, -1, np.int64)
    found_cosine = np.full(shape, -np.inf, np.float32)
    targets, target_owner = vectors[columns], owner[columns]
    keep = min(TOP, len(columns))
    for start in range(0, len(rows), _BLOCK):
        block = rows[start : start + _BLOCK]
        cosines = vectors[block] @ targets.T
        cosines[owner[block][:, None] == target_owner[None, :]] = -np.inf
        if len(columns) > keep:
            picked = np.argpartition(-cosines, keep - 1, axis=1)[:, :keep]
        else:
            picked = np.broadcast_to(np.arange(len(columns)), (len(block), len(columns)))
        values = np.take_along_axis(cosines, picked, axis=1)
        order = np.argsort(-values, axis=1, kind="stable")
        picked, values = np.take_along_axis(picked, order, axis=1), np.take_along_axis(values, order, axis=1)
        there = np.isfinite(values)
        part = slice(start, start + len(block))
        found_class[part, :keep] = np.where(there, owner[columns][picked], -1)
        found_rank[part, :keep] = np.where(there, ranks[columns][picked], -1)
        found_cosine[part, :keep] = values
    return found_class, found_rank, found_cosine


def _best(first, second) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The TOP highest cosines of two candidate lists per row (classes, ranks, cosines)."""
    classes, ranks, cosines = (np.concatenate(pair, axis=1) for pair in zip(first, second, strict=True))
    order = np.argsort(-cosines, axis=1, kind="stable")[:, :TOP]
    return tuple(np.take_along_axis(values, order, axis=1) for values in (classes, ranks, cosines))


def to_bytes(similar: Similar) -> bytes:
    """The result as an .npz file (no pickles), for `read_similar` at the next build."""
    buffer = io.BytesIO()
    np.savez(buffer, **{field.name: getattr(similar, field.name) for field in fields(Similar)})
    return buffer.getvalue()


def read_similar(path) -> Similar | None:
    """An earlier result written by `to_bytes`, or None if there is none or it does not fit."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            similar = Similar(**{field.name: stored[field.name] for field in fields(Similar)})
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None
    rows = int(similar.counts.sum())
    shapes_fit = (
        similar.stamps.shape == (len(similar.classes), 2)
        and similar.counts.shape == similar.classes.shape
        and all(
            values.shape == (rows, TOP)
            for values in (similar.neighbour_class, similar.neighbour_rank, similar.cosine)
        )
    )
    return similar if shapes_fit else None
