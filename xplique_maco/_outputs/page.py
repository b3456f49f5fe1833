"""The atlas page: one self-contained index.html showing every unit that a folder's manifests list.

Data flows manifest -> page: the page is rebuilt from the folder's manifests (all shards, all
resumed runs) and never read back. It writes only `index.html` and its `thumbnails/` folder, and
refuses to replace an `index.html` it did not write (the first line carries `MARKER`).
Thumbnails are made once per file (again only when the PNG is newer), so a rebuild after each
batch of a render costs reading the manifests and writing one HTML file. The lens page
(`_apps/lens/page.py`) shares its reading of manifests, its folder check, its filling of a
template (with the style and script helpers both pages share, `data/page.css` and `data/page.js`),
the labels it keeps and its warning of what is left off (`read_finished`, `check_own_page`,
`page_html`, `kept_labels`, `warn_left_off`).
"""

from __future__ import annotations

import json
import math
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .._config.files import atomic_write
from .._config.manifest import MANIFESTS, read_manifest, settings_differences
from .thumbnails import THUMBNAILS, page_lock, thumbnail, thumbnail_name

__all__ = [
    "build_page",
    "read_labels",
    "check_page_folder",
    "check_own_page",
    "read_finished",
    "page_html",
    "kept_labels",
    "warn_left_off",
    "PAGE",
    "THUMBNAILS",
    "MARKER",
]

PAGE = "index.html"
MARKER = "<!-- xplique-maco atlas page: rebuilt from the manifests by `xplique-maco page`; edits are lost -->"
_STATE = "page.json"  # in THUMBNAILS: the labels given once, kept for later rebuilds
_FILE_KINDS = ("image", "transparency", "rgba")
# An empty, "." or ".." part, a backslash or a colon (a drive, a URL scheme): not a file of the folder.
_OUTSIDE = re.compile(r"(^|/)\.{0,2}(/|$)|[\\:]")
_PLACEHOLDER = re.compile(r"__(PAGE_CSS|PAGE_JS|TITLE|DATA)__")  # in the templates of `page_html`
_ACCEPTED_FOLDER = (
    "a folder written by `xplique-maco render` (or `xplique-maco demo`), which holds manifest.jsonl "
    "or one manifest.shard-I-of-N.jsonl per shard next to the PNG files"
)


@dataclass(frozen=True)
class _Unit:
    """One rendered objective, as its manifest line describes it."""

    index: int
    objective: str
    value: float | None
    position: int | None
    files: dict
    manifest: str
    examples: tuple[str, ...] = ()
    example_values: tuple[float, ...] = ()


def read_labels(labels, folder: Path | None = None) -> tuple[str, ...] | None:
    """Labels by unit index from None, a sequence of strings, or a text file of one label per line."""
    if labels is None:
        return None
    if isinstance(labels, (str, os.PathLike)):
        path = Path(labels)
        if not path.is_file():
            raise ValueError(
                f"No labels file {str(labels)!r}. Accepted: a UTF-8 text file with one label per line "
                "(line 1 labels index 0)."
            )
        try:
            return tuple(path.read_text(encoding="utf-8-sig").splitlines())
        except UnicodeDecodeError as error:
            raise ValueError(f"Labels file {str(labels)!r} is not UTF-8 text: {error}.") from None
    if isinstance(labels, Sequence) and all(isinstance(label, str) for label in labels):
        return tuple(labels)
    raise ValueError(
        f"`labels` must be None, a sequence of strings (label i for index i) or the path of a text "
        f"file with one label per line, received {type(labels).__name__}."
    )


def check_page_folder(folder: Path) -> None:
    """Raises ValueError if `folder` holds an index.html or a thumbnails/ folder that the page did not write."""
    check_own_page(folder, MARKER, _STATE, "the atlas page")


