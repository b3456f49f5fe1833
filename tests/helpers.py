"""What several test modules share: tiny models, run settings, and the check of the bad-input tables.

Fixtures built from these live in conftest.py; test modules import the plain functions from here.
"""

import contextlib
import functools
import http.server
import inspect
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from xplique_maco import Callback
from xplique_maco._rendering.step import trace_count

# ---- run settings: a step takes milliseconds; tests add nb_steps and seed as they need ----

# 48 x 48 images, 4 crops: enough for an objective to rise in 30 steps.
RISE = dict(image_shape=(48, 48), nb_crops=4, crop_size=(0.5, 0.9))
# One or two steps of one crop: for runs that must only start (or fail before starting).
ONE_STEP = dict(nb_steps=1, image_shape=(32, 32), nb_crops=1, verbose=0)
TWO_STEPS = dict(nb_steps=2, image_shape=(32, 32), nb_crops=1, verbose=0, seed=0)
# Two large crops of 40 x 40 images: for comparing chunks, subsets and passes with the whole batch.
CHUNKED = dict(image_shape=(40, 40), nb_crops=2, crop_size=(0.5, 1.0), seed=3, verbose=0)
# Thirty steps at the default crop sizes: for comparing maco with the Fourier baseline.
BASELINE = dict(nb_steps=30, image_shape=(48, 48), nb_crops=4, seed=0, verbose=0)
# For comparing runs whose gradients are summed in a different order (other model passes): with
# plain SGD the images move by the gradient, so they differ by rounding only. Nadam divides each
# phase's gradient by its size, and most phase gradients are about its epsilon (1e-7): a ReLU input
# that rounding puts on the other side of 0 changes them by as much, and Nadam made differences of
# 1e-3 to 0.18 from that for 2% of random weights (4 steps). SGD at 30 moves the images about
# half as far as Nadam's (1, 0.1) in 4 steps.
LINEAR = dict(optimizer="sgd", learning_rate=30.0)
# The runs that tests/multiworker_check.py's workers and their one-device reference make: chunks
# of three of four items, split 2 + 1 across two replicas, then one item padded to both.
MULTIWORKER = dict(**CHUNKED, **LINEAR, nb_steps=6, batch_size=3)


# ---- tiny models ----


def conv_classifier(channels: int = 3, size: int = 32, name: str = "tiny_cnn") -> keras.Model:
    """Conv -> conv -> pooled logits, with fixed random weights."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((size, size, channels), name="image")
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv1")(inputs)
    x = keras.layers.Conv2D(16, 3, strides=2, activation="relu", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(10, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)


def token_model(size: int = 32) -> keras.Model:
    """A ViT-like stem: patches -> tokens (N, T, D) -> dense mixing -> pooled logits."""
    keras.utils.set_random_seed(1)
    inputs = keras.Input((size, size, 3), name="image")
    x = keras.layers.Conv2D(12, 8, strides=8, name="patchify")(inputs)
    x = keras.layers.Reshape(((size // 8) ** 2, 12), name="tokens")(x)
    x = keras.layers.Dense(12, activation="gelu", name="mlp")(x)
    x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    outputs = keras.layers.Dense(5, name="logits")(x)
    return keras.Model(inputs, outputs, name="tiny_vit")


def fully_convolutional() -> keras.Model:
    """One convolution on inputs of any size (unseeded weights: for shape and error checks)."""
    inputs = keras.Input((None, None, 3))
    return keras.Model(inputs, keras.layers.Conv2D(4, 3, name="conv")(inputs), name="fcn")


class BatchSizes(keras.layers.Layer):
    """Identity that notes the batch size of every call: each trace or eager run (a Python side effect)."""

    def __init__(self, seen, **kwargs):
        super().__init__(**kwargs)
        self.note = seen.append  # not the list itself: Keras would track a copy of it

    def call(self, inputs):
        self.note(inputs.shape[0])
        return inputs


def watched_model(seen: list) -> keras.Model:
    """A small classifier whose input passes through BatchSizes(seen): the model passes show."""
    keras.utils.set_random_seed(0)  # the same weights whatever ran before, as conv_classifier's
    inputs = keras.Input((32, 32, 3))
    features = keras.layers.Conv2D(8, 3, activation="relu")(BatchSizes(seen)(inputs))
    return keras.Model(inputs, keras.layers.Dense(4)(keras.layers.GlobalAveragePooling2D()(features)))


# ---- reading results ----


def at_input_size(images, size=32):
    """Rendered images resized to the tiny models' input, to evaluate the whole image."""
    return tf.image.resize(images, (size, size), antialias=True)


def activations(model: keras.Model, layer: str, inputs) -> np.ndarray:
    """The output of `model`'s layer `layer` on `inputs`, computed by Keras directly."""
    return keras.Model(model.inputs[0], model.get_layer(layer).output)(inputs).numpy()


