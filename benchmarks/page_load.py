"""How fast the atlas page of 1,000 units, and the lens page of 1,000 classes x 10 concepts, build
and open in headless Chromium.

Run: python -m benchmarks.page_load [--units 1000] [--size 256] [--runs 5]
     python -m benchmarks.page_load --lens [--classes 1000] [--size 256] [--runs 5]
     (needs Chromium at $CHROMIUM or /usr/bin/chromium and `pip install playwright`)

The atlas: a synthetic atlas (the files and manifest lines `xplique-maco render` writes, with
smooth random images instead of rendered ones, in two shards), then times:
  - build_page: the first build (every thumbnail made), a rebuild with nothing new (what a
    render pays after each batch) and a rebuild after one new batch of 16 units;
  - in the browser, from file:// and from a local HTTP server, median of --runs fresh tabs:
    navigation to the `load` event, and to the page's own "atlas-ready" mark (its script has
    built every tile); how many thumbnails were fetched at load (lazy loading); a search
    keystroke, a sort and a switch of what the images show, each to the next painted frame.

The lens (--lens): a synthetic lens folder (what `lens(..., output=)` writes: per class its
three PNGs, three per concept, 8 JPEG crops per concept and its (10, 1,280) concept vectors,
images hard-linked from a pool of smooth random ones so writing it takes seconds, in two
shards), then times:
  - build_lens_page: the first build (every thumbnail, similar concepts of 10,000 concepts), a
    rebuild with nothing new, and a rebuild after one new batch of 4 classes (what `lens` pays
    after each batch); the similar concepts computed from scratch on their own;
  - in the browser as for the atlas: navigation to `load` and to the page's "lens-ready" mark,
    thumbnails fetched at load, a search keystroke, opening a class's view, following a
    permalink to a concept of another class and going back to the index, each to the next
    painted frame.

Each mode writes its part of benchmarks/results/page_load.json (the atlas at the top level, the
lens under "lens"), keeps the other's, and prints a summary.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from xplique_maco.atlas import build_page  # noqa: E402

from ._shared.internals import build_lens_page, similar_concepts  # noqa: E402
from ._shared.results import RESULTS  # noqa: E402

REPORT = RESULTS / "page_load.json"
SETTINGS = {"kind": "neuron", "layer": "predictions", "seed": 0, "nb_steps": 128, "image_shape": [256, 256]}
LENS_SETTINGS = {"kind": "lens", "layer": "top_activation", "nb_concepts": 10, "top_crops": 8, "seed": 0}
CONCEPTS, CHANNELS, TOP_CROPS, CROP_SIDE = 10, 1280, 8, 128
_POOL = 24  # distinct images the synthetic lens hard-links its files from


def smooth_image(rng: np.random.Generator, size: int) -> np.ndarray:
    """Low-frequency colour noise: compresses like a rendered image, not like a flat colour."""
    coarse = rng.uniform(0, 255, size=(8, 8, 3)).astype(np.uint8)
    return np.asarray(Image.fromarray(coarse).resize((size, size), Image.Resampling.BICUBIC))


def write_units(folder: Path, indices, size: int, shards: int = 2) -> None:
    rng = np.random.default_rng(indices[0])
    for index in indices:
        stem = f"neuron_predictions_{index:05d}"
        files = {
            "image": f"{stem}.png",
            "transparency": f"{stem}_transparency.png",
            "rgba": f"{stem}_rgba.png",
        }
        image = smooth_image(rng, size)
        alpha = smooth_image(rng, size)[..., 0]
        Image.fromarray(image).save(folder / files["image"])
        Image.fromarray(alpha).save(folder / files["transparency"])
        Image.fromarray(np.dstack([image, alpha])).save(folder / files["rgba"])
        entry = {
            "objective": f"Neuron(predictions, {index})",
            "index": index,
            "position": index,
            "settings": SETTINGS,
            "seed": 0,
            "value": float(rng.normal(10, 3)),
            "files": files,
        }
        with open(
            folder / f"manifest.shard-{index % shards}-of-{shards}.jsonl", "a", encoding="utf-8"
        ) as manifest:
            manifest.write(json.dumps(entry) + "\n")


def timed(function, *args) -> float:
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


_INTERACTIONS = """async () => {
  const frame = () => new Promise((done) => requestAnimationFrame(() => setTimeout(done, 0)));
  const time = async (action) => { const start = performance.now(); action(); await frame(); return performance.now() - start; };
  const search = document.getElementById("search"), sort = document.getElementById("sort");
  const type = (text) => { search.value = text; search.dispatchEvent(new Event("input")); };
  const choose = (value) => { sort.value = value; sort.dispatchEvent(new Event("change")); };
  const mode = (name) => document.querySelector('#modes button[data-mode="' + name + '"]').click();
  return {
    search_ms: await time(() => type("12")),
    clear_search_ms: await time(() => type("")),
    sort_ms: await time(() => choose("value-desc")),
    switch_ms: await time(() => mode("transparency")),
  };
}"""

_LENS_INTERACTIONS = """async () => {
  const frame = () => new Promise((done) => requestAnimationFrame(() => setTimeout(done, 0)));
  const time = async (action) => { const start = performance.now(); await action(); await frame(); return performance.now() - start; };
  const search = document.getElementById("search");
  const type = (text) => { search.value = text; search.dispatchEvent(new Event("input")); };
  const go = (hash) => new Promise((done) => { addEventListener("hashchange", done, { once: true }); location.hash = hash; });
  const indices = [...document.querySelectorAll("#grid a.class")].map((tile) => tile.dataset.index);
  const middle = indices[Math.floor(indices.length / 2)], other = indices[Math.floor(indices.length / 3)];
  return {
    search_ms: await time(() => type("12")),
    clear_search_ms: await time(() => type("")),
    open_class_ms: await time(() => go("#" + middle)),
    open_concept_of_another_class_ms: await time(() => go("#" + other + "/7")),
    back_to_index_ms: await time(() => go("")),
  };
}"""

_TIMING = """([mark, tiles]) => { const navigation = performance.getEntriesByType("navigation")[0];
    const ready = performance.getEntriesByName(mark)[0];
    const thumbnails = performance.getEntriesByType("resource").filter((entry) => entry.name.includes("thumbnails/"));
    return { load_ms: navigation.loadEventEnd, ready_ms: ready.startTime,
             html_kb: navigation.decodedBodySize / 1024, thumbnails_at_load: thumbnails.length,
             tiles: document.querySelectorAll(tiles).length }; }"""


def measure(browser, url: str, runs: int, lens: bool = False) -> dict:
    mark, tiles = ("lens-ready", "#grid a.class") if lens else ("atlas-ready", "a.unit")
    samples = []
    for _ in range(runs):
        tab = browser.new_page(viewport={"width": 1280, "height": 900})
        errors = []
        tab.on("pageerror", lambda error, errors=errors: errors.append(str(error)))
        tab.on(
            "console", lambda message, errors=errors: message.type == "error" and errors.append(message.text)
        )
        tab.goto(url, wait_until="load")
        timing = tab.evaluate(_TIMING, [mark, tiles])
        timing.update(tab.evaluate(_LENS_INTERACTIONS if lens else _INTERACTIONS))
        if errors:
            raise RuntimeError(f"the page logged errors: {errors}")
        samples.append(timing)
        tab.close()
    return {key: statistics.median(sample[key] for sample in samples) for key in samples[0]}


def write_lens_classes(folder: Path, indices, size: int, shards: int = 2) -> None:
    """Classes as `lens` writes them (`_apps/lens/files.py:write_class`), images from a pool."""
    pool = folder.parent / f"{folder.name}-pool"
    if not pool.is_dir():
        _write_pool(pool, size)
    rng = np.random.default_rng(indices[0])
    stems = {"image": "", "transparency": "_transparency", "rgba": "_rgba"}
    for index in indices:
        inner = f"classes/{index:04d}"
        (folder / inner / "crops").mkdir(parents=True, exist_ok=True)
        files = {kind: f"{inner}/class{suffix}.png" for kind, suffix in stems.items()}
        picked = int(rng.integers(_POOL))
        for kind, name in files.items():
            _link(pool / f"{picked}{stems[kind]}.png", folder / name)
        files["vectors"] = f"{inner}/concepts.npy"
        vectors = rng.gamma(0.5, 1.0, (CONCEPTS, CHANNELS)).astype(np.float32)  # sparse-ish, like NMF's
        np.save(folder / files["vectors"], vectors, allow_pickle=False)
        importance = np.sort(rng.uniform(0.01, 0.5, CONCEPTS))[::-1]
        concepts = []
        for rank in range(CONCEPTS):
            concept_files = {kind: f"{inner}/concept_{rank}{suffix}.png" for kind, suffix in stems.items()}
            picked = int(rng.integers(_POOL))
            for kind, name in concept_files.items():
                _link(pool / f"{picked}{stems[kind]}.png", folder / name)
            crops = [f"{inner}/crops/{rank}_{number}.jpg" for number in range(TOP_CROPS)]
            for name in crops:
                _link(pool / f"crop_{int(rng.integers(4 * _POOL))}.jpg", folder / name)
            files.update({f"concept_{rank}_{kind}": name for kind, name in concept_files.items()})
            files.update({f"concept_{rank}_crop_{number}": name for number, name in enumerate(crops)})
            concepts.append(
                {
                    "rank": rank,
                    "importance": float(importance[rank]),
                    "share": float(importance[rank] / importance.sum()),
                    "value": float(rng.normal(3, 1)),
                    "files": concept_files,
                    "crops": crops,
                    "crop_scores": sorted(rng.uniform(0, 2, TOP_CROPS).tolist(), reverse=True),
                }
            )
        entry = {
            "kind": "lens",
            "index": index,
            "label": f"class {index}",
            "position": index,
            "settings": LENS_SETTINGS,
            "seed": 0,
            "images": 50,
            "crops": 800,
            "value": float(rng.normal(10, 3)),
            "files": files,
            "concepts": concepts,
        }
        with open(
            folder / f"manifest.shard-{index % shards}-of-{shards}.jsonl", "a", encoding="utf-8"
        ) as manifest:
            manifest.write(json.dumps(entry) + "\n")


def _write_pool(pool: Path, size: int) -> None:
    pool.mkdir()
    rng = np.random.default_rng(0)
    for number in range(_POOL):
        image, alpha = smooth_image(rng, size), smooth_image(rng, size)[..., 0]
        Image.fromarray(image).save(pool / f"{number}.png")
        Image.fromarray(alpha).save(pool / f"{number}_transparency.png")
        Image.fromarray(np.dstack([image, alpha])).save(pool / f"{number}_rgba.png")
    for number in range(4 * _POOL):
        Image.fromarray(smooth_image(rng, CROP_SIDE)).save(pool / f"crop_{number}.jpg", quality=88)


def _link(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # a file system without hard links
        target.write_bytes(source.read_bytes())


def similar_from_scratch(folder: Path) -> float:
    """The similar concepts of every class of the folder, with nothing kept: the blocks' cost alone."""
    paths = sorted(folder.glob("classes/*/concepts.npy"))
    vectors = [np.load(path) for path in paths]
    start = time.perf_counter()
    similar_concepts(
        [int(path.parent.name) for path in paths],
        [(0, 0)] * len(paths),
        [len(array) for array in vectors],
        lambda: vectors,
    )
    return time.perf_counter() - start


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # a tab closed while an image was on its way: not the page's doing


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lens", action="store_true", help="the lens page instead of the atlas page")
    parser.add_argument("--units", type=int, default=1000, help="units of the atlas")
    parser.add_argument("--classes", type=int, default=1000, help="classes of the lens")
    parser.add_argument("--size", type=int, default=256, help="side of the synthetic PNGs")
    parser.add_argument("--runs", type=int, default=5, help="fresh tabs per way of opening the page")
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name) / "output"
        folder.mkdir()
        report = _lens(folder, args) if args.lens else _atlas(folder, args)
    previous = json.loads(REPORT.read_text(encoding="utf-8")) if REPORT.is_file() else {}
    if args.lens:
        report = {**previous, "lens": report}
    elif "lens" in previous:
        report["lens"] = previous["lens"]
    RESULTS.mkdir(exist_ok=True)
    REPORT.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report["lens"] if args.lens else report, indent=2))