def check_own_page(folder: Path, marker: str, state: str, name: str) -> None:
    """Raises ValueError if `folder` holds an index.html whose first line is not `marker`, or a
    thumbnails/ folder without the `state` file that page `name` keeps there."""
    folder = Path(folder)
    page = folder / PAGE
    if page.exists():
        with open(page, encoding="utf-8", errors="replace") as file:
            first = file.readline().strip()
        if first != marker:
            raise ValueError(
                f"{page} exists and was not written by xplique-maco for {name} (its first line is not "
                f"its marker comment{_whose(first)}): it is left alone. Move it away to let {name} be "
                "written there."
            )
    thumbnails = folder / THUMBNAILS
    if thumbnails.exists() and not (thumbnails / state).is_file() and any(thumbnails.iterdir()):
        raise ValueError(
            f"{thumbnails} exists and was not made by xplique-maco for {name} (it has no {state}): it is "
            f"left alone. Move it away to let {name} write its thumbnails there."
        )


def _whose(first_line: str) -> str:
    """What an index.html's first line says of the page, when xplique-maco wrote it."""
    match = re.fullmatch(r"<!-- xplique-maco (.+?) page:.*-->", first_line)
    return f"; it is xplique-maco's {match[1]} page" if match else ""


def _read_units(folder: Path) -> tuple[dict, list[_Unit], list[str]]:
    """The run's settings, the units whose files exist (one per index) and the missing files."""
    return read_finished(folder, _ACCEPTED_FOLDER, _unit)


def read_finished(folder: Path, accepted: str, parse) -> tuple[dict, list, list[str]]:
    """Every finished item of a folder's manifests (all shards and resumed runs), for its page.

    `parse(entry, manifest, number)` makes an item of a manifest line, with an `index` and the
    `files` (a dict of names relative to the folder) it needs, or raises ValueError. A later line
    for an index replaces an earlier one; a line whose files are not all there is left off.

    Returns:
        The run's settings, the items whose files exist (by index) and the missing files of
        the indices left off.

    Raises:
        ValueError: No folder, no manifest, no whole line, or lines of two runs' settings; the
            messages name what is accepted: `accepted`, a description of the folder.
    """
    if not folder.is_dir():
        raise ValueError(f"No folder {str(folder)!r}. Accepted: {accepted}.")
    manifests = sorted(folder.glob(MANIFESTS))
    if not manifests:
        raise ValueError(f"No manifest in {folder}. Accepted: {accepted}.")
    settings, first = None, ""
    latest: dict[int, object] = {}
    missing: dict[int, list[str]] = {}
    exists = _Listing(str(folder))
    for manifest in manifests:
        # A cut last line is no unit: the render redoes it (and reads never change a manifest).
        for number, entry in read_manifest(manifest).entries:
            where = f"{manifest.name} line {number}"
            item = parse(entry, manifest, number)
            if settings is None:
                settings, first = entry["settings"], where
            elif entry["settings"] != settings:
                raise ValueError(_two_runs(folder, first, settings, where, entry["settings"]))
            absent = [name for name in item.files.values() if not exists(name)]
            if absent:
                missing[item.index] = absent
            else:  # a later line for the same index (a redone objective) replaces an earlier one
                latest[item.index] = item
                missing.pop(item.index, None)
    if settings is None:
        raise ValueError(f"The manifests of {folder} hold no complete line. Accepted: {accepted}.")
    lost = [name for index in sorted(missing) if index not in latest for name in missing[index]]
    return settings, [latest[index] for index in sorted(latest)], lost


class _Listing:
    """Whether a folder holds a file (a name relative to it, with / between folders), from one
    listing of each folder asked about: a rebuild asks about thousands of files in a few folders."""

    def __init__(self, root: str):
        self.root = root
        self.files: dict[str, set[str]] = {}

    def __call__(self, name: str) -> bool:
        folder, _, base = name.rpartition("/")
        files = self.files.get(folder)
        if files is None:
            try:
                with os.scandir(os.path.join(self.root, folder)) as entries:
                    files = {entry.name for entry in entries if entry.is_file()}
            except OSError:  # no such folder (or not one): none of its files is there
                files = set()
            self.files[folder] = files
        return base in files


