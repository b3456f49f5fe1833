"""The lens page built from a lens folder's manifests: every class and concept of every shard, similar
concepts of other classes, thumbnails made once, labels, foreign pages left alone, bad folders named."""

import json
import os
import warnings

import numpy as np
import pytest
from helpers import (
    HOSTILE_LABEL,
    LENS_CHANNELS,
    LENS_SETTINGS,
    assert_no_page,
    page_data,
    write_atlas,
    write_lens,
    write_two_runs,
)
from PIL import Image

from xplique_maco._apps.lens.page import MARKER, build_lens_page, check_lens_folder
from xplique_maco._outputs.page import MARKER as ATLAS_MARKER
from xplique_maco._outputs.page import build_page
from xplique_maco._outputs.thumbnails import THUMBNAIL_SIDE


def lens_data(folder) -> dict:
    return page_data(folder, "lens-data")


def thumbnail_times(folder) -> dict:
    return {
        str(path.relative_to(folder)): path.stat().st_mtime_ns
        for path in (folder / "thumbnails").rglob("*.webp")
    }


def test_page_shows_every_class_and_concept_of_every_shard(tmp_path):
    entries = write_lens(tmp_path, [0, 1, 2, 5, 8], shards=3)
    page = build_lens_page(tmp_path)
    assert page == tmp_path / "index.html"
    assert page.read_text(encoding="utf-8").splitlines()[0] == MARKER
    data = lens_data(tmp_path)
    assert data["title"] == "Lens of block4" and data["settings"] == LENS_SETTINGS
    assert [shown["index"] for shown in data["classes"]] == [0, 1, 2, 5, 8]
    shown = data["classes"][3]
    assert shown["label"] == "class 5" and shown["manifest"] == "manifest.shard-0-of-3.jsonl"
    assert shown["value"] == 0.5 and shown["images"] == 5 and shown["crops"] == 80
    assert shown["folder"] == "classes/0005"
    assert shown["files"] == {
        "image": "class.png",
        "transparency": "class_transparency.png",
        "rgba": "class_rgba.png",
        "vectors": "concepts.npy",
    }
    assert [concept["rank"] for concept in shown["concepts"]] == [0, 1, 2]
    concept = shown["concepts"][1]
    written = entries[3]["concepts"][1]
    assert concept["importance"] == 0.25 and concept["share"] == round(written["share"], 4)
    assert concept["crops"] == ["crops/1_0.jpg", "crops/1_1.jpg"] and concept["crop_scores"] == [1.0, 0.5]
    # Every name on the page is a file of the folder (names in a class are relative to its folder).
    for shown in data["classes"]:
        named = [*shown["files"].values()]
        for concept in shown["concepts"]:
            named += [*concept["files"].values(), *concept["crops"]]
        assert all((tmp_path / shown["folder"] / name).is_file() for name in named)
        thumbnails = [shown["thumbnail"], *(concept["thumbnail"] for concept in shown["concepts"])]
        for name in thumbnails:
            with Image.open(tmp_path / name) as thumbnail:
                assert thumbnail.format == "WEBP" and thumbnail.mode == "RGBA"
    # Nothing but the page and its thumbnails folder was added to the folder.
    assert {path.name for path in tmp_path.iterdir()} == {
        "index.html",
        "thumbnails",
        "classes",
        *(f"manifest.shard-{shard}-of-3.jsonl" for shard in range(3)),
    }
    assert sorted(path.name for path in (tmp_path / "thumbnails").iterdir()) == [
        ".lock",
        "classes",
        "lens.json",
        "similar.npz",
    ]


def test_similar_concepts_are_of_other_classes_and_sorted_by_cosine(tmp_path):
    rng = np.random.default_rng(1234)  # not a class's seed in write_lens
    shared = rng.uniform(0, 1, LENS_CHANNELS)
    vectors = {index: rng.uniform(0, 1, (3, LENS_CHANNELS)) for index in (1, 5)}
    vectors[1][2] = shared  # class 1's concept 2 and class 5's concept 0 are one direction
    vectors[5][0] = 3 * shared
    write_lens(tmp_path, [0, 1, 2, 5, 8], shards=2, vectors=vectors)
    build_lens_page(tmp_path)
    classes = {shown["index"]: shown for shown in lens_data(tmp_path)["classes"]}
    first = classes[1]["concepts"][2]["similar"][0]
    assert first[:2] == [5, 0] and first[2] == pytest.approx(1.0, abs=1e-4)
    assert classes[5]["concepts"][0]["similar"][0][:2] == [1, 2]
    for index, shown in classes.items():
        for concept in shown["concepts"]:
            near = concept["similar"]
            assert len(near) == 3
            assert all(other != index and other in classes for other, _, _ in near)
            assert [cosine for *_, cosine in near] == sorted((cosine for *_, cosine in near), reverse=True)
            assert all(rank < len(classes[other]["concepts"]) for other, rank, _ in near)


