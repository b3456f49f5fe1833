"""The console command answers at once, agrees with the library's defaults, and keeps TensorFlow quiet."""

import inspect
import os
import subprocess
import sys

from xplique_maco import maco
from xplique_maco.atlas import render_atlas
from xplique_maco.cli import ATLAS, MACO


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


def test_defaults_are_the_library_defaults():
    for function, read in ((maco, MACO), (render_atlas, ATLAS)):
        signature = {
            name: parameter.default
            for name, parameter in inspect.signature(function).parameters.items()
            if parameter.default is not inspect.Parameter.empty
        }
        literal = {name: value for name, value in signature.items() if name in read}
        assert read == literal
    assert {"nb_steps", "image_shape", "nb_crops", "values_range"} <= set(MACO)
    assert {"seed", "batch_size", "kind"} <= set(ATLAS)


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
