"""The tutorials run end to end in fast mode, and are committed with their pictures.

Each notebook is executed in memory (the committed file is never touched) in a fresh Jupyter
kernel with XPLIQUE_MACO_FAST=1, in a temporary folder; any failing cell fails the test.
Needs nbformat, nbclient and ipykernel (the "python3" kernel), and scikit-learn (notebook 03).
"""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

TUTORIALS = Path(__file__).resolve().parent.parent / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("*.ipynb"))
IMAGE_TYPES = ("image/png", "image/jpeg")


def _code_cells(notebook):
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def _images(notebook) -> int:
    return sum(
        1
        for cell in _code_cells(notebook)
        for output in cell.outputs
        if any(kind in output.get("data", {}) for kind in IMAGE_TYPES)
    )


def test_six_tutorials():
    assert [path.name for path in NOTEBOOKS] == [
        "01_getting_started.ipynb",
        "02_objectives_vgg16.ipynb",
        "03_concepts_nmf.ipynb",
        "04_feature_inversion.ipynb",
        "05_attribution.ipynb",
        "06_vit_tokens.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_committed_with_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    cells = _code_cells(notebook)
    assert 'os.environ.get("XPLIQUE_MACO_FAST", "0") == "1"' in cells[0].source, (
        "the first code cell reads the fast flag"
    )
    not_run = [number for number, cell in enumerate(cells) if cell.execution_count is None]
    assert not not_run, f"code cells {not_run} of {path.name} were committed without being run"
    errors = [output for cell in cells for output in cell.outputs if output.output_type == "error"]
    assert not errors, f"{path.name} was committed with an error output: {errors[0].get('ename')}"
    assert _images(notebook) >= 1, f"{path.name} was committed without its pictures"
    run = notebook.metadata.get("xplique_maco_run", {})
    assert run.get("mode") == "full", (
        f"{path.name}'s outputs must come from a full run (python scripts/make_tutorials.py --execute), "
        f"its metadata says {run or 'nothing'}"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_runs_in_fast_mode(path, tmp_path, monkeypatch):
    monkeypatch.setenv("XPLIQUE_MACO_FAST", "1")  # the kernel inherits this process's environment
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    notebook = nbformat.read(path, as_version=4)  # an in-memory copy: the file is not rewritten
    NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=600,
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()  # raises CellExecutionError on the first failing cell
    assert _images(notebook) >= 1
