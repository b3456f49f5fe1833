"""Fixtures shared by the tests: tiny models (built in helpers.py), inputs, a saved model file, and
the pages (atlas, lens) opened in a real browser."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


import numpy as np  # noqa: E402
import pytest  # noqa: E402
from helpers import chromium, conv_classifier, served, token_model, watch  # noqa: E402


@pytest.fixture(scope="session")
def model():
    return conv_classifier()


@pytest.fixture(scope="session")
def other_model():
    return conv_classifier(name="other_cnn")


@pytest.fixture(scope="session")
def tokens():
    return token_model()


@pytest.fixture(scope="module")
def inputs():
    """Three random 32 x 32 RGB images in [0, 1], the tiny models' input size."""
    return np.random.default_rng(0).uniform(size=(3, 32, 32, 3)).astype("float32")


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """conv_classifier() saved as a .keras file, for the command line."""
    path = tmp_path_factory.mktemp("models") / "tiny.keras"
    conv_classifier().save(path)
    return path


# ---- the pages in headless Chromium (tests marked `browser`): a module gives its `page_folder` ----


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium: the system's (Debian's `chromium` package, at $CHROMIUM or
    /usr/bin/chromium), driven by the `playwright` package. Left out of the default run:
    `pytest -m browser` runs the tests that use it."""
    with chromium() as browser:
        yield browser


@pytest.fixture(scope="module")
def server(page_folder):
    """The module's `page_folder` served over HTTP, as `python -m http.server` would: its URL."""
    with served(page_folder) as url:
        yield url


@pytest.fixture(params=["file", "http"])
def page(request, page_folder, browser):
    """The index.html of the module's `page_folder` opened from the file system or from
    `python -m http.server`, in a tab that knows its `base`; no error may be logged."""
    base = page_folder.as_uri() if request.param == "file" else request.getfixturevalue("server")
    tab = browser.new_page(viewport={"width": 1280, "height": 900})
    problems = watch(tab)
    tab.base = base
    tab.goto(f"{base}/index.html")
    tab.wait_for_load_state("load")
    yield tab
    assert problems == []  # no console error, no failed request
    tab.close()
