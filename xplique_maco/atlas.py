"""Rendering many objectives to files: chunked, sharded across machines, safe to interrupt and resume.

Each objective's PNGs are written atomically (temporary file, then rename), then one line is
appended to the shard's manifest (JSON Lines, see `_manifest`). An objective counts as finished
when its manifest line is whole and its files are there; a rerun skips finished objectives and
redoes the others, so a killed job resumes where it stopped and a finished image is never written
twice. A shard renders in one process at a time: a second one on the same folder and shard is
refused before it renders anything.
After each finished batch the folder's page, `index.html`, is rebuilt from all its manifests
(see `build_page`).
"""

from __future__ import annotations

import inspect
import re
import signal
import warnings
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

import keras
import numpy as np

from ._callbacks import Callback
from ._driver import maco
from ._io import check_writable
from ._kinds import Channel, Neuron
from ._manifest import (
    MANIFESTS,
    append_entry,
    heal,
    manifest_name,
    read_manifest,
    settings_differences,
    shard_lock,
)
from ._page import build_page, check_page_folder, read_labels
from ._plots import save_image, save_rgba, transparency_to_alpha
from ._settings import slug

__all__ = ["parse_indices", "parse_shard", "render_atlas", "build_page"]

_KINDS = {"neuron": Neuron, "channel": Channel}


def parse_indices(text: str) -> list[int]:
    """Parses "0:1000", "1,94,130", "0:10:2" or mixes like "0:4,10,20:22" into a list of indices.

    Ranges are half-open like Python slices: "0:4" is 0, 1, 2, 3.

    Example:
    >>> parse_indices("0:3,10")
    [0, 1, 2, 10]
    """
    indices: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        if re.fullmatch(r"\d+", part):
            indices.append(int(part))
        elif match := re.fullmatch(r"(\d+):(\d+)(?::(\d+))?", part):
            start, stop, step = int(match[1]), int(match[2]), int(match[3] or 1)
            if stop <= start or step < 1:
                raise ValueError(f"Empty or backward range {part!r} in indices {text!r}.")
            indices.extend(range(start, stop, step))
        else:
            raise ValueError(
                f"Cannot read indices {text!r}: {part!r} is neither an index nor a range. "
                "Accepted: '0:1000', '1,94,130', '0:100:2' or a comma-separated mix."
            )
    if len(set(indices)) != len(indices):
        raise ValueError(f"Indices {text!r} list some index twice.")
    return indices


def parse_shard(text: str) -> tuple[int, int]:
    """Parses "I/N" (0 <= I < N): this machine renders objectives I, I + N, I + 2N, ..."""
    match = re.fullmatch(r"(\d+)/(\d+)", str(text).strip())
    if not match or not 0 <= int(match[1]) < int(match[2]):
        raise ValueError(f"`shard` must be 'I/N' with 0 <= I < N (e.g. '0/4'), received {text!r}.")
    return int(match[1]), int(match[2])


class _FinalValues(Callback):
    """Keeps each item's objective value at the last step (one device fetch per chunk)."""

    def on_start(self, run):
        self.last, self.values = run.nb_steps - 1, np.full(run.batch_size, np.nan)

    def wants_step(self, index):
        return index == self.last

    def on_step(self, step):
        self.values[step.columns] = step.values


