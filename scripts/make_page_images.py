"""Makes the screenshots of the atlas page (docs/images/page_*.png): a real render, then headless Chromium.

    python scripts/make_page_images.py                  # renders 24 ImageNet classes (minutes on 2 CPUs)
    python scripts/make_page_images.py --folder atlas/  # screenshots of an atlas folder you already have

Needs the zoo extra, Chromium ($CHROMIUM or /usr/bin/chromium) and `pip install playwright`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

DOCS_IMAGES = Path(__file__).resolve().parent.parent / "docs" / "images"
# Classes whose objects one recognises: goldfish, ostrich, jellyfish, peafowl, flamingo, lion, monarch, ...
CLASSES = "1,9,107,84,130,291,323,409,417,430,508,530,574,717,779,817,920,937,949,950,951,963,967,980"
RENDER = ["--steps", "64", "--image-size", "160", "--crops", "6", "--model-input-size", "160", "160"]


def render(folder: Path) -> None:
    command = [sys.executable, "-m", "xplique_maco.cli", "render", "zoo:efficientnet_lite0", "--layer"]
    command += ["predictions", "--indices", CLASSES, *RENDER, "--batch-size", "8", "--output", str(folder)]
    print("  $", " ".join(["xplique-maco", *command[3:-1], "atlas/"]), flush=True)
    subprocess.run(command, check=True)


def save(path: Path, png: bytes) -> None:
    """A screenshot as a palette PNG: the page's flat colours survive, the file stays small."""
    with tempfile.NamedTemporaryFile(suffix=".png") as raw:
        raw.write(png)
        raw.flush()
        Image.open(raw.name).convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT).save(
            path, optimize=True
        )
    print(f"  wrote {path} ({path.stat().st_size // 1024} KB)", flush=True)


def screenshots(folder: Path, chromium: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        tab = browser.new_page(viewport={"width": 1280, "height": 760}, device_scale_factor=1)
        tab.goto((folder / "index.html").as_uri(), wait_until="load")

        def settle():
            tab.wait_for_function(
                "[...document.querySelectorAll('a.unit:not([hidden]) img')].slice(0, 24)"
                ".every(img => img.complete && img.naturalWidth > 0)"
            )

        settle()
        save(DOCS_IMAGES / "page_grid.png", tab.screenshot())
        tab.get_by_role("button", name="Transparency", exact=True).click()
        tab.select_option("#sort", "value-desc")
        settle()
        save(DOCS_IMAGES / "page_transparency.png", tab.screenshot())
        tab.get_by_role("button", name="With transparency", exact=True).click()
        tab.select_option("#sort", "index")
        tab.locator("#search").fill("clock")
        settle()
        save(DOCS_IMAGES / "page_search.png", tab.screenshot())
        tab.locator("#search").fill("")
        tab.locator('a.unit[data-index="967"]').click()
        tab.wait_for_function("document.getElementById('detail-image').naturalWidth > 0")
        save(DOCS_IMAGES / "page_detail.png", tab.screenshot())
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--folder", type=Path, help="an atlas folder to photograph instead of rendering one")
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
    args = parser.parse_args()
    DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
    if args.folder:
        screenshots(args.folder, args.chromium)
        return
    with tempfile.TemporaryDirectory() as name:
        render(Path(name))
        screenshots(Path(name), args.chromium)


if __name__ == "__main__":
    main()
