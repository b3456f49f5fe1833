"""Makes the screenshots of docs/callbacks.md: TensorBoard's tabs and the notebook preview.

    python scripts/make_callback_images.py                   # all three (about 5 min on 2 CPUs)
    python scripts/make_callback_images.py --only tensorboard
    python scripts/make_callback_images.py --only notebook

Writes docs/images/tensorboard_images.png and tensorboard_scalars.png (a run of EfficientNet-Lite0
logged by the `TensorBoard` callback, shown by a local `tensorboard` server) and
docs/images/notebook_preview.png (a notebook cell run with `verbose=1`, which adds the `Preview`).
Needs the zoo extra, `pip install tensorboard nbconvert playwright` (none is a dependency of the
library) and Chromium ($CHROMIUM or /usr/bin/chromium).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

DOCS_IMAGES = Path(__file__).resolve().parent.parent / "docs" / "images"
VIEWPORT = {"width": 1280, "height": 820}  # the Images tab's two rows of 224 px images
# goldfish, flamingo, monarch, banana: logits of EfficientNet-Lite0.
CLASSES = [1, 130, 323, 954]
EVERY = 4  # 9 points per curve over 32 steps, and 9 positions of the images' step slider

NOTEBOOK_CELLS = [
    "from xplique_maco import Neuron, maco, zoo\n\nmodel = zoo.efficientnet_lite0()",
    f"images, transparencies = maco(\n    Neuron(model, -1, {CLASSES}), nb_steps=24, image_shape=(160, 160), seed=0, verbose=1\n)",
]


def save(path: Path, png: bytes) -> None:
    """A screenshot as a palette PNG when that is smaller: flat page colours survive it."""
    with tempfile.NamedTemporaryFile(suffix=".png") as raw:
        raw.write(png)
        raw.flush()
        picture = Image.open(raw.name).convert("RGB")
        picture.save(path, optimize=True)
        full = path.stat().st_size
        picture.quantize(256, method=Image.Quantize.MEDIANCUT).save(raw.name, format="PNG", optimize=True)
        if Path(raw.name).stat().st_size < full:
            path.write_bytes(Path(raw.name).read_bytes())
    print(f"  wrote {path} ({path.stat().st_size // 1024} KB)", flush=True)


def launch(playwright, chromium: str):
    return playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])


# ---- TensorBoard ----


def log_run(log_dir: Path) -> None:
    """A short run of four classes, logged every `EVERY` steps."""
    from xplique_maco import Neuron, TensorBoard, maco, zoo

    model = zoo.efficientnet_lite0()
    start = time.time()
    maco(
        Neuron(model, -1, CLASSES),
        nb_steps=32,
        image_shape=(224, 224),
        seed=0,
        callbacks=[TensorBoard(log_dir / "maco", every=EVERY)],
        verbose=0,
    )
    print(f"  logged the run in {log_dir} ({time.time() - start:.0f} s)", flush=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_tensorboard(log_dir: Path) -> tuple[subprocess.Popen, str]:
    """`tensorboard --logdir log_dir` on a free local port, once it answers."""
    port = free_port()
    command = [sys.executable, "-m", "tensorboard.main", "--logdir", str(log_dir)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--reload_interval", "1"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"tensorboard exited with code {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/data/runs", timeout=2) as answer:
                if b"maco" in answer.read():
                    return server, url
        except OSError:
            pass
        time.sleep(1)
    server.terminate()
    raise RuntimeError("tensorboard did not answer within 2 minutes")


def tensorboard_screenshots(log_dir: Path, chromium: str) -> None:
    from playwright.sync_api import sync_playwright

    server, url = start_tensorboard(log_dir)
    try:
        with sync_playwright() as playwright:
            browser = launch(playwright, chromium)
            tab = browser.new_page(viewport=VIEWPORT, device_scale_factor=1)
            images_tab(tab, url)
            scalars_tab(tab, url)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)


def images_tab(tab, url: str) -> None:
    """The Images tab at the images' own size (224 px): the four images of the last step."""
    tab.goto(f"{url}/#images", wait_until="load")
    tab.get_by_text("image/0003", exact=True).first.wait_for()
    tab.get_by_text("Show actual image size").click()
    loaded(tab, 8)  # four images, four transparencies
    save(DOCS_IMAGES / "tensorboard_images.png", tab.screenshot())