def read_png(path) -> np.ndarray:
    return tf.io.decode_png(tf.io.read_file(str(path)), channels=0).numpy()


def manifest_entries(folder: Path) -> list[dict]:
    """Every line of every manifest (one per shard) of a render folder."""
    lines = []
    for manifest in sorted(folder.glob("manifest*.jsonl")):
        lines += [json.loads(line) for line in manifest.read_text().splitlines()]
    return lines


def hold_lock(folder: Path, shard: tuple[int, int]) -> subprocess.Popen:
    """Another process that holds the lock of `shard` in `folder` until its input closes (or it is killed)."""
    code = (
        "import sys\n"
        "from xplique_maco._config.manifest import shard_lock\n"
        f"with shard_lock(sys.argv[1], {tuple(shard)}):\n"
        "    print('held', flush=True)\n"
        "    sys.stdin.read()\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(folder)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline() == "held\n"
    return holder


# The `render` command's options for a few fast steps on conftest's `model_file`.
SMALL_RENDER = ["--steps", "3", "--image-size", "40", "--crops", "2", "--model-input-size", "32", "32"]


# ---- the bad-input tables ----


def assert_refused(call, error: type[BaseException], message: str) -> None:
    """`call()` raises `error` with `message` in its text, before any MACO step is traced."""
    traced = trace_count()
    with pytest.raises(error) as raised:
        call()
    assert message in str(raised.value), str(raised.value)
    assert trace_count() == traced, "traced before failing"


# Out of memory, simulated on the CPU (tests/test_memory.py, tests/test_diversity.py).


class RunsOut(keras.layers.Layer):
    """Identity, except that a pass of more than `limit` crops runs out of memory (the error a
    device raises, here raised while the step is traced, where the pass's size is known)."""

    def __init__(self, limit, **kwargs):
        super().__init__(**kwargs)
        self.limit = limit

    def call(self, crops):
        if crops.shape[0] is not None and crops.shape[0] > self.limit:
            raise tf.errors.ResourceExhaustedError(
                None,
                None,
                f"OOM when allocating a pass of {crops.shape[0]} crops (injected: limit {self.limit})",
            )
        return crops


def wrapped(layer) -> keras.Model:
    """The tiny classifier (the same weights as `conv_classifier()`) behind `layer`."""
    base = conv_classifier()
    inputs = keras.Input((32, 32, 3))
    return keras.Model(inputs, base(layer(inputs)))


class Plan(Callback):
    def on_start(self, run):
        self.chunks = run.chunks


def retried(record) -> list[str]:
    return [str(w.message) for w in record if "Out of memory" in str(w.message)]


# ---- atlas folders without rendering, and what their page shows ----

ATLAS_SETTINGS = {"kind": "neuron", "layer": "logits", "seed": 0, "nb_steps": 3, "image_shape": [24, 24]}


def write_atlas(
    folder: Path,
    indices,
    shards: int = 1,
    size: int = 24,
    settings: dict | None = None,
    examples: dict[int, int] | None = None,
) -> list[dict]:
    """A folder as `xplique-maco render` leaves it, without rendering: three PNGs and a manifest line per index.

    Unit i's image is a flat colour that depends on i, its value is i / 10 except for index 3,
    whose value is the highest (so sorting by value differs from sorting by index). `examples`
    gives units dataset examples, as `--images` does: index -> how many (JPEGs, values falling).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for position, index in enumerate(indices):
        stem = f"neuron_logits_{index:05d}"
        files = {
            "image": f"{stem}.png",
            "transparency": f"{stem}_transparency.png",
            "rgba": f"{stem}_rgba.png",
        }
        write_pngs(folder, files, _colour(index), size)
        entry = {
            "objective": f"Neuron(logits, {index})",
            "index": index,
            "position": position,
            "settings": settings or ATLAS_SETTINGS,
            "seed": 0,
            "value": 100.0 if index == 3 else index / 10,
            "files": files,
        }
        if examples and index in examples:
            names = [f"examples/{stem}_{number}.jpg" for number in range(examples[index])]
            (folder / "examples").mkdir(exist_ok=True)
            for number, name in enumerate(names):
                Image.fromarray(np.full((16, 16, 3), 40 * number, np.uint8)).save(folder / name)
            entry["examples"] = names
            entry["example_values"] = [float(len(names) - number) for number in range(len(names))]
        name = "manifest.jsonl" if shards == 1 else f"manifest.shard-{position % shards}-of-{shards}.jsonl"
        with open(folder / name, "a", encoding="utf-8") as manifest:
            manifest.write(json.dumps(entry) + "\n")
        entries.append(entry)
    return entries


def _colour(number: int) -> np.ndarray:
    return np.array([(37 * number) % 256, (91 * number) % 256, (151 * number) % 256], np.uint8)


def write_pngs(folder: Path, files: dict, colour, size: int) -> None:
    """An image of one flat colour, its transparency (a gray ramp, left to right) and the two as RGBA."""
    pixels = np.ascontiguousarray(np.broadcast_to(np.asarray(colour, np.uint8), (size, size, 3)))
    ramp = np.tile(np.linspace(0, 255, size).astype(np.uint8), (size, 1))
    for kind, picture in (("image", pixels), ("transparency", ramp), ("rgba", np.dstack([pixels, ramp]))):
        path = folder / files[kind]
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(picture).save(path)


def page_data(folder, name: str = "atlas-data") -> dict:
    html = (folder / "index.html").read_text(encoding="utf-8")
    match = re.search(rf'<script type="application/json" id="{name}">(.*?)</script>', html, re.S)
    return json.loads(match[1])


# ---- what both pages (atlas, lens) are checked for ----

# A label that would end the script element its page's data sits in, were it not escaped.
HOSTILE_LABEL = "</script><script>alert(1)</script> & <b>"


def write_two_runs(folder: Path, write, other: dict) -> None:
    """A folder whose second shard's manifest is of another run (its settings `other`): `write` is
    write_atlas or write_lens."""
    write(folder, [0, 1])
    write(folder / "x", [2], settings=other)
    (folder / "manifest.shard-1-of-2.jsonl").write_text((folder / "x" / "manifest.jsonl").read_text())


def assert_no_page(build, folder: Path, message: str) -> None:
    """`build(folder)` (build_page or build_lens_page) refuses the folder with a ValueError matching
    `message`, and writes no page."""
    with pytest.raises(ValueError, match=message):
        build(folder)
    assert not (folder / "index.html").exists()


# ---- lens folders without analysis or rendering ----

LENS_SETTINGS = {
    "kind": "lens",
    "layer": "block4",
    "nb_concepts": 3,
    "top_crops": 2,
    "seed": 0,
    "nb_steps": 3,
}
LENS_CHANNELS = 8


def write_lens(
    folder: Path,
    indices,
    shards: int = 1,
    nb_concepts: int = 3,
    top_crops: int = 2,
    size: int = 24,
    vectors: dict | None = None,
    settings: dict | None = None,
) -> list[dict]:
    """A folder as `lens(..., output=folder)` leaves it, without analysis or rendering: per class its
    three PNGs, three per concept, JPEG crops, the concept vectors and a manifest line
    (`_apps/lens/files.py:write_class`'s schema), spread over `shards` manifests.

    Class i is labelled "class i"; its images are flat colours that depend on i (its concept
    r's on i and r); its concept vectors (K, LENS_CHANNELS) are random and non-negative, seeded by
    i, unless `vectors` gives them ({index: (K, C)}); its importances fall with rank.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for position, index in enumerate(indices):
        inner = f"classes/{index:04d}"
        stems = {"image": "", "transparency": "_transparency", "rgba": "_rgba"}
        files = {kind: f"{inner}/class{suffix}.png" for kind, suffix in stems.items()}
        write_pngs(folder, files, _colour(index), size)
        rng = np.random.default_rng(index)
        concept_vectors = rng.uniform(0, 1, (nb_concepts, LENS_CHANNELS)).astype(np.float32)
        if vectors is not None and index in vectors:
            concept_vectors = np.asarray(vectors[index], np.float32)
        files["vectors"] = f"{inner}/concepts.npy"
        np.save(folder / files["vectors"], concept_vectors, allow_pickle=False)
        importance = np.array([0.5 / (rank + 1) for rank in range(nb_concepts)])
        concepts = []
        for rank in range(nb_concepts):
            concept_files = {kind: f"{inner}/concept_{rank}{suffix}.png" for kind, suffix in stems.items()}
            write_pngs(folder, concept_files, _colour(100 * index + 7 * rank + 1), size)
            crops = []
            for number in range(top_crops):
                crop = f"{inner}/crops/{rank}_{number}.jpg"
                (folder / crop).parent.mkdir(parents=True, exist_ok=True)
                colour = tuple(int(value) for value in _colour(index + 3 * rank + 11 * number + 5))
                Image.new("RGB", (16, 16), colour).save(folder / crop, quality=88)
                crops.append(crop)
            files.update({f"concept_{rank}_{kind}": name for kind, name in concept_files.items()})
            files.update({f"concept_{rank}_crop_{number}": name for number, name in enumerate(crops)})
            concepts.append(
                {
                    "rank": rank,
                    "importance": float(importance[rank]),
                    "share": float(importance[rank] / importance.sum()),
                    "value": 1.0 + rank,
                    "files": concept_files,
                    "crops": crops,
                    "crop_scores": [1.0 / (number + 1) for number in range(top_crops)],
                }
            )
        entry = {
            "kind": "lens",
            "index": index,
            "label": f"class {index}",
            "position": position,
            "settings": settings or LENS_SETTINGS,
            "seed": 0,
            "images": 5,
            "crops": 80,
            "value": index / 10,
            "files": files,
            "concepts": concepts,
        }
        name = "manifest.jsonl" if shards == 1 else f"manifest.shard-{position % shards}-of-{shards}.jsonl"
        with open(folder / name, "a", encoding="utf-8") as manifest:
            manifest.write(json.dumps(entry) + "\n")
        entries.append(entry)
    return entries


# ---- pages in a real browser (tests marked `browser`) ----

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


@contextlib.contextmanager
def chromium():
    """Headless Chromium (the system's, at $CHROMIUM or /usr/bin/chromium) driven by Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def served(folder: Path):
    """`folder` served over HTTP on a free local port, as `python -m http.server` would: yields its URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


# The units (atlas) or classes (lens) that the browser tests' pages show, and their labels.
PAGE_INDICES = [0, 1, 2, 3, 5, 8, 13]
PAGE_LABELS = [f"class {i}" for i in range(14)]
PAGE_LABELS[1], PAGE_LABELS[5] = "goldfish", "great white shark"


# The tiles' text is read as textContent: a tile off screen skips its rendering
# (content-visibility: auto), and until the next frame has laid it out its innerText is "".
_SHOWN = """tiles => tiles
    .filter(tile => !tile.hidden && getComputedStyle(tile).display !== "none")
    .map(tile => Number(tile.querySelector(".index").textContent))"""


def shown_indices(tab) -> list[int]:
    """The indices on the tiles a page (atlas or lens) shows, in the page's order."""
    return tab.eval_on_selector_all("#grid a.tile", _SHOWN)


def assert_search_filters_by_label_or_index(tab, one_shown: str) -> None:
    """A page of PAGE_INDICES and PAGE_LABELS: the search keeps the tiles whose label holds the text
    (in any case) or whose index is the number, says how many (`one_shown` when one is) or that
    none matches, and an empty search shows them all again."""
    search = tab.locator("#search")
    search.fill("gold")
    assert shown_indices(tab) == [1]
    search.fill("SHARK")
    assert shown_indices(tab) == [5]
    search.fill("13")
    assert shown_indices(tab) == [13]
    assert tab.locator("#count").inner_text() == one_shown
    search.fill("no such thing")
    assert shown_indices(tab) == []
    assert tab.locator("#empty").is_visible()
    search.fill("")
    assert shown_indices(tab) == PAGE_INDICES


def wait_for_images(tab, selector: str) -> None:
    """Until every image `selector` names has arrived."""
    tab.wait_for_function(
        f"[...document.querySelectorAll({selector!r})].every(img => img.complete && img.naturalWidth > 0)"
    )


def watch(tab) -> list[str]:
    """The problems a tab meets, as they come: console errors and warnings, uncaught errors,
    failed requests and HTTP errors."""
    problems = []
    tab.on("console", lambda message: message.type in ("error", "warning") and problems.append(message.text))
    tab.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))
    # An image request cancelled because the view moved on (net::ERR_ABORTED) is not an error.
    tab.on(
        "requestfailed",
        lambda failed: (
            "ERR_ABORTED" not in (failed.failure or "")
            and problems.append(f"request failed: {failed.url} {failed.failure}")
        ),
    )
    tab.on(
        "response",
        lambda response: response.status >= 400 and problems.append(f"{response.status} {response.url}"),
    )
    return problems


# ---- the extension points ----


def assert_implements(implementation, protocol) -> None:
    """`implementation` (a class, or a class used as a value) defines every member of `protocol`
    itself or through its bases, and each method takes the protocol's parameters by the same names."""
    members = [name for name in vars(protocol) if not name.startswith("_")]
    members += list(getattr(protocol, "__annotations__", {}))
    for name in members:
        assert hasattr(implementation, name), (
            f"{implementation.__name__} lacks {name!r} of {protocol.__name__}"
        )
        wanted = vars(protocol).get(name)
        if callable(wanted) or isinstance(wanted, (staticmethod, classmethod)):
            function = wanted.__func__ if isinstance(wanted, (staticmethod, classmethod)) else wanted
            expected = [p for p in inspect.signature(function).parameters if p not in ("self", "cls")]
            got = [
                p
                for p in inspect.signature(getattr(implementation, name)).parameters
                if p not in ("self", "cls")
            ]
            assert got == expected, (
                f"{implementation.__name__}.{name}{got} is not {protocol.__name__}.{name}{expected}"
            )
