"""`lens`: the concepts of each class, found in your images (CRAFT's recipe) and shown by MACO, in
memory or as a folder with a browsable page that a rerun resumes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, fields
from pathlib import Path

import keras
import numpy as np

from ..._config import checks
from ..._config import image_folders as sources_of
from ..._config.defaults import LENS, MACO
from ..._config.files import check_writable
from ..._config.manifest import finished_indices, heal, manifest_name, shard_lock
from ..._config.settings import Given
from ..._objectives.extractor import feature_model
from ..._objectives.head import head_model, last_spatial_layer
from ..._objectives.kinds.direction import Direction
from ..._objectives.kinds.units import Neuron
from ..._objectives.taps import LayerLike, Tap, find_tap, image_input_shape
from ..._outputs.callbacks import FinalValues
from ..._outputs.progress import work_progress
from ..._rendering.optimize import optimize
from ..._rendering.parametrization import MagnitudeConstrained
from ..._rendering.plan import make_plan
from .analysis import ClassAnalysis, LensSettings, Stopwatch, analyse_class, check_enough
from .files import write_class
from .page import build_lens_page, check_lens_folder
from .results import ClassConcepts, Lens

# Each image's random stream is keyed on what it shows, so a class renders the same images in any
# batch of classes, shard or resumed run: class c's own image uses (seed, c * _STREAMS), its
# concept of rank r (seed, c * _STREAMS + 1 + r).
_STREAMS = 1024
_MACO_NAMES = {field.name for field in fields(Given)} - {"seed"}


def lens(
    model: keras.Model,
    images,
    layer: LayerLike | None = None,
    nb_concepts: int = LENS.nb_concepts,
    labels: Sequence[str] | None = None,
    folders_in_class_order: bool = False,
    output=None,
    classes: Sequence[int] | None = None,
    shard: tuple[int, int] = (0, 1),
    crops_per_image: int = LENS.crops_per_image,
    crop_size: tuple[float, float] = LENS.crop_size,
    top_crops: int = LENS.top_crops,
    nb_designs: int = LENS.nb_designs,
    classes_per_render: int = LENS.classes_per_render,
    analysis_batch_size: int = LENS.batch_size,
    seed: int = LENS.seed,
    verbose: int = 1,
    page: bool = True,
    strategy=None,
    **maco_settings,
) -> Lens:
    """The concepts of each class, found in your images and shown by MACO (CRAFT, then MACO).

    For each class: random crops of its images, the layer's activations averaged over positions
    for each crop, and their non-negative factorisation (NMF) into `nb_concepts` concepts, each a
    direction in the layer's channels; each concept's importance for the class logit (Sobol
    total indices of the concept coefficients, estimated on the class's whole images through the
    rest of the network); the crops that hold each concept most; and each concept rendered by
    MACO along its direction, with the class logit itself. The rendering of all concepts of
    `classes_per_render` classes runs as one batched, chunked `maco` run.

    Args:
        model: A Keras classifier: one image input, one output of logits.
        images: A folder `root/<class>/*.jpg|png` whose class folders are named by a class index
            or a label of `labels` (as `keras.utils.image_dataset_from_directory` reads it); a
            pair (images (N, H, W, C), class indices (N,)) in `values_range`; or a
            `tf.data.Dataset` of (image, class index) or of batches of them.
        layer: The layer the concepts live in: a spatial layer (N, h, w, C) with non-negative
            activations that every path from the image to the output goes through. None: the
            last spatial layer before the pooling (the layer CRAFT and the MACO paper use).
        nb_concepts: Concepts per class (K).
        labels: The model's label list (label i for class i), for folder names and the page.
        folders_in_class_order: The class folders, sorted by name, are classes 0, 1, 2, ...
            whatever their names (Keras's numbering; ImageNet's WordNet-id folders sort in its
            class order).
        output: A folder to write the lens into (images, crops, a manifest line per class and
            the page `index.html`), resumable: a rerun skips the classes it holds. None keeps
            everything in memory only.
        classes: Only these class indices (of those the images hold).
        shard: (I, N): only classes I, I + N, ... of those selected, for job arrays.
        crops_per_image: Random crops cut from each image.
        crop_size: (smallest, largest) side of the square crops, as fractions of the image's
            shorter side.
        top_crops: Crops shown for each concept.
        nb_designs: Quasi-random masks per design of the importance estimator.
        classes_per_render: Classes whose concepts render in one batched run.
        analysis_batch_size: Crops per model call when reading activations.
        seed: Makes crops, factorisation, importance and images reproducible.
        verbose: 1 shows a progress bar over the classes.
        page: Rebuild `output`'s `index.html` after each batch of classes.
        strategy: Optional `tf.distribute.Strategy` for the rendering.
        **maco_settings: `nb_steps`, `image_shape`, `nb_crops`, `values_range`, ... for the MACO
            renderings, as in `maco` (the image shape defaults to 256 x 256 here).

    Returns:
        A `Lens`: the classes this call analysed, by class index.

    Example:
    >>> result = lens(zoo.efficientnet_lite0(), "photos/", labels=zoo.imagenet_classes(), output="lens/")
    >>> result[281].importance
    """
    _require_scikit_learn()
    tap, head, extractor, channels, count = _model_parts(model, layer)
    settings = _settings(
        tap.key, nb_concepts, crops_per_image, crop_size, top_crops, nb_designs, analysis_batch_size, seed
    )
    given = _given(maco_settings, seed)
    make_plan(
        given,
        Direction(model, tap.key, np.ones(tap.shape[-1])),
        feature_model(model, (tap,)),
        image_input_shape(model),
        1,
        strategy,
    )
    selected = _selected(
        _sources(images, labels, count, folders_in_class_order), classes, checks.shard(shard)
    )
    for source in selected:
        check_enough(source.count * settings.crops_per_image, settings.nb_concepts, source.label)
    run = _Run(model, tap, head, extractor, channels, settings, given, strategy)
    if output is None:
        return run.all(selected, checks.positive_int("classes_per_render", classes_per_render), verbose)
    return run.into(
        Path(output), selected, shard, classes_per_render, verbose, page, _recorded(settings, maco_settings)
    )


def _require_scikit_learn() -> None:
    try:
        import scipy.stats  # noqa: F401
        import sklearn.decomposition  # noqa: F401
    except ImportError as error:
        raise ImportError(
            f"The lens needs scikit-learn (its NMF finds the concepts) and scipy ({error}): "
            "pip install 'xplique-maco[lens]'."
        ) from None


def _model_parts(model: keras.Model, layer) -> tuple:
    """The concept layer's tap (checked spatial), the head after it, the feature model, the image
    channels and the number of classes; each a clear error before any computation."""
    input_shape = image_input_shape(model)
    if len(model.outputs) != 1 or len(model.outputs[0].shape) != 2:
        raise ValueError(
            f"Model {model.name!r} must give one output of class logits (N, classes); it gives "
            f"{[tuple(output.shape) for output in model.outputs]}."
        )
    tap = last_spatial_layer(model) if layer is None else find_tap(model, layer)
    if len(tap.shape) != 4:
        raise ValueError(
            f"Layer {tap.key!r} outputs shape {tap.shape}, which is not spatial: concepts are found in "
            "a convolutional layer's activations (N, H, W, C). Pass a convolutional layer, or None for "
            "the last one before the pooling."
        )
    head = head_model(model, tap)
    return tap, head, feature_model(model, (tap,)), input_shape[-1], int(model.outputs[0].shape[-1])


def _settings(
    layer, nb_concepts, crops_per_image, crop_size, top_crops, nb_designs, batch_size, seed
) -> LensSettings:
    nb_concepts = checks.positive_int("nb_concepts", nb_concepts)
    if nb_concepts >= _STREAMS:
        raise ValueError(f"`nb_concepts` must be below {_STREAMS}, received {nb_concepts}.")
    return LensSettings(
        layer=layer,
        nb_concepts=nb_concepts,
        crops_per_image=checks.positive_int("crops_per_image", crops_per_image),
        crop_size=checks.fraction_range("crop_size", crop_size),
        top_crops=checks.positive_int("top_crops", top_crops),
        nb_designs=checks.positive_int("nb_designs", nb_designs),
        batch_size=checks.positive_int("analysis_batch_size", batch_size),
        seed=checks.seed(seed),
    )


def _given(maco_settings: dict, seed: int) -> Given:
    """The rendering's settings: `maco`'s defaults (at the lens's image size) and the user's, checked."""
    unknown = sorted(set(maco_settings) - _MACO_NAMES)
    if unknown:
        raise TypeError(f"lens() got unknown settings {unknown}; accepted: {sorted(_MACO_NAMES)}.")
    defaults = {**asdict(MACO), "image_shape": LENS.image_shape}
    arguments = {"model_input_size": None, "batch_size": None, "crops_per_pass": None}
    return Given.of({**defaults, **arguments, **maco_settings, "seed": seed})


def _sources(images, labels, count: int, in_class_order: bool) -> list[sources_of.ClassSource]:
    if labels is not None:
        labels = [str(label) for label in labels]
    if isinstance(images, (str, Path)):
        return sources_of.folder_classes(
            images, labels, count, checks.boolean("folders_in_class_order", in_class_order)
        )
    if hasattr(images, "as_numpy_iterator"):
        return sources_of.dataset_classes(images, labels, count)
    if isinstance(images, (tuple, list)) and len(images) == 2:
        return sources_of.array_classes(images[0], images[1], labels, count)
    raise TypeError(
        "`images` must be a folder root/<class>/<images>, a pair (images, class indices) or a "
        f"tf.data.Dataset of (image, class index); received {type(images).__name__}."
    )


def _selected(sources, classes, shard: tuple[int, int]) -> list[sources_of.ClassSource]:
    """The classes asked for (all by default), then this shard's: positions I, I + N, ..."""
    if classes is not None:
        wanted = {int(index) for index in classes}
        missing = sorted(wanted - {source.index for source in sources})
        if missing:
            raise ValueError(
                f"Classes {missing} have no images (the images hold {[s.index for s in sources][:20]}...)."
            )
        sources = [source for source in sources if source.index in wanted]
    index, count = shard
    return [source for position, source in enumerate(sources) if position % count == index]


def _recorded(settings: LensSettings, maco_settings: dict) -> dict:
    """What the manifest records of the settings: all that shapes the results."""
    rendering = {
        key: value for key, value in maco_settings.items() if key not in ("batch_size", "crops_per_pass")
    }
    return {"kind": "lens", **checks.jsonable({**asdict(settings), **rendering})}


class _Run:
    """One call of `lens`: classes analysed and rendered batch by batch, kept or written."""

    def __init__(
        self, model, tap: Tap, head, extractor, channels: int, settings: LensSettings, given: Given, strategy
    ):
        self.model, self.tap, self.head, self.extractor = model, tap, head, extractor
        self.channels, self.settings, self.given, self.strategy = channels, settings, given, strategy
        self.input_size = tuple(size or 224 for size in image_input_shape(model)[1:3])
        self.summary = sources_of.Summary()
        self.stopwatch = Stopwatch()

    def all(self, sources, per_render: int, verbose: int) -> Lens:
        found = {}
        for batch in _batches(sources, per_render, verbose):
            for concepts in self._concepts(batch):
                found[concepts.index] = concepts
        return Lens(self.settings.layer, found, self.summary, None, dict(self.stopwatch.seconds))

    def into(
        self, output: Path, sources, shard, per_render: int, verbose: int, page: bool, recorded: dict
    ) -> Lens:
        check_writable(output)
        if page:
            check_lens_folder(output)
        manifest = output / manifest_name(shard)
        found = {}
        with shard_lock(output, shard):
            heal(manifest)
            done = finished_indices(output, recorded)
            positions = {source.index: position for position, source in enumerate(sources)}
            pending = [source for source in sources if source.index not in done]
            for batch in _batches(pending, checks.positive_int("classes_per_render", per_render), verbose):
                for concepts in self._concepts(batch):
                    with self.stopwatch.phase("writing"):
                        write_class(
                            output,
                            concepts,
                            recorded,
                            manifest,
                            positions[concepts.index],
                            self.given.values_range,
                        )
                    found[concepts.index] = concepts
                if page:
                    with self.stopwatch.phase("writing"):
                        build_lens_page(output)
            if page and not pending:
                build_lens_page(output)
        return Lens(self.settings.layer, found, self.summary, output, dict(self.stopwatch.seconds))

    def _concepts(self, batch) -> list[ClassConcepts]:
        analyses = []
        for source in batch:
            with self.stopwatch.phase("reading the images"):
                images = source.load(self.channels, self.given.values_range, self.summary)
            parts = (self.extractor, self.head, self.input_size, self.settings, self.stopwatch)
            analyses.append(analyse_class(source.index, source.label, images, *parts))
        with self.stopwatch.phase("rendering"):
            return self._rendered(analyses)

    def _rendered(self, analyses: list[ClassAnalysis]) -> list[ClassConcepts]:
        """The MACO images of every concept and class of `analyses`, in two batched runs."""
        seed = self.settings.seed
        vectors = np.concatenate([analysis.vectors for analysis in analyses])
        keys = [
            analysis.index * _STREAMS + 1 + rank
            for analysis in analyses
            for rank in range(len(analysis.vectors))
        ]
        concept_images, concept_transparencies, concept_values = self._render(
            Direction(self.model, self.tap.key, vectors), seed, keys
        )
        indices = [analysis.index for analysis in analyses]
        logit = Neuron(self.model, self.model.outputs[0], indices)
        images, transparencies, values = self._render(logit, seed, [index * _STREAMS for index in indices])
        results, first = [], 0
        for number, analysis in enumerate(analyses):
            last = first + len(analysis.vectors)
            results.append(
                ClassConcepts(
                    index=analysis.index,
                    label=analysis.label,
                    vectors=analysis.vectors,
                    importance=analysis.importance,
                    share=analysis.share,
                    crops=analysis.crops,
                    images=concept_images[first:last],
                    transparencies=concept_transparencies[first:last],
                    image=images[number],
                    transparency=transparencies[number],
                    values=concept_values[first:last],
                    value=float(values[number]),
                    crop_scores=analysis.crop_scores,
                    nb_images=analysis.nb_images,
                    nb_crops=analysis.nb_crops,
                )
            )
            first = last
        return results

    def _render(self, objective, seed: int, keys: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        final = FinalValues()
        streams = np.stack([np.full(len(keys), seed), np.asarray(keys)], axis=1)
        images, transparencies = optimize(
            objective,
            self.given,
            MagnitudeConstrained(),
            None,
            [final],
            strategy=self.strategy,
            streams=streams,
        )
        return images.numpy(), transparencies.numpy(), final.values


def _batches(sources, size: int, verbose: int):
    progress = work_progress(len(sources), "images rendered") if verbose and sources else None
    for start in range(0, len(sources), size):
        yield sources[start : start + size]
        if progress is not None:
            progress.add(len(sources[start : start + size]))
