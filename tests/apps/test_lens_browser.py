"""The lens page in a real browser (headless Chromium via Playwright), from file:// and over HTTP.

Left out of the default run: `pytest -m browser` runs it (conftest.py's `browser` fixture says what
it needs).
"""

import numpy as np
import pytest
from helpers import (
    LENS_CHANNELS,
    PAGE_INDICES,
    PAGE_LABELS,
    assert_search_filters_by_label_or_index,
    shown_indices,
    wait_for_images,
    write_lens,
)

from xplique_maco._apps.lens.page import build_lens_page

pytestmark = pytest.mark.browser

TOP_CROPS = 3


@pytest.fixture(scope="module")
def page_folder(tmp_path_factory):
    """The lens of 7 classes in 2 shards that the `page` fixture opens, where goldfish's concept 2
    and the shark's concept 0 are one direction (each other's most similar concept)."""
    folder = tmp_path_factory.mktemp("lens")
    rng = np.random.default_rng(1234)
    vectors = {index: rng.uniform(0, 1, (3, LENS_CHANNELS)) for index in (1, 5)}
    vectors[5][0] = 2 * vectors[1][2]
    write_lens(folder, PAGE_INDICES, shards=2, top_crops=TOP_CROPS, vectors=vectors)
    build_lens_page(folder, labels=PAGE_LABELS)
    return folder


def open_link(tab, fragment: str):
    """Opens `index.html#fragment` as a link from elsewhere would (a fresh load)."""
    tab.goto(f"{tab.base}/index.html#{fragment}")
    tab.wait_for_function("!document.getElementById('view').hidden")


def test_every_class_is_listed_with_its_thumbnail_and_label(page):
    assert page.evaluate("document.compatMode") == "CSS1Compat"  # the marker comment keeps standards mode
    assert shown_indices(page) == PAGE_INDICES
    labels = page.eval_on_selector_all("#grid .label", "labels => labels.map(label => label.textContent)")
    assert labels[1] == "goldfish" and labels[4] == "great white shark"
    assert page.locator("#count").inner_text() == "All 7 classes shown"
    assert page.locator("#summary").inner_text().startswith("7 classes · 21 concepts · layer block4")
    wait_for_images(page, "#grid img")
    sources = page.eval_on_selector_all("#grid img", "images => images.map(img => img.getAttribute('src'))")
    assert sources[0] == "thumbnails/classes/0000/class_rgba.webp"
    assert page.eval_on_selector_all("#grid img", "images => images.every(img => img.loading === 'lazy')")
    assert page.locator("#view").is_hidden()


def test_search_filters_by_label_or_index(page):
    assert_search_filters_by_label_or_index(page, "1 of 7 classes shown")


def test_a_class_view_shows_its_concepts_with_images_crops_and_importances(page, page_folder):
    page.locator('#grid a.class[data-index="5"]').click()
    page.wait_for_function("location.hash === '#5' && !document.getElementById('view').hidden")
    assert page.locator("#grid").is_hidden()
    assert page.locator("#view-title").inner_text() == "5 · great white shark"
    assert page.locator("#view-image").get_attribute("src") == "classes/0005/class_rgba.png"  # full size
    page.wait_for_function("document.getElementById('view-image').naturalWidth === 24")
    facts = page.locator("#view-facts").inner_text()
    assert "class logit (end of its rendering)\t0.50" in facts and "manifest.shard-0-of-2.jsonl" in facts
    concepts = page.locator("#concepts > li.concept")
    assert concepts.count() == 3
    assert page.eval_on_selector_all("#concepts > li", "items => items.map(item => item.dataset.rank)") == [
        "0",
        "1",
        "2",
    ]
    wait_for_images(page, "#concepts img")
    first = concepts.nth(0)
    assert first.locator(".picture img").get_attribute("src") == "thumbnails/classes/0005/concept_0_rgba.webp"
    full = first.locator("a.picture").get_attribute("href")
    assert full == "classes/0005/concept_0_rgba.png" and (page_folder / full).is_file()
    crops = first.locator(".crops img")
    assert crops.count() == TOP_CROPS
    assert crops.nth(1).get_attribute("src") == "classes/0005/crops/0_1.jpg"
    # Importances 1/2, 1/4, 1/6 of the total 11/12: shares 55%, 27%, 18%, drawn as bars.
    shares = [concepts.nth(rank).locator(".importance").inner_text() for rank in range(3)]
    assert [text.split(" ")[0] for text in shares] == ["55%", "27%", "18%"]
    assert "Sobol total index 0.50" in shares[0]
    widths = page.eval_on_selector_all(
        "#concepts .bar span",
        "bars => bars.map(bar => bar.getBoundingClientRect().width / bar.parentElement.getBoundingClientRect().width)",
    )
    assert widths == pytest.approx([6 / 11, 3 / 11, 2 / 11], abs=0.01)
    assert first.locator(".similar a").count() == 3
    page.keyboard.press("Escape")  # back to the index, as it was
    page.wait_for_function("document.getElementById('grid').offsetParent !== null")
    assert shown_indices(page) == PAGE_INDICES


def test_a_permalink_opens_the_right_concept(page):
    open_link(page, "13/2")
    assert page.locator("#view-title").inner_text() == "13 · class 13"
    current = page.locator("#concepts > li.current")
    assert current.count() == 1 and current.get_attribute("data-rank") == "2"
    assert current.locator("a.permalink").get_attribute("href") == "#13/2"
    assert current.is_visible() and current.bounding_box()["y"] < 900  # scrolled into view
    open_link(page, "2")
    assert page.locator("#view-title").inner_text() == "2 · class 2"
    assert page.locator("#concepts > li.current").count() == 0
    page.goto(f"{page.base}/index.html#99")  # no such class: the index, and a note
    assert page.locator("#unknown").inner_text().startswith("This page has no class 99")
    assert shown_indices(page) == PAGE_INDICES


def test_similar_concept_links_land_on_the_other_class(page):
    open_link(page, "1/2")
    link = page.locator("#concepts > li.current .similar a").first
    assert link.get_attribute("href") == "#5/0"
    assert link.inner_text() == "5 · great white shark · concept 0 · 1.00"
    link.click()
    page.wait_for_function("location.hash === '#5/0'")
    assert page.locator("#view-title").inner_text() == "5 · great white shark"
    current = page.locator("#concepts > li.current")
    assert current.get_attribute("data-rank") == "0"
    back = current.locator(".similar a").first
    assert back.get_attribute("href") == "#1/2"
    for other in page.eval_on_selector_all(
        "#concepts .similar a", "links => links.map(link => link.getAttribute('href'))"
    ):
        assert not other.startswith("#5/")  # only other classes
    back.click()
    page.wait_for_function("location.hash === '#1/2'")
    assert page.locator("#view-title").inner_text() == "1 · goldfish"
    page.go_back()  # the browser's history walks the links back
    page.wait_for_function("location.hash === '#5/0'")
    assert page.locator("#view-title").inner_text() == "5 · great white shark"


def test_previous_and_next_walk_the_classes(page):
    open_link(page, "3")
    assert page.locator("#previous").inner_text() == "← 2 · class 2"
    page.keyboard.press("ArrowRight")
    page.wait_for_function("location.hash === '#5'")
    page.locator("#back").click()
    page.wait_for_function("location.hash === '' || location.hash === '#'")
    assert page.locator("#view").is_hidden()
    open_link(page, "0")
    assert page.locator("#previous").is_hidden()
