"""The tutorials' scripts run end to end in fast mode; their notebooks match them and hold a full run.

Each tutorial is a percent script, `tutorials/NN_name.py`, and the notebook built from it,
`tutorials/NN_name.ipynb`, committed with the pictures of a full run. The script is executed
in memory as a notebook (nothing is written) in a fresh Jupyter kernel with XPLIQUE_MACO_FAST=1,
in a temporary folder; any failing cell fails the test. Needs jupytext, nbformat, nbclient and
ipykernel (the "python3" kernel), and scikit-learn (tutorial 03).
"""

from pathlib import Path

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.notebook

TUTORIALS = Path(__file__).resolve().parents[2] / "tutorials"
SCRIPTS = sorted(TUTORIALS.glob("[0-9][0-9]_*.py"))
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


def test_six_tutorials_each_a_script_and_its_notebook():
    names = [
        "01_getting_started",
        "02_objectives_vgg16",
        "03_concepts_nmf",
        "04_feature_inversion",
        "05_attribution",
        "06_vit_tokens",
    ]
    assert [path.stem for path in SCRIPTS] == names
    assert [path.stem for path in NOTEBOOKS] == names


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.stem)
def test_notebook_is_built_from_its_script(script):
    built = jupytext.read(script)
    committed = nbformat.read(script.with_suffix(".ipynb"), as_version=4)
    expected = [(cell.cell_type, cell.source) for cell in built.cells]
    stored = [(cell.cell_type, cell.source) for cell in committed.cells]
    assert stored == expected, (
        f"{script.with_suffix('.ipynb').name} does not match {script.name}: "
        "run python scripts/make_tutorials.py (add --execute --only NN if its code changed)"
    )


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
        f"{path.name}'s outputs must come from a full run "
        f"(python scripts/make_tutorials.py --execute --only {path.name[:2]}), "
        f"its metadata says {run or 'nothing'}"
    )


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.stem)
def test_runs_in_fast_mode(script, tmp_path, monkeypatch):
    monkeypatch.setenv("XPLIQUE_MACO_FAST", "1")  # the kernel inherits this process's environment
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    notebook = jupytext.read(script)  # the source itself, as an in-memory notebook
    NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=600,
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()  # raises CellExecutionError on the first failing cell
    assert _images(notebook) >= 1
