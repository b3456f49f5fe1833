"""The atlas page built from manifests: every unit of every shard, thumbnails made once, labels, bad input."""

import json
import os
import re
import warnings
from importlib import resources

import keras
import pytest
from helpers import ATLAS_SETTINGS, HOSTILE_LABEL, assert_no_page, page_data, write_atlas, write_two_runs
from PIL import Image

from xplique_maco._apps.loading import zoo_labels as _zoo_labels
from xplique_maco._outputs.page import MARKER, build_page, page_html
from xplique_maco._outputs.thumbnails import THUMBNAIL_SIDE
from xplique_maco.cli import main


def thumbnail_times(folder) -> dict:
    return {path.name: path.stat().st_mtime_ns for path in (folder / "thumbnails").glob("*.webp")}


def test_page_shows_every_unit_of_every_shard_with_labels_and_files(tmp_path):
    write_atlas(tmp_path, [0, 1, 2, 3, 5, 8], shards=3)
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(f"class {i}" for i in range(10)) + "\n", encoding="utf-8")
    page = build_page(tmp_path, labels=labels)
    assert page == tmp_path / "index.html"
    assert page.read_text(encoding="utf-8").splitlines()[0] == MARKER
    data = page_data(tmp_path)
    assert [unit["index"] for unit in data["units"]] == [0, 1, 2, 3, 5, 8]
    assert [unit["label"] for unit in data["units"]][-1] == "class 8"
    assert data["settings"] == ATLAS_SETTINGS and data["title"] == "Neuron atlas of logits"
    unit = data["units"][4]
    assert unit["value"] == 0.5 and unit["manifest"] == "manifest.shard-1-of-3.jsonl"
    assert unit["files"]["rgba"] == "neuron_logits_00005_rgba.png"
    for kind, name in unit["thumbnails"].items():
        with Image.open(tmp_path / name) as thumbnail:
            assert thumbnail.format == "WEBP"
            assert thumbnail.mode == ("RGBA" if kind == "rgba" else "RGB")  # WebP has no gray mode
    # Nothing but the page and its thumbnails folder was added to the folder.
    assert {path.name for path in tmp_path.iterdir()} - {
        p["files"][k] for p in data["units"] for k in p["files"]
    } == {
        "index.html",
        "thumbnails",
        "labels.txt",
        "manifest.shard-0-of-3.jsonl",
        "manifest.shard-1-of-3.jsonl",
        "manifest.shard-2-of-3.jsonl",
    }


def test_thumbnails_are_small_and_made_only_for_new_or_changed_images(tmp_path):
    write_atlas(tmp_path, [0, 1], size=400)
    build_page(tmp_path)
    with Image.open(tmp_path / "thumbnails" / "neuron_logits_00000.webp") as thumbnail:
        assert max(thumbnail.size) == THUMBNAIL_SIDE
    first = thumbnail_times(tmp_path)
    assert len(first) == 6
    write_atlas(tmp_path, [2], size=400)  # a new batch finished
    build_page(tmp_path)
    second = thumbnail_times(tmp_path)
    assert {name: second[name] for name in first} == first  # the old ones were not remade
    assert sorted(set(second) - set(first)) == [
        "neuron_logits_00002.webp",
        "neuron_logits_00002_rgba.webp",
        "neuron_logits_00002_transparency.webp",
    ]
    # A redone objective (a newer PNG) gets a new thumbnail.
    image = tmp_path / "neuron_logits_00001.png"
    Image.new("RGB", (400, 400), (255, 0, 0)).save(image)
    later = second["neuron_logits_00001.webp"] + 1_000_000_000
    os.utime(image, ns=(later, later))
    build_page(tmp_path)
    with Image.open(tmp_path / "thumbnails" / "neuron_logits_00001.webp") as thumbnail:
        assert thumbnail.convert("RGB").getpixel((80, 80))[0] > 200


def test_labels_are_kept_for_later_rebuilds_and_must_cover_the_indices(tmp_path):
    write_atlas(tmp_path, [0, 4])
    build_page(tmp_path, labels=["a", "b", "c", "d", "e"])
    build_page(tmp_path)  # `xplique-maco page FOLDER` without --labels
    assert [unit["label"] for unit in page_data(tmp_path)["units"]] == ["a", "e"]
    with pytest.raises(ValueError, match="4 labels for unit indices up to 4: .* at least 5 lines"):
        build_page(tmp_path, labels=["a", "b", "c", "d"])
    build_page(tmp_path)  # the refused labels did not replace the kept ones
    assert [unit["label"] for unit in page_data(tmp_path)["units"]] == ["a", "e"]
    with pytest.raises(ValueError, match="No labels file 'missing.txt'. Accepted: a UTF-8 text file"):
        build_page(tmp_path, labels="missing.txt")
    with pytest.raises(ValueError, match="`labels` must be None, a sequence of strings"):
        build_page(tmp_path, labels=[1, 2])


def test_labels_cannot_break_out_of_the_page(tmp_path):
    write_atlas(tmp_path, [0])
    build_page(tmp_path, labels=[HOSTILE_LABEL])
    assert "<script>alert(1)" not in (tmp_path / "index.html").read_text(encoding="utf-8")
    assert page_data(tmp_path)["units"][0]["label"] == HOSTILE_LABEL