def _atlas(folder: Path, args) -> dict:
    start = time.perf_counter()
    write_units(folder, list(range(args.units)), args.size)
    print(
        f"synthetic atlas of {args.units} units ({args.size} px) written in {time.perf_counter() - start:.1f} s"
    )
    labels = [f"class {index}" for index in range(args.units + 16)]
    build = {
        "first_build_s": timed(build_page, folder, labels),
        "rebuild_nothing_new_s": timed(build_page, folder),
    }
    write_units(folder, list(range(args.units, args.units + 16)), args.size)
    build["rebuild_after_16_new_s"] = timed(build_page, folder)
    opened, version = _open(folder, args, lens=False)
    return {
        "units": args.units + 16,
        "image_size": args.size,
        "runs": args.runs,
        "chromium": version,
        "cpus": os.cpu_count(),
        "build": {key: round(value, 3) for key, value in build.items()},
        "browser": opened,
    }


def _lens(folder: Path, args) -> dict:
    start = time.perf_counter()
    write_lens_classes(folder, list(range(args.classes)), args.size)
    print(
        f"synthetic lens of {args.classes} classes x {CONCEPTS} concepts ({args.size} px) written in "
        f"{time.perf_counter() - start:.1f} s"
    )
    build = {
        "first_build_s": timed(build_lens_page, folder),
        "rebuild_nothing_new_s": timed(build_lens_page, folder),
    }
    write_lens_classes(folder, list(range(args.classes, args.classes + 4)), args.size)
    build["rebuild_after_4_new_s"] = timed(build_lens_page, folder)
    build["similar_from_scratch_s"] = similar_from_scratch(folder)
    opened, version = _open(folder, args, lens=True)
    return {
        "classes": args.classes + 4,
        "concepts": (args.classes + 4) * CONCEPTS,
        "channels": CHANNELS,
        "top_crops": TOP_CROPS,
        "image_size": args.size,
        "runs": args.runs,
        "chromium": version,
        "cpus": os.cpu_count(),
        "load_average": round(os.getloadavg()[0], 1),
        "build": {key: round(value, 3) for key, value in build.items()},
        "browser": opened,
    }


def _open(folder: Path, args, lens: bool) -> tuple[dict, str]:
    """The page's timings from file:// and over HTTP, and Chromium's version."""
    from playwright.sync_api import sync_playwright

    handler = functools.partial(_Quiet, directory=str(folder))
    server = _QuietServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
            opened = {
                "file": measure(browser, (folder / "index.html").as_uri(), args.runs, lens),
                "http": measure(
                    browser, f"http://127.0.0.1:{server.server_address[1]}/index.html", args.runs, lens
                ),
            }
            version = browser.version
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
    rounded = {way: {key: round(value, 1) for key, value in values.items()} for way, values in opened.items()}
    return rounded, version


if __name__ == "__main__":
    main()
