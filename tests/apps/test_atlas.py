"""Rendering many objectives to files (through the render command): manifest, resume, shards, settings."""

import json
import os
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
from helpers import SMALL_RENDER, assert_refused, hold_lock, manifest_entries, page_data, read_png
from PIL import Image

from xplique_maco import Channel, Neuron, evaluate, maco
from xplique_maco._api.evaluate import every_value
from xplique_maco._apps import atlas as atlas_app
from xplique_maco._apps import loading
from xplique_maco._apps.examples import top_examples
from xplique_maco._config.manifest import MANIFESTS
from xplique_maco.atlas import parse_indices, parse_shard, render_atlas
from xplique_maco.cli import main

# A few milliseconds per objective on the tiny models.
TINY = dict(nb_steps=2, image_shape=(32, 32), nb_crops=1)


def test_indices_and_shards_syntax():
    assert parse_indices("0:3,10,20:26:2") == [0, 1, 2, 10, 20, 22, 24]
    assert parse_shard("1/4") == (1, 4)


@pytest.mark.slow
def test_render_writes_files_and_manifest_then_resumes_without_rewriting(model_file, tmp_path, capsys):
    args = [
        "render",
        str(model_file),
        "--layer",
        "logits",
        "--indices",
        "0:4",
        "--batch-size",
        "3",
        "--output",
        str(tmp_path),
    ]
    assert main(args + SMALL_RENDER) == 0
    log = capsys.readouterr().out
    # Not a terminal: the progress is plain lines, with no colour codes for a log file.
    assert "3/4 objectives\n4/4 objectives\n" in log and "\x1b[" not in log
    entries = manifest_entries(tmp_path)
    assert sorted(entry["index"] for entry in entries) == [0, 1, 2, 3]
    entry = entries[0]
    assert entry["objective"] == "Neuron(logits, 0)" and entry["seed"] == 0 and np.isfinite(entry["value"])
    assert entry["settings"]["nb_steps"] == 3
    assert read_png(tmp_path / entry["files"]["rgba"]).shape == (40, 40, 4)
    assert read_png(tmp_path / entry["files"]["transparency"]).shape == (40, 40, 1)
    assert [unit["index"] for unit in page_data(tmp_path)["units"]] == [0, 1, 2, 3]  # the page is there
    modified = {path: path.stat().st_mtime_ns for path in tmp_path.glob("*.png")}
    # Everything finished: nothing is rendered or rewritten (splitting the crops into several
    # model passes changes how, not what, so the folder's settings still match).
    assert main(args + SMALL_RENDER + ["--crops-per-pass", "6"]) == 0
    assert "Rendered 0 objectives (4 of this shard's 4 were already finished)" in capsys.readouterr().out
    assert {path: path.stat().st_mtime_ns for path in tmp_path.glob("*.png")} == modified
    assert len(manifest_entries(tmp_path)) == 4


@pytest.mark.slow
def test_two_shards_equal_the_unsharded_job(model_file, tmp_path):
    whole, sharded = tmp_path / "whole", tmp_path / "sharded"
    common = ["render", str(model_file), "--layer", "conv2", "--objective", "channel", "--indices", "0:5"]
    assert main(common + ["--output", str(whole)] + SMALL_RENDER) == 0
    for shard in ("0/2", "1/2"):
        assert main(common + ["--output", str(sharded), "--shard", shard] + SMALL_RENDER) == 0
    entries = manifest_entries(sharded)
    assert sorted(entry["index"] for entry in entries) == [0, 1, 2, 3, 4]  # disjoint, and together complete
    assert [unit["index"] for unit in page_data(sharded)["units"]] == [0, 1, 2, 3, 4]  # one page, both shards
    for shard in (0, 1):
        lines = (sharded / f"manifest.shard-{shard}-of-2.jsonl").read_text().splitlines()
        assert {json.loads(line)["position"] % 2 for line in lines} == {shard}
    for entry in manifest_entries(whole):
        mine = read_png(sharded / entry["files"]["image"]).astype(int)
        theirs = read_png(whole / entry["files"]["image"]).astype(int)
        assert np.abs(mine - theirs).max() <= 1


def test_an_atlas_image_renders_again_alone_with_the_atlas_seed(model, tmp_path):
    render_atlas(model, "conv2", [4, 1, 6], tmp_path, kind="channel", batch_size=3, seed=7, verbose=0, **TINY)
    entry = next(entry for entry in manifest_entries(tmp_path) if entry["index"] == 6)
    image, _ = maco(Channel(model, "conv2", 6), seed=7, verbose=0, **TINY)
    saved = read_png(tmp_path / entry["files"]["image"]).astype(int)
    assert np.abs(saved - np.round(image[0].numpy() * 255)).max() <= 1