def test_a_rebuild_makes_thumbnails_and_similar_concepts_of_new_or_changed_classes_only(tmp_path):
    write_lens(tmp_path, [0, 1], size=300)
    build_lens_page(tmp_path)
    with Image.open(tmp_path / "thumbnails/classes/0000/class_rgba.webp") as thumbnail:
        assert max(thumbnail.size) == THUMBNAIL_SIDE
    first = thumbnail_times(tmp_path)
    assert len(first) == 8  # per class: its image and its 3 concepts' images, with transparency
    similar = (tmp_path / "thumbnails" / "similar.npz").stat().st_mtime_ns
    page = (tmp_path / "index.html").read_bytes()
    build_lens_page(tmp_path)  # nothing new
    assert thumbnail_times(tmp_path) == first
    assert (tmp_path / "thumbnails" / "similar.npz").stat().st_mtime_ns == similar
    assert (tmp_path / "index.html").read_bytes() == page
    write_lens(tmp_path, [2], size=300)  # a new batch finished
    build_lens_page(tmp_path)
    second = thumbnail_times(tmp_path)
    assert {name: second[name] for name in first} == first  # the old ones were not remade
    assert sorted(set(second) - set(first)) == [
        f"thumbnails/classes/0002/{name}.webp"
        for name in ("class_rgba", "concept_0_rgba", "concept_1_rgba", "concept_2_rgba")
    ]
    assert {near[0] for near in lens_data(tmp_path)["classes"][0]["concepts"][0]["similar"]} <= {1, 2}
    # A redone concept image (a newer PNG) gets a new thumbnail.
    image = tmp_path / "classes/0001/concept_2_rgba.png"
    Image.new("RGBA", (300, 300), (255, 0, 0, 255)).save(image)
    later = second["thumbnails/classes/0001/concept_2_rgba.webp"] + 1_000_000_000
    os.utime(image, ns=(later, later))
    build_lens_page(tmp_path)
    with Image.open(tmp_path / "thumbnails/classes/0001/concept_2_rgba.webp") as thumbnail:
        assert thumbnail.convert("RGB").getpixel((80, 80))[0] > 200
    third = thumbnail_times(tmp_path)
    assert [name for name in third if third[name] != second[name]] == [
        "thumbnails/classes/0001/concept_2_rgba.webp"
    ]


def test_labels_replace_the_manifests_and_are_kept_for_later_rebuilds(tmp_path):
    write_lens(tmp_path, [0, 2])
    build_lens_page(tmp_path)
    assert [shown["label"] for shown in lens_data(tmp_path)["classes"]] == ["class 0", "class 2"]
    build_lens_page(tmp_path, labels=["tench", "goldfish", "great white shark"])
    build_lens_page(tmp_path)  # the rebuild after the next batch passes no labels
    assert [shown["label"] for shown in lens_data(tmp_path)["classes"]] == ["tench", "great white shark"]
    with pytest.raises(ValueError, match="2 labels for class indices up to 2: .* at least 3 lines"):
        build_lens_page(tmp_path, labels=["a", "b"])


def test_labels_cannot_break_out_of_the_page(tmp_path):
    write_lens(tmp_path, [0])
    build_lens_page(tmp_path, labels=[HOSTILE_LABEL])
    assert "<script>alert(1)" not in (tmp_path / "index.html").read_text(encoding="utf-8")
    assert lens_data(tmp_path)["classes"][0]["label"] == HOSTILE_LABEL


@pytest.mark.parametrize(
    "first_line, named",
    [
        ("<html>my own notes</html>", "not its marker comment\\)"),
        (ATLAS_MARKER, "it is xplique-maco's atlas page"),
    ],
)
def test_an_index_html_the_lens_did_not_write_is_refused_and_left_untouched(tmp_path, first_line, named):
    write_lens(tmp_path, [0, 1])
    mine = tmp_path / "index.html"
    mine.write_text(first_line + "\n<p>kept</p>\n", encoding="utf-8")
    for refused in (check_lens_folder, build_lens_page):
        with pytest.raises(
            ValueError,
            match=f"index.html exists and was not written by xplique-maco for the lens page .*{named}",
        ):
            refused(tmp_path)
    assert mine.read_text(encoding="utf-8") == first_line + "\n<p>kept</p>\n"
    assert not (tmp_path / "thumbnails").exists()