@pytest.mark.parametrize("template", ["page.html", "lens.html"])
def test_both_pages_are_one_file_with_the_shared_style_and_script_inline(template):
    html = page_html(template, MARKER, "A __DATA__ title", {"label": "__PAGE_CSS__"})
    shared = resources.files("xplique_maco.data")
    assert shared.joinpath("page.css").read_text("utf-8") in html
    assert shared.joinpath("page.js").read_text("utf-8") in html
    assert "<title>A __DATA__ title</title>" in html  # what is filled in is not read again
    assert re.findall(r"__[A-Z_]+__", html) == ["__DATA__", "__PAGE_CSS__"]
    assert not re.search(r"<link rel=.stylesheet|<script[^>]* src=|@import", html)


def test_missing_files_and_cut_lines_leave_units_off_with_a_warning(tmp_path):
    write_atlas(tmp_path, [0, 1, 2])
    (tmp_path / "neuron_logits_00001_rgba.png").unlink()
    with open(tmp_path / "manifest.jsonl", "a", encoding="utf-8") as manifest:
        manifest.write('{"objective": "Neuron(logits, 7)", "ind')  # cut by a hard kill
    with pytest.warns(
        UserWarning, match=r"Units left off .*their files are missing \(neuron_logits_00001_rgba.png\)"
    ):
        build_page(tmp_path)
    data = page_data(tmp_path)
    assert [unit["index"] for unit in data["units"]] == [0, 2]
    assert data["missing"] == ["neuron_logits_00001_rgba.png"]
    # The objective redone (a later line, its files back): shown, no warning.
    write_atlas(tmp_path, [1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_page(tmp_path)
    assert [unit["index"] for unit in page_data(tmp_path)["units"]] == [0, 1, 2]


def _not_an_entry(folder):
    write_atlas(folder, [0])
    with open(folder / "manifest.jsonl", "a") as manifest:
        manifest.write('{"objective": "Neuron(logits, 1)"}\n')


def _outside(folder):
    write_atlas(folder, [0])
    entry = json.loads((folder / "manifest.jsonl").read_text())
    entry["files"]["image"] = "../elsewhere.png"
    (folder / "manifest.jsonl").write_text(json.dumps(entry) + "\n")


def _unreadable(folder):
    write_atlas(folder, [0])
    (folder / "neuron_logits_00000.png").write_bytes(b"not a png")


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda folder: None, "No manifest in .*Accepted: a folder written by `xplique-maco render`"),
        (lambda folder: write_atlas(folder / "inner", [0]), "No manifest in"),
        (
            lambda folder: write_two_runs(folder, write_atlas, {**ATLAS_SETTINGS, "nb_steps": 64}),
            r"mixes the results of two runs: .*\(nb_steps: 3 vs 64\).*move one run's manifest",
        ),
        (_not_an_entry, r"manifest.jsonl, line 2, is not a manifest entry. Accepted: a JSON object"),
        (_outside, r"names the file '../elsewhere.png', which is not in the folder"),
        (_unreadable, "Cannot read the image .*neuron_logits_00000.png for its thumbnail"),
    ],
)
def test_bad_folders_are_named_and_nothing_is_written(tmp_path, make, message):
    make(tmp_path)
    assert_no_page(build_page, tmp_path, message)


def test_a_page_we_did_not_write_is_never_replaced(tmp_path, capsys):
    write_atlas(tmp_path, [0, 1])
    mine = tmp_path / "index.html"
    mine.write_text("<html>my own notes</html>", encoding="utf-8")
    with pytest.raises(ValueError, match="index.html exists and was not written by xplique-maco"):
        build_page(tmp_path)
    assert main(["page", str(tmp_path)]) == 2
    assert "was not written by xplique-maco" in capsys.readouterr().err
    assert mine.read_text(encoding="utf-8") == "<html>my own notes</html>"
    assert not (tmp_path / "thumbnails").exists()
    mine.unlink()
    (tmp_path / "thumbnails").mkdir()
    (tmp_path / "thumbnails" / "holiday.jpg").write_bytes(b"photo")
    with pytest.raises(ValueError, match="thumbnails exists and was not made by xplique-maco"):
        build_page(tmp_path)
    assert (tmp_path / "thumbnails" / "holiday.jpg").read_bytes() == b"photo"


def test_page_command_rebuilds_and_reports(tmp_path, capsys):
    write_atlas(tmp_path, [0, 1])
    (tmp_path / "labels.txt").write_text("zero\none\n", encoding="utf-8")
    assert main(["page", str(tmp_path), "--labels", str(tmp_path / "labels.txt")]) == 0
    assert "index.html" in capsys.readouterr().out
    assert [unit["label"] for unit in page_data(tmp_path)["units"]] == ["zero", "one"]
    (tmp_path / "neuron_logits_00000.png").unlink()
    assert main(["page", str(tmp_path)]) == 0
    assert "xplique-maco: warning: Units left off" in capsys.readouterr().err
    assert main(["page", str(tmp_path / "nowhere")]) == 2
    assert "No folder" in capsys.readouterr().err


def test_zoo_classifiers_output_layer_gets_imagenet_names():
    inputs = keras.Input((8, 8, 3))
    hidden = keras.layers.Dense(4, name="hidden")(keras.layers.GlobalAveragePooling2D()(inputs))
    model = keras.Model(inputs, keras.layers.Dense(1000, name="predictions")(hidden))
    assert _zoo_labels("zoo:efficientnet_lite0", model, "predictions")[967] == "espresso"
    assert _zoo_labels("zoo:efficientnet_lite0", model, -1)[1] == "goldfish"
    assert _zoo_labels("zoo:efficientnet_lite0", model, "hidden") is None
    assert _zoo_labels("mine.keras", model, "predictions") is None
    assert _zoo_labels("zoo:efficientnet_lite0", model, "nope") is None