@pytest.mark.slow
def test_killed_job_resumes_with_every_output_once(model_file, tmp_path):
    command = [sys.executable, "-m", "xplique_maco.cli", "render", str(model_file), "--layer", "logits"]
    command += ["--indices", "0:10", "--batch-size", "1", "--output", str(tmp_path), "--steps", "25"]
    command += SMALL_RENDER[2:]
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    job = subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and len(manifest_entries(tmp_path)) < 2:
        time.sleep(0.2)
    job.send_signal(signal.SIGTERM)
    _, stderr = job.communicate(timeout=60)
    assert job.returncode == 130, stderr.decode()[-2000:]
    done = len(manifest_entries(tmp_path))
    assert 2 <= done < 10
    assert not list(tmp_path.glob(".*.tmp"))  # no half-written file
    assert (
        main(
            ["render", str(model_file), "--layer", "logits", "--indices", "0:10", "--batch-size", "4"]
            + ["--output", str(tmp_path), "--steps", "25"]
            + SMALL_RENDER[2:]
        )
        == 0
    )
    entries = manifest_entries(tmp_path)
    assert sorted(entry["index"] for entry in entries) == list(range(10))  # each exactly once
    for entry in entries:
        for name in entry["files"].values():
            assert read_png(tmp_path / name).size > 0


def _stamps(folder, entries) -> dict:
    """Each file of `entries` with its inode and modification time: a rewrite (atomic rename) changes both."""
    return {
        name: ((folder / name).stat().st_ino, (folder / name).stat().st_mtime_ns)
        for entry in entries
        for name in entry["files"].values()
    }


def test_a_cut_last_line_is_rendered_exactly_once_more_and_nothing_else_is_rewritten(
    model, tmp_path, monkeypatch
):
    render_atlas(model, "logits", range(4), tmp_path, batch_size=1, verbose=0, **TINY)
    manifest = tmp_path / "manifest.jsonl"
    lines = manifest.read_bytes().splitlines(keepends=True)
    assert len(lines) == 4
    # A hard kill while the last line was appended: its PNGs are written, half of its line is.
    kept, cut = b"".join(lines[:3]), lines[3][: len(lines[3]) // 2]
    manifest.write_bytes(kept + cut)
    finished = [json.loads(line) for line in lines[:3]]
    before = _stamps(tmp_path, finished)
    rendered = []

    def counted_maco(objective, items, **settings):
        rendered.extend(items)
        return maco(objective, items=items, **settings)

    maco = atlas_app.maco
    monkeypatch.setattr(atlas_app, "maco", counted_maco)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):  # the first resume redoes the cut objective, the second has nothing left
            render_atlas(model, "logits", range(4), tmp_path, batch_size=1, verbose=0, **TINY)
    assert rendered == [3]
    assert _stamps(tmp_path, finished) == before  # no finished image written again
    assert manifest.read_bytes().startswith(kept)  # appended after the whole lines, on a fresh line
    assert [json.loads(line)["index"] for line in manifest.read_bytes().splitlines()] == [0, 1, 2, 3]
    assert (tmp_path / "manifest.jsonl.cut").read_bytes() == cut + b"\n"  # kept, out of the manifest
    assert [str(warning.message) for warning in caught if "cut by a hard kill" in str(warning.message)] == [
        f"The last line of {manifest} was cut by a hard kill while it was written: it is now in "
        "manifest.jsonl.cut, and its objective is rendered again."
    ]
    assert [unit["index"] for unit in page_data(tmp_path)["units"]] == [0, 1, 2, 3]


def test_a_second_process_on_the_same_shard_is_refused_before_the_model_loads(
    model_file, tmp_path, monkeypatch, capsys
):
    args = ["render", str(model_file), "--layer", "logits", "--indices", "0:4", "--output", str(tmp_path)]
    holder = hold_lock(tmp_path, (0, 2))
    try:
        loaded = []
        load_model = loading.load_model_option
        monkeypatch.setattr(loading, "load_model_option", lambda *a: loaded.append(a) or load_model(*a))
        assert main(args + SMALL_RENDER + ["--shard", "0/2"]) == 2
        error = capsys.readouterr().err
        assert f"Another process is rendering shard 0/2 into {tmp_path}" in error
        assert (
            f"lock file {tmp_path / '.manifest.shard-0-of-2.jsonl.lock'} (shard 0/2, process {holder.pid}"
            in error
        )
        assert not loaded and not list(tmp_path.glob("*.png")) and not list(tmp_path.glob("manifest*"))
        # The other shard runs meanwhile (a job array), into its own manifest.
        assert main(args + SMALL_RENDER + ["--shard", "1/2"]) == 0
        assert sorted(entry["index"] for entry in manifest_entries(tmp_path)) == [1, 3]
    finally:
        holder.communicate("", timeout=30)
    assert holder.returncode == 0


def test_finished_images_are_never_overwritten_by_other_settings(model_file, tmp_path, capsys):
    args = ["render", str(model_file), "--layer", "logits", "--indices", "0", "--output", str(tmp_path)]
    assert main(args + SMALL_RENDER) == 0
    before = {path: path.read_bytes() for path in tmp_path.glob("*.png")}
    assert main(args + ["--steps", "4"] + SMALL_RENDER[2:]) == 2
    assert "holds results made with other settings" in capsys.readouterr().err
    assert main(args + ["--steps", "4"] + SMALL_RENDER[2:]) == 2
    assert "(manifest.jsonl line 1 vs this call: nb_steps: 3 vs 4)" in capsys.readouterr().err
    assert {path: path.read_bytes() for path in tmp_path.glob("*.png")} == before