def _unit(entry, manifest: Path, number: int) -> _Unit:
    accepted = (
        "Accepted: a JSON object with an index >= 0, settings and files (image, transparency, rgba), "
        "as `xplique-maco render` writes"
    )
    where = f"{manifest}, line {number},"
    if not isinstance(entry, dict) or not {"index", "settings", "files"} <= set(entry):
        raise ValueError(f"{where} is not a manifest entry. {accepted}.")
    files = entry["files"]
    index = entry["index"]
    if (
        not isinstance(files, dict)
        or set(_FILE_KINDS) - set(files)
        or not isinstance(index, int)
        or index < 0
    ):
        raise ValueError(f"{where} lacks an index >= 0 or one of the files. {accepted}.")
    for name in files.values():
        if not _plain_name(name):
            raise ValueError(
                f"{where} names the file {name!r}, which is not in the folder. Accepted: plain names "
                "of files next to the manifest."
            )
    examples = entry.get("examples", [])
    if not isinstance(examples, list) or not all(inside_folder(name) for name in examples):
        raise ValueError(f"{where} names dataset examples that are not files of the folder: {examples!r}.")
    scores = entry.get("example_values", [])
    scores = (
        [float(score) for score in scores]
        if isinstance(scores, list) and len(scores) == len(examples)
        else []
    )
    value = entry.get("value")
    finite = isinstance(value, (int, float)) and math.isfinite(value)
    return _Unit(
        index=entry["index"],
        objective=str(entry.get("objective", "")),
        value=float(value) if finite else None,
        position=entry.get("position"),
        files={kind: files[kind] for kind in _FILE_KINDS},
        manifest=manifest.name,
        examples=tuple(examples),
        example_values=tuple(scores),
    )


def _plain_name(name) -> bool:
    """A file name without any folder part: the file is next to the manifest."""
    return (
        isinstance(name, str)
        and name not in ("", ".", "..")
        and os.path.basename(name) == name
        and "\\" not in name
    )


def inside_folder(name) -> bool:
    """A path relative to the folder that stays inside it (and cannot be read as a URL)."""
    return isinstance(name, str) and _OUTSIDE.search(name) is None


def _two_runs(folder: Path, first: str, settings: dict, where: str, other: dict) -> str:
    return (
        f"{folder} mixes the results of two runs: {first} and {where} have different settings "
        f"({settings_differences(settings, other)}). A page shows one run, and a folder holds one run's results: move one "
        "run's manifest and PNG files to another folder."
    )


def build_page(folder, labels=None) -> Path:
    """Writes `index.html` in an atlas folder: every rendered unit, searchable, sortable, with details.

    The page is rebuilt from all the folder's manifests (every shard and resumed run) and is
    self-contained: its script, style and data are inline, so it opens from the file system or
    any static web server, offline. Thumbnails go to `thumbnails/` (made only for new units).
    `render_atlas` and `xplique-maco render` call it after each finished batch.

    Args:
        folder: A folder written by `render_atlas` (or `xplique-maco render` / `demo`).
        labels: Unit labels: a sequence of strings (label i for index i, e.g.
            `zoo.imagenet_classes()`) or the path of a text file with one label per line. None
            keeps the labels given to an earlier build of this page (none: indices only).

    Returns:
        The path of `index.html`.

    Raises:
        ValueError: The folder has no manifest, its manifests mix two runs' settings, a manifest
            line before the last is not JSON (only the last can be cut by a hard kill; a cut one
            is skipped: its unit is not finished) or is not an entry, labels are too few for the indices, or `index.html` (or
            `thumbnails/`) exists and was not written by xplique-maco.

    Example:
    >>> from xplique_maco.atlas import build_page
    >>> from xplique_maco.zoo import imagenet_classes
    >>> build_page("atlas/", labels=imagenet_classes())  # then open atlas/index.html
    """
    folder = Path(folder)
    labels = read_labels(labels)
    settings, units, lost = _read_units(folder)
    check_page_folder(folder)
    thumbnails = folder / THUMBNAILS
    thumbnails.mkdir(exist_ok=True)
    with page_lock(thumbnails):
        known = kept_labels(thumbnails / _STATE, labels, units[-1].index if units else -1, "unit")
        root = str(folder)  # plain strings: thousands of paths per rebuild
        for unit in units:
            for kind in _FILE_KINDS:
                name = unit.files[kind]
                thumbnail(os.path.join(root, name), os.path.join(root, thumbnail_name(name)), kind)
        page = folder / PAGE
        atomic_write(page, _html(folder, settings, units, known, lost).encode("utf-8"))
    warn_left_off(lost, f"Units left off the page of {folder}", "Rerun the render command to redo them.")
    return page


