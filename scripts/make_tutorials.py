"""Builds the notebooks of tutorials/ from their percent scripts, and optionally executes them.

Usage:
    python scripts/make_tutorials.py                  # rebuild the notebooks; outputs kept where the code is unchanged
    python scripts/make_tutorials.py --execute        # rebuild, then run them in full mode and store outputs
    python scripts/make_tutorials.py --execute --only 03 05
    python scripts/make_tutorials.py --execute --fast # run in fast mode (as CI does) without saving

The source of each tutorial is `tutorials/NN_name.py`, a Jupyter percent script (`# %%` starts
a code cell, `# %% [markdown]` a text cell): edit it in any editor, or open it in Jupyter with
jupytext. Ruff lints and formats it like the rest of the code. `tutorials/NN_name.ipynb` is
built from it and committed with the outputs of a full run.

A rebuild keeps the stored outputs of a notebook when its code is unchanged, which here means
that every code cell parses to the same syntax tree: prose edits and reformatting keep the
pictures, any change to what runs drops them until the notebook is executed again.
Executions run in a temporary folder, so files the notebooks write never land in the
repository. Run full executions with `nice -n 10` on a shared machine.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import jupytext
import nbformat

TUTORIALS = Path(__file__).resolve().parent.parent / "tutorials"
RUN_KEY = "xplique_maco_run"  # notebook metadata: how its stored outputs were made
KERNEL = {
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}
_TF_LOG_LINE = re.compile(r"^(WARNING: All log messages before absl|[IWE]\d{4} \d\d:\d\d:\d\d|\s*$)")


def sources() -> list[Path]:
    """The tutorials' percent scripts, in order."""
    return sorted(TUTORIALS.glob("[0-9][0-9]_*.py"))


def build(source: Path) -> nbformat.NotebookNode:
    """The notebook of one percent script, without outputs."""
    notebook = jupytext.read(source)
    notebook.metadata = dict(KERNEL)
    for number, cell in enumerate(notebook.cells):
        cell.metadata, cell.id = {}, f"cell-{number:02d}"  # ids by position: rebuilds give small diffs
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nbformat.from_dict(notebook)


def same_code(first: nbformat.NotebookNode, second: nbformat.NotebookNode) -> bool:
    """Whether two notebooks have the same cells in the same order and the same code in each."""

    def shape(notebook):
        return [
            (cell.cell_type, ast.dump(ast.parse(cell.source)) if cell.cell_type == "code" else None)
            for cell in notebook.cells
        ]

    return shape(first) == shape(second)


def _keep_outputs(notebook: nbformat.NotebookNode, path: Path) -> bool:
    """Copies the outputs of the committed notebook into `notebook` if its code is unchanged."""
    if not path.exists():
        return False
    committed = nbformat.read(path, as_version=4)
    if not same_code(notebook, committed):
        return False
    for before, after in zip(committed.cells, notebook.cells, strict=True):
        if after.cell_type == "code":
            after.outputs, after.execution_count = before.outputs, before.execution_count
    if RUN_KEY in committed.metadata:
        notebook.metadata[RUN_KEY] = committed.metadata[RUN_KEY]
    return True


def _drop_native_logs(notebook: nbformat.NotebookNode) -> None:
    """Removes TensorFlow's C++ start-up logs (they reach stderr before Python can silence them)."""
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        kept = []
        for output in cell.outputs:
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                lines = [line for line in output.text.splitlines() if not _TF_LOG_LINE.match(line)]
                if not lines:
                    continue
                output.text = "\n".join(lines) + "\n"
            kept.append(output)
        cell.outputs = kept


def _settle_streams(notebook: nbformat.NotebookNode) -> None:
    """Merges each run of stream outputs of one name and keeps what a terminal would show: a
    progress bar redrawn with carriage returns and backspaces (one output per redraw, as the
    kernel sends them) becomes its last state, as Jupyter displays it."""
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        merged = []
        for output in cell.outputs:
            previous = merged[-1] if merged else None
            if (
                output.get("output_type") == "stream"
                and previous is not None
                and previous.get("output_type") == "stream"
                and previous.get("name") == output.get("name")
            ):
                previous.text += output.text
            else:
                merged.append(output)
        for output in merged:
            if output.get("output_type") == "stream":
                output.text = _as_shown(output.text)
        cell.outputs = merged


def _as_shown(text: str) -> str:
    """`text` as a terminal leaves it: a carriage return starts the line over, a backspace erases."""
    lines, line = [], []
    for character in text:
        if character == "\n":
            lines.append("".join(line))
            line = []
        elif character == "\r":
            line = []
        elif character == "\b":
            if line:
                line.pop()
        else:
            line.append(character)
    return "\n".join(lines + ["".join(line)])


def execute(notebook: nbformat.NotebookNode, fast: bool, folder: str | None = None) -> float:
    """Runs the notebook in place (in `folder`, else a temporary one); returns the seconds it took."""
    from nbclient import NotebookClient

    os.environ["XPLIQUE_MACO_FAST"] = "1" if fast else "0"  # the kernel inherits this environment
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        NotebookClient(
            notebook,
            timeout=3600,
            kernel_name="python3",
            resources={"metadata": {"path": folder or scratch}},
            record_timing=False,
        ).execute()  # raises CellExecutionError on the first failing cell
    _drop_native_logs(notebook)
    _settle_streams(notebook)
    seconds = time.perf_counter() - start
    # tests/integration/test_tutorials.py checks that committed outputs come from a full run.
    notebook.metadata[RUN_KEY] = {"mode": "fast" if fast else "full", "seconds": round(seconds)}
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--execute", action="store_true", help="run the notebooks and store their outputs")
    parser.add_argument("--fast", action="store_true", help="with --execute: fast mode, nothing saved")
    parser.add_argument("--only", nargs="+", default=[], help="notebook number prefixes, e.g. 01 04")
    args = parser.parse_args()
    selected = [source for source in sources() if not args.only or source.name[:2] in args.only]
    if args.only and len(selected) != len(args.only):
        known = ", ".join(source.name[:2] for source in sources())
        raise SystemExit(f"--only takes tutorial numbers among {known}, received {' '.join(args.only)}")
    for source in selected:
        notebook = build(source)
        path = source.with_suffix(".ipynb")
        if args.execute:
            seconds = execute(notebook, args.fast)
            print(f"{path.name}: executed in {'fast' if args.fast else 'full'} mode in {seconds:.0f} s")
            if args.fast:
                continue
        elif not _keep_outputs(notebook, path):
            print(f"{path.name}: code changed, written without outputs: run with --execute", flush=True)
        nbformat.validate(notebook)
        nbformat.write(notebook, path)
        print(f"wrote {path.relative_to(TUTORIALS.parent)} ({path.stat().st_size / 1e6:.2f} MB)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