def test_a_thumbnails_folder_of_someone_else_is_refused_and_the_atlas_page_refuses_the_lens_one(tmp_path):
    write_lens(tmp_path, [0])
    (tmp_path / "thumbnails").mkdir()
    (tmp_path / "thumbnails" / "holiday.jpg").write_bytes(b"photo")
    with pytest.raises(
        ValueError, match="thumbnails exists and was not made by xplique-maco for the lens page"
    ):
        build_lens_page(tmp_path)
    assert (tmp_path / "thumbnails" / "holiday.jpg").read_bytes() == b"photo"
    (tmp_path / "thumbnails" / "holiday.jpg").unlink()
    build_lens_page(tmp_path)
    check_lens_folder(tmp_path)  # its own page: accepted
    write_atlas(tmp_path / "atlas", [0])
    os.replace(tmp_path / "index.html", tmp_path / "atlas" / "index.html")
    with pytest.raises(ValueError, match="it is xplique-maco's lens page"):
        build_page(tmp_path / "atlas")


def test_a_cut_last_line_is_skipped_and_missing_files_leave_their_class_off(tmp_path):
    write_lens(tmp_path, [0, 1, 2])
    with open(tmp_path / "manifest.jsonl", "a", encoding="utf-8") as manifest:
        manifest.write('{"kind": "lens", "index": 7, "label": "cla')  # cut by a hard kill
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_lens_page(tmp_path)
    assert [shown["index"] for shown in lens_data(tmp_path)["classes"]] == [0, 1, 2]
    (tmp_path / "classes/0001/crops/2_1.jpg").unlink()
    with pytest.warns(UserWarning, match=r"Classes left off .*missing \(classes/0001/crops/2_1.jpg\)"):
        build_lens_page(tmp_path)
    data = lens_data(tmp_path)
    assert [shown["index"] for shown in data["classes"]] == [0, 2]
    assert data["missing"] == ["classes/0001/crops/2_1.jpg"]
    assert all(near[0] != 1 for near in data["classes"][0]["concepts"][0]["similar"])
    write_lens(tmp_path, [1])  # the class redone: a later line, its files back
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_lens_page(tmp_path)
    assert [shown["index"] for shown in lens_data(tmp_path)["classes"]] == [0, 1, 2]


def _edit_line(folder, change):
    path = folder / "manifest.jsonl"
    entry = json.loads(path.read_text(encoding="utf-8"))
    change(entry)
    path.write_text(json.dumps(entry) + "\n", encoding="utf-8")


def _atlas_line(folder):
    write_atlas(folder, [0])


def _unordered(folder):
    write_lens(folder, [0])
    _edit_line(folder, lambda entry: entry["concepts"].reverse())


def _outside(folder, name):
    write_lens(folder, [0])
    _edit_line(folder, lambda entry: entry["concepts"][1]["crops"].__setitem__(0, name))


def _vectors(folder, array):
    write_lens(folder, [0, 1])
    np.save(folder / "classes/0001/concepts.npy", array)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda folder: None, "No manifest in .*Accepted: a folder written by `lens\\(..., output=...\\)`"),
        (lambda folder: write_lens(folder / "inner", [0]), "No manifest in"),
        (
            lambda folder: write_two_runs(folder, write_lens, {**LENS_SETTINGS, "nb_concepts": 4}),
            r"mixes the results of two runs: .*\(nb_concepts: 3 vs 4\)",
        ),
        (_atlas_line, r"manifest.jsonl, line 1, is not a lens manifest entry \(it lacks .*concepts\)"),
        (_unordered, r"not a lens manifest entry \(its concepts are not in rank order"),
        (
            lambda folder: _outside(folder, "../elsewhere.jpg"),
            "names the file '../elsewhere.jpg', which is not in",
        ),
        (lambda folder: _outside(folder, "javascript:alert(1)"), "names the file 'javascript:alert"),
        (lambda folder: _vectors(folder, np.ones((2, 8))), r"concepts.npy hold an array of shape \(2, 8\)"),
        (lambda folder: _vectors(folder, np.ones((3, 5))), r"shape \(3, 5\) .*C = 8 as in .*0000"),
        (
            lambda folder: _vectors(folder, np.array([None, 1, 2], object)),  # a pickle
            r"Cannot read the concept vectors .*concepts.npy",
        ),
    ],
)
def test_bad_folders_are_named_and_no_page_is_written(tmp_path, make, message):
    make(tmp_path)
    assert_no_page(build_lens_page, tmp_path, message)


def test_the_page_command_rebuilds_a_lens_folder_as_a_lens_page_without_tensorflow(tmp_path):
    import subprocess
    import sys

    write_lens(tmp_path, [2, 5])
    code = (
        "import sys\n"
        "from xplique_maco.cli import main\n"
        f"assert main(['page', {str(tmp_path)!r}]) == 0\n"
        "print('tensorflow' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False"
    assert (tmp_path / "index.html").read_text(encoding="utf-8").startswith(MARKER)
    assert [c["index"] for c in page_data(tmp_path, "lens-data")["classes"]] == [2, 5]