def warn_left_off(lost: list[str], left_off: str, redo: str) -> None:
    """Warns, when files named by the manifests are `lost`, that items are `left_off` a page (what and
    which page), naming the first four files, and how to `redo` them. The warning points at the
    caller of the page's build."""
    if lost:
        shown = ", ".join(lost[:4]) + (f" and {len(lost) - 4} more" if len(lost) > 4 else "")
        warnings.warn(f"{left_off}: their files are missing ({shown}). {redo}", stacklevel=3)


def _html(folder: Path, settings: dict, units: list[_Unit], labels, lost: list[str]) -> str:
    kind = str(settings.get("kind", "unit"))
    title = f"{kind.capitalize()} atlas of {settings.get('layer', folder.name)}"
    data = {
        "title": title,
        "settings": settings,
        "missing": lost,
        "units": [
            {
                "index": unit.index,
                "label": labels[unit.index] if labels is not None else "",
                "objective": unit.objective,
                "value": unit.value,
                "position": unit.position,
                "manifest": unit.manifest,
                "files": unit.files,
                "thumbnails": {kind: thumbnail_name(name) for kind, name in unit.files.items()},
                "examples": list(unit.examples),
                "example_values": list(unit.example_values),
            }
            for unit in units
        ],
    }
    return page_html("page.html", MARKER, title, data)


def kept_labels(state_path: Path, labels, last_index: int, what: str) -> list[str] | None:
    """The labels a page shows: those given now, kept in its state file for later rebuilds, or
    those kept by an earlier build (None: none ever given). The state file, written on the first
    build, also marks the thumbnails folder as the page's own.

    Raises:
        ValueError: The labels do not reach `last_index`, the highest index shown (a `what` index).
    """
    state = json.loads(state_path.read_text(encoding="utf-8")) if state_path.is_file() else {}
    known = list(labels) if labels is not None else state.get("labels")
    if known is not None and last_index >= len(known):
        raise ValueError(
            f"{len(known)} labels for {what} indices up to {last_index}: the labels need one line "
            f"per index (line i + 1 labels index i), so at least {last_index + 1} lines."
        )
    if labels is not None or not state_path.is_file():
        atomic_write(state_path, json.dumps({**state, "labels": known}).encode("utf-8"))
    return known


def page_html(template: str, marker: str, title: str, data: dict) -> str:
    """A page from a template of `xplique_maco.data`: the marker line, then the template with its
    `__PAGE_CSS__` and `__PAGE_JS__` replaced by the style and the script helpers both pages share
    (`page.css`, `page.js`), its `__TITLE__` (HTML-escaped) and its `__DATA__` (JSON, inside a script
    element) filled in. Everything is inline: the page is one file, that opens offline."""
    files = resources.files("xplique_maco.data")
    # "<" escaped: a label cannot close the script element the data sits in.
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")
    filled = {
        "PAGE_CSS": files.joinpath("page.css").read_text("utf-8"),
        "PAGE_JS": files.joinpath("page.js").read_text("utf-8"),
        "TITLE": title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"),
        "DATA": payload,
    }
    # One pass: what is put in (a label, a title) is never read again for a placeholder.
    text = _PLACEHOLDER.sub(lambda match: filled[match[1]], files.joinpath(template).read_text("utf-8"))
    return marker + "\n" + text