def loaded(tab, count: int) -> None:
    """Waits until `count` images of the page (inside its shadow roots too) are loaded."""
    images = tab.locator("img")
    deadline = time.time() + 60
    while time.time() < deadline:
        done = images.evaluate_all("images => images.filter(i => i.complete && i.naturalWidth > 0).length")
        if done >= count:
            tab.wait_for_timeout(1_000)
            return
        tab.wait_for_timeout(500)
    raise RuntimeError(f"TensorBoard showed fewer than {count} images within a minute")


def scalars_tab(tab, url: str) -> None:
    """The Scalars tab with no smoothing and each chart fitted to all its points."""
    tab.goto(f"{url}/#scalars&_smoothingWeight=0", wait_until="load")
    tab.get_by_text("objective/0003", exact=True).first.wait_for()
    tab.get_by_text("Ignore outliers in chart scaling").click()
    fit = tab.locator("[title='Fit domain to data']")
    for index in range(fit.count()):
        fit.nth(index).click()
    tab.wait_for_timeout(2_000)
    save(DOCS_IMAGES / "tensorboard_scalars.png", tab.screenshot())


# ---- the notebook preview ----


def run_notebook(path: Path) -> None:
    """Runs the cells in a fresh kernel (this Python: jupyter_client starts `python` kernels with
    sys.executable) and saves the executed notebook."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell) for cell in NOTEBOOK_CELLS])
    start = time.time()
    resources = {"metadata": {"path": str(path.parent)}}  # the kernel runs in the notebook's folder
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources=resources).execute()
    nbformat.write(notebook, path)
    print(f"  ran the notebook ({time.time() - start:.0f} s)", flush=True)


def as_shown(outputs: list) -> list:
    """The outputs as Jupyter shows them: adjacent stdout texts joined, each line as its last
    carriage return left it (the progress bar redraws its line), TensorFlow's start-up logs
    on stderr left out."""
    shown = []
    for output in outputs:
        if output.output_type == "stream" and output.name == "stderr":
            continue
        if output.output_type == "stream" and shown and shown[-1].output_type == "stream":
            shown[-1].text += output.text
        else:
            shown.append(output)
    for output in shown:
        if output.output_type == "stream":
            lines = output.text.replace("\b", "").split("\n")
            output.text = "\n".join(line.rsplit("\r", 1)[-1] for line in lines)
    return shown


def notebook_screenshot(path: Path, chromium: str) -> None:
    import nbformat
    from nbconvert import HTMLExporter
    from playwright.sync_api import sync_playwright

    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        cell.outputs = as_shown(cell.outputs)
    html, _ = HTMLExporter().from_notebook_node(notebook)
    page = path.with_suffix(".html")
    page.write_text(html)
    with sync_playwright() as playwright:
        browser = launch(playwright, chromium)
        tab = browser.new_page(viewport={"width": 960, "height": 600}, device_scale_factor=1)
        # Offline: the page's scripts from CDNs (MathJax, require.js) are not needed.
        tab.route("http*://**", lambda route: route.abort())
        tab.goto(page.as_uri(), wait_until="load")
        cell = tab.locator(".jp-Cell").last
        cell.locator("img").wait_for()
        save(DOCS_IMAGES / "notebook_preview.png", cell.screenshot())
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", choices=["tensorboard", "notebook"], help="make only these screenshots")
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
    args = parser.parse_args()
    DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        if args.only in (None, "tensorboard"):
            log_run(folder / "logs")
            tensorboard_screenshots(folder / "logs", args.chromium)
        if args.only in (None, "notebook"):
            run_notebook(folder / "preview.ipynb")
            notebook_screenshot(folder / "preview.ipynb", args.chromium)


if __name__ == "__main__":
    main()
