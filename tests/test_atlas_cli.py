"""The render command: files, manifest, resume after a kill, shards, safe loading, clear errors."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import conv_classifier
from test_page import page_data

from xplique_maco.atlas import parse_indices, parse_shard
from xplique_maco.cli import main

SMALL = ["--steps", "3", "--image-size", "40", "--crops", "2", "--model-input-size", "32", "32"]


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "tiny.keras"
    conv_classifier().save(path)
    return path


def manifest_entries(folder: Path) -> list[dict]:
    lines = []
    for manifest in sorted(folder.glob("manifest*.jsonl")):
        lines += [json.loads(line) for line in manifest.read_text().splitlines()]
    return lines


def read_png(path):
    return tf.io.decode_png(tf.io.read_file(str(path)), channels=0).numpy()


def test_indices_and_shards_syntax():
    assert parse_indices("0:3,10,20:26:2") == [0, 1, 2, 10, 20, 22, 24]
    assert parse_shard("1/4") == (1, 4)
    for bad, message in [
        ("0-10", "neither an index nor a range"),
        ("5:2", "Empty or backward range"),
        ("1,1", "twice"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_indices(bad)
    with pytest.raises(ValueError, match="'I/N' with 0 <= I < N"):
        parse_shard("4/4")


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
    assert main(args + SMALL) == 0
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
    assert main(args + SMALL + ["--crops-per-pass", "6"]) == 0
    assert "Rendered 0 objectives" in capsys.readouterr().out
    assert {path: path.stat().st_mtime_ns for path in tmp_path.glob("*.png")} == modified
    assert len(manifest_entries(tmp_path)) == 4


def test_two_shards_equal_the_unsharded_job(model_file, tmp_path):
    whole, sharded = tmp_path / "whole", tmp_path / "sharded"
    common = ["render", str(model_file), "--layer", "conv2", "--objective", "channel", "--indices", "0:5"]
    assert main(common + ["--output", str(whole)] + SMALL) == 0
    for shard in ("0/2", "1/2"):
        assert main(common + ["--output", str(sharded), "--shard", shard] + SMALL) == 0
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


def test_killed_job_resumes_with_every_output_once(model_file, tmp_path):
    command = [sys.executable, "-m", "xplique_maco.cli", "render", str(model_file), "--layer", "logits"]
    command += ["--indices", "0:10", "--batch-size", "1", "--output", str(tmp_path), "--steps", "25"]
    command += SMALL[2:]
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
            + SMALL[2:]
        )
        == 0
    )
    entries = manifest_entries(tmp_path)
    assert sorted(entry["index"] for entry in entries) == list(range(10))  # each exactly once
    for entry in entries:
        for name in entry["files"].values():
            assert read_png(tmp_path / name).size > 0


def test_models_load_in_safe_mode_unless_asked(tmp_path, capsys):
    inputs = keras.Input((32, 32, 3))
    outputs = keras.layers.Lambda(lambda x: x * 2.0, name="double")(inputs)
    path = tmp_path / "lambda.keras"
    keras.Model(inputs, keras.layers.Conv2D(2, 3, name="conv")(outputs)).save(path)
    args = [
        "render",
        str(path),
        "--layer",
        "conv",
        "--indices",
        "0",
        "--output",
        str(tmp_path / "out"),
    ] + SMALL
    assert main(args) == 2
    assert "--unsafe-model-loading" in capsys.readouterr().err
    assert main(args + ["--unsafe-model-loading"]) == 0


@pytest.mark.parametrize(
    "change, message",
    [
        ({"--layer": ["logitz"]}, "Layer 'logitz' not found in model"),
        ({"--indices": ["5:12"]}, "out of range for layer 'logits' with 10 units"),
        ({"--indices": ["0-3"]}, "Cannot read indices '0-3'"),
        ({"--shard": ["2/2"]}, "'I/N' with 0 <= I < N"),
        ({"--values-range": ["1", "0"]}, "--values-range must satisfy low < high"),
    ],
)
def test_bad_arguments_fail_before_rendering(model_file, tmp_path, capsys, change, message):
    options = {"--layer": ["logits"], "--indices": ["0:2"], "--output": [str(tmp_path / "out")], **change}
    args = ["render", str(model_file)] + [
        item for flag, values in options.items() for item in [flag, *values]
    ]
    assert main(args + SMALL) == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.rglob("*.png"))


def test_unwritable_folder_and_non_model_file(model_file, tmp_path, capsys):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the folder should be")
    assert (
        main(
            ["render", str(model_file), "--layer", "logits", "--indices", "0", "--output", str(blocked / "x")]
            + SMALL
        )
        == 2
    )
    assert "Cannot write to the output folder" in capsys.readouterr().err
    fake = tmp_path / "fake.keras"
    fake.write_bytes(b"not a zip archive")
    assert main(["render", str(fake), "--layer", "x", "--indices", "0", "--output", str(tmp_path / "o")]) == 2
    assert "Cannot load" in capsys.readouterr().err


def test_finished_images_are_never_overwritten_by_other_settings(model_file, tmp_path, capsys):
    args = ["render", str(model_file), "--layer", "logits", "--indices", "0", "--output", str(tmp_path)]
    assert main(args + SMALL) == 0
    before = {path: path.read_bytes() for path in tmp_path.glob("*.png")}
    assert main(args + ["--steps", "4"] + SMALL[2:]) == 2
    assert "holds results made with other settings" in capsys.readouterr().err
    assert {path: path.read_bytes() for path in tmp_path.glob("*.png")} == before


def test_render_leaves_a_page_it_did_not_write_alone(model_file, tmp_path, capsys):
    (tmp_path / "index.html").write_text("mine", encoding="utf-8")
    labels = tmp_path / "labels.txt"
    labels.write_text("a\nb\n", encoding="utf-8")
    args = ["render", str(model_file), "--layer", "logits", "--indices", "0:2", "--output", str(tmp_path)]
    assert main(args + SMALL) == 2
    assert "index.html exists and was not written by xplique-maco" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.png"))  # refused before rendering
    assert (tmp_path / "index.html").read_text(encoding="utf-8") == "mine"
    assert main(args + SMALL + ["--no-page"]) == 0
    (tmp_path / "index.html").unlink()
    assert main(args[:5] + ["0:3"] + args[6:] + SMALL + ["--labels", str(labels)]) == 2
    assert "2 labels for indices up to 2" in capsys.readouterr().err
    assert main(args + SMALL + ["--labels", str(labels)]) == 0  # all finished: the page is still written
    assert [unit["label"] for unit in page_data(tmp_path)["units"]] == ["a", "b"]
