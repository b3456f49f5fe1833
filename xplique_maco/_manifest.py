"""A render's manifests: JSON Lines that survive a hard kill.

Each shard of a render appends to its own manifest, one whole line per finished objective in
one `write`. A hard kill (SIGKILL, power loss) can cut only the line being written, the last
one: readers skip it, and the next append first moves it to `<manifest>.cut` so that the new
line starts on a fresh one. A line that is not JSON anywhere else is damage, and is named.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MANIFESTS", "Manifest", "manifest_name", "read_manifest", "append_entry", "heal"]

MANIFESTS = "manifest*.jsonl"


def manifest_name(shard: tuple[int, int]) -> str:
    """The manifest file of shard (I, N): manifest.jsonl for a whole job, else one file per shard."""
    index, count = shard
    return "manifest.jsonl" if count == 1 else f"manifest.shard-{index}-of-{count}.jsonl"


def cut_name(manifest: Path) -> Path:
    """Where the cut last lines of `manifest` are kept: next to it, outside the manifests' pattern."""
    return manifest.with_name(manifest.name + ".cut")


@dataclass(frozen=True)
class Manifest:
    """A manifest as read: its entries with their line numbers, and the number of a cut last line."""

    path: Path
    entries: tuple[tuple[int, dict], ...]
    cut: int | None  # the last line, cut by a hard kill (or being written): not an entry


def read_manifest(path: Path) -> Manifest:
    """Reads a manifest; the last line may be cut, any other line that is not a JSON object is an error.

    Raises:
        ValueError: A line before the last is not a JSON object, naming the file and the line.
    """
    path = Path(path)
    lines = path.read_bytes().split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline, as every complete append does
    entries, cut = [], None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        entry = _entry(line)
        if entry is None:
            entry = _glued(line)
        if entry is None:
            raise ValueError(
                f"{path}, line {number}, is not a JSON object: {_shown(line)}. Only the last line of a "
                "manifest can be cut (by a hard kill while it was written), so something else changed "
                "this file. Fix or delete that line; a deleted line's objective is rendered again."
            )
        entries.append((number, entry))
    if tail.strip():
        number = len(lines) + 1
        entry = _entry(tail)
        if entry is None:
            cut = number
        else:  # complete but for its newline: a kill between the two, or an editor
            entries.append((number, entry))
    return Manifest(path, tuple(entries), cut)


def _entry(line: bytes) -> dict | None:
    try:
        entry = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return entry if isinstance(entry, dict) else None


def _glued(line: bytes) -> dict | None:
    """The entry at the end of a cut line that an append glued itself onto (as versions up to 0.1 did).

    Such a line is a cut line followed by a whole one: the whole one counts, the cut one does not.
    """
    start = line.find(b"{", 1)
    while start != -1:
        entry = _entry(line[start:])
        if entry is not None and "index" in entry:
            return entry
        start = line.find(b"{", start + 1)
    return None


def _shown(line: bytes) -> str:
    text = line.decode("utf-8", errors="replace")
    return repr(text if len(text) <= 80 else text[:77] + "...")


def heal(path: Path) -> str | None:
    """Makes `path` end on a fresh line; returns the cut last line it moved to `<path>.cut`, if any.

    Only the shard's lock holder calls it, on its own manifest. The cut text is appended to
    `<path>.cut` (and flushed) before the manifest is truncated after its last complete line, so
    a kill in between leaves a copy twice, never none. A last line that is a whole entry but for
    its newline is kept, and the newline added.
    """
    path = Path(path)
    if not path.is_file():
        return None
    with open(path, "r+b") as manifest:
        size = manifest.seek(0, os.SEEK_END)
        if size == 0:
            return None
        manifest.seek(size - 1)
        if manifest.read(1) == b"\n":
            return None
        manifest.seek(0)
        content = manifest.read()
        keep = content.rfind(b"\n") + 1
        tail = content[keep:]
        cut = _entry(tail) is None
        if cut:
            _append(cut_name(path), tail + b"\n")
            manifest.truncate(keep)
        else:
            manifest.write(b"\n")  # at the end: the read left the position there
        manifest.flush()
        os.fsync(manifest.fileno())
    return tail.decode("utf-8", errors="replace") if cut else None


def append_entry(path: Path, entry: dict) -> None:
    """Appends `entry` as one line, in one write flushed to disk, starting on a fresh line."""
    heal(path)
    _append(Path(path), (json.dumps(entry) + "\n").encode("utf-8"))


def _append(path: Path, payload: bytes) -> None:
    # O_APPEND: every write lands at the end, whatever other handles do; O_BINARY keeps "\n" on Windows.
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0)
    handle = os.open(path, flags, 0o666)
    try:
        written = os.write(handle, payload)
        while written < len(payload):  # a regular file takes it whole unless the disk is full
            written += os.write(handle, payload[written:])
        os.fsync(handle)
    finally:
        os.close(handle)