def test_a_folder_rendered_before_glances_were_the_default_resumes_with_glance_0(
    model_file, tmp_path, capsys
):
    args = ["render", str(model_file), "--layer", "logits", "--indices", "0:2", "--output", str(tmp_path)]
    assert main(args + SMALL_RENDER + ["--glance", "0"]) == 0
    for manifest in tmp_path.glob(MANIFESTS):  # as written before `glance` was recorded
        lines = [json.loads(line) for line in manifest.read_text().splitlines()]
        for entry in lines:
            assert entry["settings"].pop("glance") == 0.0
        manifest.write_text("".join(json.dumps(entry) + "\n" for entry in lines))
    before = {path: path.read_bytes() for path in tmp_path.glob("*.png")}
    assert main(args + SMALL_RENDER) == 2  # the default glances would mix other images in
    assert (
        "vs this call: glance: 0.0 vs 0.25); pass the folder's settings to resume it"
        in capsys.readouterr().err
    )
    assert main(args + SMALL_RENDER + ["--glance", "0"]) == 0
    assert "Rendered 0 objectives (2 of this shard's 2 were already finished)" in capsys.readouterr().out
    assert {path: path.read_bytes() for path in tmp_path.glob("*.png")} == before


# (bad call, error type, words the message must contain)
ERRORS = [
    pytest.param(
        lambda: parse_indices("0-10"), ValueError, "neither an index nor a range", id="indices 0-10"
    ),
    pytest.param(
        lambda: parse_indices("10:"), ValueError, "neither an index nor a range", id="bad index range"
    ),
    pytest.param(lambda: parse_indices("5:2"), ValueError, "Empty or backward range", id="backward range"),
    pytest.param(lambda: parse_indices("1,1"), ValueError, "twice", id="index twice"),
    pytest.param(lambda: parse_shard("1-4"), ValueError, "'I/N'", id="bad shard"),
    pytest.param(lambda: parse_shard("4/4"), ValueError, "'I/N' with 0 <= I < N", id="shard 4 of 4"),
]


@pytest.mark.parametrize("call, error, message", ERRORS)
def test_bad_input_gets_a_clear_error_before_any_computation(call, error, message):
    assert_refused(call, error, message)


def test_render_leaves_a_page_it_did_not_write_alone(model_file, tmp_path, capsys):
    (tmp_path / "index.html").write_text("mine", encoding="utf-8")
    labels = tmp_path / "labels.txt"
    labels.write_text("a\nb\n", encoding="utf-8")
    args = ["render", str(model_file), "--layer", "logits", "--indices", "0:2", "--output", str(tmp_path)]
    assert main(args + SMALL_RENDER) == 2
    assert "index.html exists and was not written by xplique-maco" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.png"))  # refused before rendering
    assert (tmp_path / "index.html").read_text(encoding="utf-8") == "mine"
    assert main(args + SMALL_RENDER + ["--no-page"]) == 0
    (tmp_path / "index.html").unlink()
    assert main(args[:5] + ["0:3"] + args[6:] + SMALL_RENDER + ["--labels", str(labels)]) == 2
    assert "2 labels for indices up to 2" in capsys.readouterr().err
    assert (
        main(args + SMALL_RENDER + ["--labels", str(labels)]) == 0
    )  # all finished: the page is still written
    assert [unit["label"] for unit in page_data(tmp_path)["units"]] == ["a", "b"]


def test_dataset_examples_are_the_crops_of_the_users_images_that_drive_each_unit_most(model, tmp_path):
    photos = tmp_path / "photos" / "some class"
    photos.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for number in range(3):
        Image.fromarray(rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)).save(photos / f"{number}.png")
    output = tmp_path / "atlas"
    entries = render_atlas(
        model, "logits", [1, 4], output, images=tmp_path / "photos", nb_examples=3, verbose=0, **TINY
    )
    for entry in entries:
        assert len(entry["examples"]) == 3 and all((output / name).is_file() for name in entry["examples"])
        assert entry["example_values"] == sorted(entry["example_values"], reverse=True)
        assert entry["settings"]["nb_examples"] == 3
    units = page_data(output)["units"]
    assert [unit["examples"] for unit in units] == [entry["examples"] for entry in entries]


def test_the_best_examples_are_those_of_the_highest_values(model):
    pool = np.random.default_rng(1).uniform(size=(7, 32, 32, 3)).astype("float32")
    objective = Neuron(model, "logits", [2, 5]) + 0.5 * Channel(model, "conv2", [1, 3])
    best, values = top_examples(objective, pool, 2)
    each = np.stack([evaluate(objective, np.repeat(crop[None], 2, axis=0)) for crop in pool])  # (7, 2)
    np.testing.assert_allclose(every_value(objective, pool, batch_size=3), each, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(best, np.argsort(-each, axis=0)[:2].T)
    np.testing.assert_allclose(values, np.sort(each, axis=0)[::-1][:2].T, rtol=1e-5, atol=1e-6)
