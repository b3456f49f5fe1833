"""The console command answers at once, agrees with the library's defaults, and keeps TensorFlow quiet."""

import dataclasses
import inspect
import os
import subprocess
import sys

import keras
import pytest
from helpers import SMALL_RENDER, page_data, read_png, write_atlas

from xplique_maco import accentuate, fourier, maco
from xplique_maco._apps.cli import parser
from xplique_maco._config.defaults import ACCENTUATE, ATLAS, CLOSENESS, DEMO, FOURIER, MACO
from xplique_maco.atlas import render_atlas
from xplique_maco.cli import main


def _run(*code_or_args: str, environment: dict | None = None) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    env.update(environment or {})
    return subprocess.run(
        [sys.executable, *code_or_args], capture_output=True, text=True, env=env, timeout=300
    )


def test_help_does_not_import_tensorflow():
    code = (
        "import sys\n"
        "from xplique_maco.cli import main\n"
        "for command in ([], ['demo'], ['render']):\n"
        "    try:\n"
        "        main([*command, '--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    result = _run("-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False False"
    assert "--values-range" in result.stdout


def test_signatures_and_the_command_line_read_the_library_defaults():
    # Each default is written once, in _config/defaults.py: the signatures users read in notebooks
    # and the command line's options must say the same.
    for function, written in (
        (maco, MACO),
        (fourier, FOURIER),
        (accentuate, ACCENTUATE),
        (render_atlas, ATLAS),
    ):
        signature = inspect.signature(function).parameters
        shared = [field.name for field in dataclasses.fields(written) if field.name in signature]
        assert len(shared) >= 3
        for name in shared:
            assert signature[name].default == getattr(written, name), (function.__name__, name)
    assert inspect.signature(accentuate).parameters["closeness"].default == CLOSENESS
    render = parser().parse_args(["render", "m.keras", "--layer", "x", "--indices", "0", "--output", "o"])
    assert (render.steps, render.crops, render.glance) == (MACO.nb_steps, MACO.nb_crops, MACO.glance)
    assert (render.image_size, render.image_size) == MACO.image_shape
    assert tuple(render.values_range) == MACO.values_range
    assert (render.seed, render.batch_size, render.objective) == (ATLAS.seed, ATLAS.batch_size, ATLAS.kind)
    demo = parser().parse_args(["demo"])
    assert (demo.image_size, demo.steps, demo.crops) == (DEMO.image_size, MACO.nb_steps, MACO.nb_crops)


def test_tensorflow_start_up_lines_are_off_unless_asked(tmp_path):
    # The missing model file is found after TensorFlow is imported (the zoo is loaded first).
    args = ["-m", "xplique_maco.cli", "render", str(tmp_path / "missing.keras"), "--layer", "x"]
    args += ["--indices", "0", "--output", str(tmp_path / "out")]
    quiet = _run(*args)
    assert quiet.returncode == 2
    lines = quiet.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("xplique-maco: error: No model file"), quiet.stderr
    # A user who sets TF_CPP_MIN_LOG_LEVEL keeps their choice: the stream is left alone.
    chosen = _run(*args, environment={"TF_CPP_MIN_LOG_LEVEL": "0"})
    assert chosen.returncode == 2
    assert "No model file" in chosen.stderr


# ---- the render command's own work: loading models safely, arguments, folders (moved here) ----


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
    ] + SMALL_RENDER
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
    assert main(args + SMALL_RENDER) == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.rglob("*.png"))


def test_unwritable_folder_and_non_model_file(model_file, tmp_path, capsys):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the folder should be")
    assert (
        main(
            ["render", str(model_file), "--layer", "logits", "--indices", "0", "--output", str(blocked / "x")]
            + SMALL_RENDER
        )
        == 2
    )
    assert "Cannot write to the output folder" in capsys.readouterr().err
    fake = tmp_path / "fake.keras"
    fake.write_bytes(b"not a zip archive")
    assert main(["render", str(fake), "--layer", "x", "--indices", "0", "--output", str(tmp_path / "o")]) == 2
    assert "Cannot load" in capsys.readouterr().err


# ---- the demo command (moved here) ----


@pytest.mark.slow
def test_demo_writes_images_and_a_grid(tmp_path, capsys):
    code = main(
        [
            "demo",
            "--classes",
            "espresso",
            "1",
            "--steps",
            "2",
            "--image-size",
            "64",
            "--crops",
            "1",
            "--output",
            str(tmp_path),
        ]
    )
    assert code == 0
    assert read_png(tmp_path / "967_espresso_rgba.png").shape == (64, 64, 4)
    assert read_png(tmp_path / "001_goldfish.png").shape == (64, 64, 3)
    assert (tmp_path / "grid.png").stat().st_size > 1000
    assert "grid.png" in capsys.readouterr().out
    units = page_data(tmp_path)["units"]
    assert [(unit["index"], unit["label"]) for unit in units] == [(1, "goldfish"), (967, "espresso")]
    assert units[1]["files"]["transparency"] == "967_espresso_transparency.png"


def test_demo_does_not_write_into_a_render_folder(tmp_path, capsys):
    write_atlas(tmp_path, [0])
    assert main(["demo", "--output", str(tmp_path)]) == 2
    assert "holds the results of another run (manifest.jsonl)" in capsys.readouterr().err
    assert not (tmp_path / "index.html").exists()


def test_demo_rejects_unknown_class(tmp_path, capsys):
    assert main(["demo", "--classes", "expresso", "--output", str(tmp_path)]) == 2
    assert "No class named 'expresso'" in capsys.readouterr().err