@contextmanager
def _terminate_as_interrupt():
    """SIGTERM (a cluster scheduler's stop) unwinds like Ctrl-C, so temporary files are cleaned."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not in the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _finished(output: Path, settings: dict) -> set[int]:
    """Indices with a whole manifest line (in any manifest of the folder) and their files.

    A cut last line is no entry: its objective is redone.
    """
    done: set[int] = set()
    for path in sorted(output.glob(MANIFESTS)):
        for number, entry in read_manifest(path).entries:
            recorded = entry.get("settings")
            if isinstance(recorded, dict):
                recorded = {**_UNRECORDED, **recorded}
            if recorded != settings:
                raise ValueError(
                    f"{output} holds results made with other settings ({path.name} line {number} vs "
                    f"this call: {settings_differences(recorded, settings)}); pass the folder's settings "
                    "to resume it, or use another output folder to render these ones."
                )
            if all((output / name).is_file() for name in entry.get("files", {}).values()):
                done.add(int(entry["index"]))
    return done


_HOW_NOT_WHAT = ("crops_per_pass",)
# Always recorded, as its default changed (0 -> 0.25); lines written before say nothing of it.
_DEFAULT_GLANCE = inspect.signature(maco).parameters["glance"].default
_UNRECORDED = {"glance": 0.0}


def render_atlas(
    model: keras.Model,
    layer: str | int,
    indices: Sequence[int],
    output,
    kind: str = "neuron",
    shard: tuple[int, int] = (0, 1),
    batch_size: int = 8,
    seed: int = 0,
    verbose: int = 1,
    strategy=None,
    page: bool = True,
    labels=None,
    **maco_settings,
) -> list[dict]:
    """Renders one image per index of a layer into `output`, resumably; returns the new manifest entries.

    For each objective it writes `<stem>.png` (the image), `<stem>_transparency.png` (the map,
    scaled to its 99th percentile) and `<stem>_rgba.png` (the image with the map as alpha),
    then appends a JSON line to the manifest: objective, index, settings, seed, final value,
    file names. While it runs it holds the shard's lock file (`.manifest.jsonl.lock`, or
    `.manifest.shard-I-of-N.jsonl.lock`), which the operating system releases when the process
    ends, even by a hard kill. A last manifest line cut by a hard kill is moved to
    `<manifest>.cut` with a warning, and its objective rendered again.

    Args:
        model: The model to explain.
        layer: Layer name or index.
        indices: Units or channels to render (one image each).
        output: Output folder (created if needed).
        kind: "neuron" or "channel".
        shard: (I, N): render only objectives I, I + N, ... of `indices` (for job arrays).
        batch_size: Objectives rendered at once.
        seed: Objective i of `indices` uses the random stream of position i, so shards,
            resumed runs and the whole job give the same images.
        verbose: 1 shows a progress bar over the whole job.
        strategy: Optional `tf.distribute.Strategy`: each chunk is split across its replicas.
        page: Rebuild the folder's `index.html` (every unit of all shards, see `build_page`)
            after each finished batch, or once if nothing is left to render.
        labels: Labels of the units on the page: a sequence of strings (label i for index i)
            or a text file of one label per line; None keeps those given before (or none).
        **maco_settings: `nb_steps`, `image_shape`, `nb_crops`, `values_range`, ... for `maco`.

    Raises:
        ValueError: Bad arguments; the folder holds another run's results or a damaged manifest
            line (named by file and line); or another process renders this shard, or a shard of
            another count sharing objectives with it, into the folder (refused before rendering).

    Example:
    >>> render_atlas(model, "predictions", range(1000), "atlas/", nb_steps=128, shard=(0, 4))
    """
    if kind not in _KINDS:
        raise ValueError(f"`kind` must be one of {sorted(_KINDS)}, received {kind!r}.")
    indices = [int(i) for i in indices]
    if not indices:
        raise ValueError("`indices` is empty: nothing to render.")
    objective = _KINDS[kind](model, layer, indices)  # checks the layer and every index
    layer_name = objective.layer_names[0]
    output = Path(output)
    check_writable(output)
    labels = read_labels(labels)
    if labels is not None and max(indices) >= len(labels):
        raise ValueError(
            f"{len(labels)} labels for indices up to {max(indices)}: one label per index is needed "
            f"(line i + 1 of a labels file labels index i), so at least {max(indices) + 1}."
        )
    if page:
        check_page_folder(output)  # before any rendering: a user's own index.html is never replaced
    # How the work is split (crops_per_pass) does not change the images: not part of the settings.
    identity = {key: value for key, value in maco_settings.items() if key not in _HOW_NOT_WHAT}
    identity.setdefault("glance", _DEFAULT_GLANCE)  # a default that changed once: always recorded
    settings = {"kind": kind, "layer": layer_name, "seed": seed, **_jsonable(identity)}
    values_range = maco_settings.get("values_range", (0.0, 1.0))
    manifest = output / manifest_name(shard)
    entries = []
    with shard_lock(output, shard), _terminate_as_interrupt():
        cut = heal(manifest)
        if cut is not None:
            warnings.warn(
                f"The last line of {manifest} was cut by a hard kill while it was written: it is now "
                f"in {manifest.name}.cut, and its objective is rendered again.",
                stacklevel=2,
            )
        finished = _finished(output, settings)
        shard_index, shard_count = shard
        pending = [
            p for p in range(len(indices)) if p % shard_count == shard_index and indices[p] not in finished
        ]
        progress = keras.utils.Progbar(len(pending)) if verbose and pending else None
        for start in range(0, len(pending), batch_size):
            chunk = pending[start : start + batch_size]
            final = _FinalValues()
            images, transparencies = maco(
                objective,
                items=chunk,
                seed=seed,
                callbacks=[final],
                verbose=0,
                strategy=strategy,
                **maco_settings,
            )
            for row, position in enumerate(chunk):
                index = indices[position]
                stem = f"{kind}_{slug(layer_name)}_{index:05d}"
                files = _write_unit(output, stem, images[row], transparencies[row], values_range)
                entry = {
                    "objective": f"{kind.capitalize()}({layer_name}, {index})",
                    "index": index,
                    "position": position,
                    "settings": settings,
                    "seed": seed,
                    "value": float(final.values[row]),
                    "files": files,
                }
                append_entry(manifest, entry)
                entries.append(entry)
            if page:
                build_page(output, labels)
            if progress is not None:
                progress.add(len(chunk))
        if page and not pending:
            build_page(output, labels)
    return entries


def _write_unit(output: Path, stem: str, image, transparency, values_range) -> dict:
    """Writes one objective's three PNGs (image, transparency map, image with it as alpha); returns their names."""
    files = {"image": f"{stem}.png", "transparency": f"{stem}_transparency.png", "rgba": f"{stem}_rgba.png"}
    save_image(output / files["image"], image, values_range)
    save_image(output / files["transparency"], transparency_to_alpha(transparency)[..., None])
    save_rgba(output / files["rgba"], image, transparency, values_range)
    return files


def _jsonable(settings: dict) -> dict:
    def convert(value):
        if isinstance(value, (tuple, list)):
            return [convert(v) for v in value]
        if isinstance(value, (np.integer, np.floating)):
            return value.item()
        if isinstance(value, (str, int, float, bool)) or value is None:
            return value
        return repr(value)

    return {key: convert(value) for key, value in sorted(settings.items())}
