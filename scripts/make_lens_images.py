"""Makes the screenshots of the lens page (docs/images/lens_index.png, lens_class.png) with headless Chromium.

    python scripts/make_lens_images.py --folder lens/              # the index, and the first class's view
    python scripts/make_lens_images.py --folder lens/ --class 281  # that class's view

The folder is one `lens(..., output=...)` wrote; its page is rebuilt first (`build_lens_page`).
Needs Chromium ($CHROMIUM or /usr/bin/chromium) and `pip install playwright`.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from make_page_images import DOCS_IMAGES, save

# Every image the view shows on screen has arrived (lazy ones below the fold are not waited for).
_ON_SCREEN_LOADED = """selector => [...document.querySelectorAll(selector)]
    .filter(img => img.offsetParent !== null && img.getBoundingClientRect().top < innerHeight)
    .every(img => img.complete && img.naturalWidth > 0)"""


def screenshots(folder: Path, index: int | None, chromium: str, target: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        tab = browser.new_page(viewport={"width": 1280, "height": 760}, device_scale_factor=1)
        tab.goto((folder / "index.html").as_uri(), wait_until="load")
        if index is None:
            index = int(tab.locator("#grid a.class").first.get_attribute("data-index"))
        elif not tab.locator(f'#grid a.class[data-index="{index}"]').count():
            raise SystemExit(f"The lens page of {folder} has no class {index}.")
        tab.wait_for_function(_ON_SCREEN_LOADED, arg="#grid img")
        save(target / "lens_index.png", tab.screenshot())
        tab.set_viewport_size({"width": 1280, "height": 1000})  # the class and its first concepts
        tab.evaluate("index => { location.hash = '#' + index; }", index)
        tab.wait_for_function("!document.getElementById('view').hidden")
        tab.wait_for_function(_ON_SCREEN_LOADED, arg="#view img")
        save(target / "lens_class.png", tab.screenshot())
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--folder", type=Path, required=True, help="a folder written by `lens`")
    parser.add_argument(
        "--class", dest="index", type=int, help="the class whose view to photograph (default: the first)"
    )
    parser.add_argument("--output", type=Path, default=DOCS_IMAGES, help="where the PNGs go")
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
    args = parser.parse_args()
    from xplique_maco._apps.lens.page import build_lens_page

    build_lens_page(args.folder)
    args.output.mkdir(parents=True, exist_ok=True)
    screenshots(args.folder.resolve(), args.index, args.chromium, args.output)


if __name__ == "__main__":
    main()
