"""How fast the atlas page of 1,000 units builds and opens in headless Chromium.

Run: python -m benchmarks.page_load [--units 1000] [--size 256] [--runs 5]
     (needs Chromium at $CHROMIUM or /usr/bin/chromium and `pip install playwright`)

Builds a synthetic atlas (the files and manifest lines `xplique-maco render` writes, with
smooth random images instead of rendered ones, in two shards), then times:
  - build_page: the first build (every thumbnail made), a rebuild with nothing new (what a
    render pays after each batch) and a rebuild after one new batch of 16 units;
  - in the browser, from file:// and from a local HTTP server, median of --runs fresh tabs:
    navigation to the `load` event, and to the page's own "atlas-ready" mark (its script has
    built every tile); how many thumbnails were fetched at load (lazy loading); a search
    keystroke, a sort and a switch of what the images show, each to the next painted frame.
Writes benchmarks/results/page_load.json and prints a summary.
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

from ._shared.results import RESULTS  # noqa: E402

REPORT = RESULTS / "page_load.json"
SETTINGS = {"kind": "neuron", "layer": "predictions", "seed": 0, "nb_steps": 128, "image_shape": [256, 256]}


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


def measure(browser, url: str, runs: int) -> dict:
    samples = []
    for _ in range(runs):
        tab = browser.new_page(viewport={"width": 1280, "height": 900})
        errors = []
        tab.on("pageerror", lambda error, errors=errors: errors.append(str(error)))
        tab.on(
            "console", lambda message, errors=errors: message.type == "error" and errors.append(message.text)
        )
        tab.goto(url, wait_until="load")
        timing = tab.evaluate(
            """() => { const navigation = performance.getEntriesByType("navigation")[0];
            const ready = performance.getEntriesByName("atlas-ready")[0];
            const thumbnails = performance.getEntriesByType("resource").filter((entry) => entry.name.includes("thumbnails/"));
            return { load_ms: navigation.loadEventEnd, ready_ms: ready.startTime,
                     html_kb: navigation.decodedBodySize / 1024, thumbnails_at_load: thumbnails.length,
                     tiles: document.querySelectorAll("a.unit").length }; }"""
        )
        timing.update(tab.evaluate(_INTERACTIONS))
        if errors:
            raise RuntimeError(f"the page logged errors: {errors}")
        samples.append(timing)
        tab.close()
    return {key: statistics.median(sample[key] for sample in samples) for key in samples[0]}


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--units", type=int, default=1000)
    parser.add_argument("--size", type=int, default=256, help="side of the synthetic PNGs")
    parser.add_argument("--runs", type=int, default=5, help="fresh tabs per way of opening the page")
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
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
        handler = functools.partial(_Quiet, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
                opened = {
                    "file": measure(browser, (folder / "index.html").as_uri(), args.runs),
                    "http": measure(
                        browser, f"http://127.0.0.1:{server.server_address[1]}/index.html", args.runs
                    ),
                }
                version = browser.version
                browser.close()
        finally:
            server.shutdown()
            server.server_close()
    report = {
        "units": args.units + 16,
        "image_size": args.size,
        "runs": args.runs,
        "chromium": version,
        "cpus": os.cpu_count(),
        "build": {key: round(value, 3) for key, value in build.items()},
        "browser": {
            way: {key: round(value, 1) for key, value in values.items()} for way, values in opened.items()
        },
    }
    RESULTS.mkdir(exist_ok=True)
    REPORT.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
