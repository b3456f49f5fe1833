"""The package's public names: they load on first use, and only with Keras's TensorFlow backend."""

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_another_keras_backend_is_refused_at_import_with_the_fix():  # of any public name
    script = (
        "import keras\n"
        "keras.config.backend = lambda: 'jax'  # as if KERAS_BACKEND=jax had been set\n"
        "from xplique_maco import maco\n"
    )
    environment = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=environment)
    assert result.returncode != 0
    assert "ImportError: xplique_maco needs Keras with its TensorFlow backend" in result.stderr
    assert "running on the 'jax' backend" in result.stderr and "KERAS_BACKEND=tensorflow" in result.stderr
