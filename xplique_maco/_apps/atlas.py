"""`render_atlas`: one image per unit of a layer into a folder, resumable and shardable (the
public module `xplique_maco.atlas` says how)."""

from __future__ import annotations

import signal
import warnings
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import keras

from .._api.visualize import maco
from .._config import checks
from .._config.checks import jsonable, slug
from .._config.defaults import ATLAS, INPUT_SIZE, MACO
from .._config.files import check_writable
from .._config.manifest import (
    append_entry,
    finished_indices,
    heal,
    manifest_name,
    shard_lock,
    unit_entry,
)
from .._objectives.kinds.units import Channel, Neuron
from .._objectives.taps import image_input_shape
from .._outputs.callbacks import FinalValues
from .._outputs.page import build_page, check_page_folder, read_labels
from .._outputs.plots import write_unit
from .._outputs.progress import work_progress
from .examples import example_pool, top_examples, write_examples

__all__ = ["render_atlas"]

_KINDS = {"neuron": Neuron, "channel": Channel}


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


_HOW_NOT_WHAT = ("crops_per_pass",)
# Always recorded, as its default changed (0 -> 0.25); lines written before say nothing of it.
_UNRECORDED = {"glance": 0.0}


def render_atlas(
    model: keras.Model,
    layer: str | int,
    indices: Sequence[int],
    output,
    kind: str = ATLAS.kind,
    shard: tuple[int, int] = (0, 1),
    batch_size: int = ATLAS.batch_size,
    seed: int = ATLAS.seed,
    verbose: int = 1,
    strategy=None,
    page: bool = True,
    labels=None,
    images=None,
    nb_examples: int = ATLAS.nb_examples,
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
        seed: Each unit's random stream is keyed on the unit, so shards, resumed runs and the
            whole job give the same images, and `maco(Neuron(model, layer, unit), seed=seed)`
            at the same settings re-renders one of them alone.
        verbose: 1 shows a progress bar over the whole job.
        strategy: Optional `tf.distribute.Strategy`: each chunk is split across its replicas.
        page: Rebuild the folder's `index.html` (every unit of all shards, see `build_page`)
            after each finished batch, or once if nothing is left to render.
        labels: Labels of the units on the page: a sequence of strings (label i for index i)
            or a text file of one label per line; None keeps those given before (or none).
        images: Your images, for dataset examples: a folder (read recursively) or an array
            (N, H, W, C) in `values_range`. Each unit then also gets the `nb_examples` random
            crops of them that drive it most (`examples/<stem>_<j>.jpg`), shown in the page's
            detail view beside the unit's image. None: no examples.
        nb_examples: Dataset examples per unit.
        **maco_settings: `nb_steps`, `image_shape`, `nb_crops`, `values_range`, ... for `maco`.

    Raises:
        ValueError: Bad arguments; the folder holds another run's results or a damaged manifest
            line (named by file and line); or another process renders this shard, or a shard of
            another count sharing objectives with it, into the folder (refused before rendering).

    Example:
    >>> render_atlas(model, "predictions", range(1000), "atlas/", nb_steps=128, shard=(0, 4))
    """
    objective, indices, output, labels = _checked(model, layer, indices, output, kind, labels, page)
    layer_name = objective.layer_names[0]
    settings = _recorded_settings(
        kind, layer_name, seed, {**maco_settings, **_examples_setting(images, nb_examples)}
    )
    values_range = maco_settings.get("values_range", MACO.values_range)
    job = _Job(output, output / manifest_name(shard), kind, layer_name, indices, settings, seed, values_range)
    entries = []
    with shard_lock(output, shard), _terminate_as_interrupt():
        _heal(job.manifest)
        pending = _pending(indices, shard, finished_indices(output, settings, _UNRECORDED))
        if pending and images is not None:
            job.examples = _examples(objective, images, nb_examples, values_range, seed, maco_settings)
        progress = work_progress(len(pending), "objectives") if verbose and pending else None
        for start in range(0, len(pending), batch_size):
            chunk = pending[start : start + batch_size]
            final = FinalValues()
            rendered = maco(
                objective,
                items=chunk,
                seed=seed,
                callbacks=[final],
                verbose=0,
                strategy=strategy,
                **maco_settings,
            )
            entries += job.write(chunk, *rendered, final.values)
            if page:
                build_page(output, labels)
            if progress is not None:
                progress.add(len(chunk))
        if page and not pending:
            build_page(output, labels)
    return entries


@dataclass
class _Job:
    """What every unit of one call of `render_atlas` is written with."""

    output: Path
    manifest: Path
    kind: str
    layer: str
    indices: list[int]
    settings: dict
    seed: int
    values_range: tuple[float, float]
    examples: tuple | None = None  # (crops, best crops of each item, their values)

    def write(self, chunk: list[int], images, transparencies, values) -> list[dict]:
        """Each unit's files, then its manifest line (returned)."""
        entries = []
        for row, position in enumerate(chunk):
            index = self.indices[position]
            stem = f"{self.kind}_{slug(self.layer)}_{index:05d}"
            files = write_unit(self.output, stem, images[row], transparencies[row], self.values_range)
            value = float(values[row])
            entry = unit_entry(self.kind, self.layer, index, position, self.settings, self.seed, value, files)
            if self.examples is not None:
                pool, best, scores = self.examples
                entry["examples"] = write_examples(self.output, stem, pool[best[position]], self.values_range)
                entry["example_values"] = [float(score) for score in scores[position]]
            append_entry(self.manifest, entry)
            entries.append(entry)
        return entries


def _examples_setting(images, nb_examples) -> dict:
    """What the manifest records of the dataset examples: their number, when there are some."""
    return {} if images is None else {"nb_examples": checks.positive_int("nb_examples", nb_examples)}


def _examples(objective, images, nb_examples: int, values_range, seed: int, maco_settings: dict) -> tuple:
    """The example pool of `images` and each item's best crops in it."""
    input_shape = image_input_shape(objective.model)
    size = maco_settings.get("model_input_size") or tuple(side or INPUT_SIZE for side in input_shape[1:3])
    pool, summary = example_pool(
        images, input_shape[-1], tuple(size), values_range, ATLAS.examples_per_image, seed
    )
    for path, reason in summary.skipped:
        warnings.warn(f"Skipped {path} for the dataset examples: {reason}.", stacklevel=4)
    best, values = top_examples(objective, pool, nb_examples)
    return pool, best, values


def _checked(model, layer, indices, output, kind: str, labels, page: bool):
    """The objective, indices, folder and labels of a call of `render_atlas`, all checked before
    anything renders: a bad argument, or a user's own index.html in the folder, fails here."""
    if kind not in _KINDS:
        raise ValueError(f"`kind` must be one of {sorted(_KINDS)}, received {kind!r}.")
    indices = [int(i) for i in indices]
    if not indices:
        raise ValueError("`indices` is empty: nothing to render.")
    objective = _KINDS[kind](model, layer, indices)  # checks the layer and every index
    output = Path(output)
    check_writable(output)
    labels = read_labels(labels)
    if labels is not None and max(indices) >= len(labels):
        raise ValueError(
            f"{len(labels)} labels for indices up to {max(indices)}: one label per index is needed "
            f"(line i + 1 of a labels file labels index i), so at least {max(indices) + 1}."
        )
    if page:
        check_page_folder(output)  # a user's own index.html is never replaced
    return objective, indices, output, labels


def _pending(indices: list[int], shard: tuple[int, int], finished: set[int]) -> list[int]:
    """The positions in `indices` of this shard's objectives that are not finished yet."""
    shard_index, shard_count = shard
    return [p for p in range(len(indices)) if p % shard_count == shard_index and indices[p] not in finished]


def _recorded_settings(kind: str, layer_name: str, seed: int, maco_settings: dict) -> dict:
    """What the manifest records of a render's settings: what shapes the images, not how the
    work is split (`crops_per_pass`)."""
    identity = {key: value for key, value in maco_settings.items() if key not in _HOW_NOT_WHAT}
    identity.setdefault("glance", MACO.glance)  # a default that changed once: always recorded
    return {"kind": kind, "layer": layer_name, "seed": seed, **jsonable(identity)}


def _heal(manifest: Path) -> None:
    """Moves a last manifest line cut by a hard kill aside, with a warning."""
    cut = heal(manifest)
    if cut is not None:
        warnings.warn(
            f"The last line of {manifest} was cut by a hard kill while it was written: it is now "
            f"in {manifest.name}.cut, and its objective is rendered again.",
            stacklevel=3,
        )
