"""The atlas page in a real browser (headless Chromium via Playwright), from file:// and over HTTP.

Left out of the default run: `pytest -m browser` runs it (conftest.py's `browser` fixture says what
it needs).
"""

import io
import re

import numpy as np
import pytest
from helpers import (
    PAGE_INDICES,
    PAGE_LABELS,
    assert_search_filters_by_label_or_index,
    shown_indices,
    wait_for_images,
    write_atlas,
)
from PIL import Image

from xplique_maco._outputs.page import build_page

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def page_folder(tmp_path_factory):
    """The atlas of the units PAGE_INDICES, with PAGE_LABELS, that the `page` fixture opens."""
    folder = tmp_path_factory.mktemp("atlas")
    write_atlas(folder, PAGE_INDICES, shards=2, examples={5: 3})
    build_page(folder, labels=PAGE_LABELS)
    return folder


def wait_for_thumbnails(tab):
    wait_for_images(tab, "a.unit:not([hidden]) img")


def test_every_unit_is_shown_with_its_thumbnail_and_label(page):
    assert page.evaluate("document.compatMode") == "CSS1Compat"  # the marker comment keeps standards mode
    assert shown_indices(page) == PAGE_INDICES
    assert (
        page.eval_on_selector_all("a.unit .label", "labels => labels.map(l => l.textContent)")[1]
        == "goldfish"
    )
    assert page.locator("#count").inner_text() == "All 7 shown"
    wait_for_thumbnails(page)
    sources = page.eval_on_selector_all("a.unit img", "images => images.map(img => img.getAttribute('src'))")
    assert sources[0] == "thumbnails/neuron_logits_00000_rgba.webp"
    assert page.eval_on_selector_all("a.unit img", "images => images.every(img => img.loading === 'lazy')")


def test_search_filters_by_label_or_index(page):
    assert_search_filters_by_label_or_index(page, "1 of 7 shown")


def test_sorting_by_final_value(page):
    page.select_option("#sort", "value-desc")
    assert shown_indices(page) == [3, 13, 8, 5, 2, 1, 0]  # unit 3 has the highest value
    page.select_option("#sort", "value-asc")
    assert shown_indices(page)[0] == 0 and shown_indices(page)[-1] == 3
    page.select_option("#sort", "index")
    assert shown_indices(page) == PAGE_INDICES


def test_the_switch_changes_what_is_shown(page):
    def sources():
        return page.eval_on_selector_all("a.unit img", "images => images.map(img => img.getAttribute('src'))")

    for button, suffix in [
        ("Transparency", "_transparency.webp"),
        ("Image", ""),
        ("With transparency", "_rgba.webp"),
    ]:
        page.get_by_role("button", name=button, exact=True).click()
        assert page.get_by_role("button", name=button, exact=True).get_attribute("aria-pressed") == "true"
        pattern = rf"thumbnails/neuron_logits_\d{{5}}{suffix or '.webp'}"
        assert all(re.fullmatch(pattern, source) for source in sources()), sources()
        wait_for_thumbnails(page)
    page.get_by_role("button", name="Transparency", exact=True).click()
    wait_for_thumbnails(page)
    # What the browser draws changes too: unit 2's image is one green, its transparency a gray ramp.
    drawn = {}
    for button in ("Image", "Transparency"):
        page.get_by_role("button", name=button, exact=True).click()
        wait_for_thumbnails(page)
        shot = page.locator('a.unit[data-index="2"] img').screenshot()
        drawn[button] = np.asarray(Image.open(io.BytesIO(shot)).convert("RGB"), dtype=int)
    right = drawn["Transparency"][:, -8:].reshape(-1, 3)
    assert np.ptp(right, axis=1).max() <= 20 and right.mean() > 200  # the bright, gray end (lossy WebP)
    assert np.ptp(drawn["Image"].reshape(-1, 3).mean(0)) > 60  # a colour, not a gray


def test_detail_view_shows_the_full_image_settings_value_and_files(page, page_folder):
    page.locator('a.unit[data-index="5"]').click()
    page.wait_for_function("document.getElementById('detail').open")  # opened by the hash change
    dialog = page.locator("dialog#detail")
    assert dialog.is_visible()
    assert page.locator("#detail-title").inner_text() == "5 · great white shark"
    assert page.locator("#detail-objective").inner_text() == "Neuron(logits, 5)"
    page.wait_for_function("document.getElementById('detail-image').naturalWidth > 0")
    assert page.evaluate("document.getElementById('detail-image').naturalWidth") == 24  # the full-size PNG
    assert page.locator("#detail-image").get_attribute("src") == "neuron_logits_00005_rgba.png"
    unit_facts = page.locator("#detail-unit").inner_text()
    assert "final value\t0.5" in unit_facts and "manifest.shard-0-of-2.jsonl" in unit_facts
    assert "nb_steps\t3" in page.locator("#detail-settings").inner_text()
    links = page.eval_on_selector_all(
        "#detail-files a", "links => links.map(link => link.getAttribute('href'))"
    )
    assert links == [
        "neuron_logits_00005.png",
        "neuron_logits_00005_rgba.png",
        "neuron_logits_00005_transparency.png",
    ]
    assert all((page_folder / link).is_file() for link in links)
    dialog.get_by_role("button", name="Transparency", exact=True).click()  # the dialog has the switch too
    assert page.locator("#detail-image").get_attribute("src") == "neuron_logits_00005_transparency.png"
    page.keyboard.press("ArrowRight")
    page.wait_for_function("document.getElementById('detail-title').textContent.startsWith('8 ')")
    page.keyboard.press("Escape")
    # The dialog closes, then its close event clears the link to the unit: wait for both.
    page.wait_for_function("!document.getElementById('detail').open && location.hash === ''")
    assert not dialog.is_visible()


def test_a_link_to_a_unit_opens_its_detail(page):
    page.goto(f"{page.base}/index.html#unit-13")
    page.wait_for_function("document.getElementById('detail').open")
    assert page.locator("#detail-title").inner_text() == "13 · class 13"


def test_the_detail_view_shows_a_units_dataset_examples_when_it_has_some(page):
    page.goto(f"{page.base}/index.html#unit-5")
    page.wait_for_function("document.getElementById('detail').open")
    examples = page.locator("#detail-examples img")
    assert examples.count() == 3 and page.locator("#detail-examples-block").is_visible()
    page.wait_for_function(
        "[...document.querySelectorAll('#detail-examples img')].every(i => i.naturalWidth > 0)"
    )
    assert page.locator("#detail-examples figcaption").all_inner_texts() == ["3", "2", "1"]
    page.goto(f"{page.base}/index.html#unit-8")  # no examples: no block
    page.wait_for_function("document.getElementById('detail-title').textContent.startsWith('8')")
    assert not page.locator("#detail-examples-block").is_visible()
