"""The package's public names: they load on first use, and only with Keras's TensorFlow backend."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

import xplique_maco


@pytest.mark.slow
def test_another_keras_backend_is_refused_at_import_with_the_fix():  # of any public name
    script = (
        "import keras\n"
        "keras.config.backend = lambda: 'jax'  # as if KERAS_BACKEND=jax had been set\n"
        "from xplique_maco import maco\n"
    )
    environment = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=environment)
    assert result.returncode != 0
    assert "ImportError: xplique_maco needs Keras with its TensorFlow backend" in result.stderr
    assert "running on the 'jax' backend" in result.stderr and "KERAS_BACKEND=tensorflow" in result.stderr


def test_the_names_for_editors_are_the_names_loaded_on_use():
    # __init__.py lists the public names twice: in _PUBLIC, which __getattr__ loads from, and in
    # the `if TYPE_CHECKING:` imports that editors and the API reference read.
    tree = ast.parse(Path(xplique_maco.__file__).read_text())
    block = next(
        node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
    )
    for_editors = {
        (node.module or "", alias.name)
        for node in ast.walk(block)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    loaded = {(module, name) for module, names in xplique_maco._PUBLIC.items() for name in names}
    loaded |= {("", module) for module in xplique_maco._MODULES}
    assert for_editors == loaded
    for name in xplique_maco.__all__:
        assert getattr(xplique_maco, name) is not None
