"""A render's manifests: JSON Lines that survive a hard kill, and one process per shard.

Each shard of a render appends to its own manifest, one whole line per finished objective in
one `write`. A hard kill (SIGKILL, power loss) can cut only the line being written, the last
one: readers skip it, and the next append first moves it to `<manifest>.cut` so that the new
line starts on a fresh one. A line that is not JSON anywhere else is damage, and is named.
A shard's lock file keeps a second process off the shard while the first renders it; the
operating system releases it when its process ends, even by a hard kill.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import socket
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None
try:
    import msvcrt
except ImportError:  # POSIX
    msvcrt = None

__all__ = [
    "MANIFESTS",
    "Manifest",
    "manifest_name",
    "unit_entry",
    "finished_indices",
    "read_manifest",
    "append_entry",
    "heal",
    "shard_lock",
]

MANIFESTS = "manifest*.jsonl"
_LOCK = re.compile(r"\.manifest(?:\.shard-(\d+)-of-(\d+))?\.jsonl\.lock")
# A lock that another process probes is busy for microseconds: retry that long before refusing.
_BUSY_RETRIES, _BUSY_WAIT = 10, 0.05
_HELD: dict[str, int] = {}  # lock files this process holds, by the thread that took each


def manifest_name(shard: tuple[int, int]) -> str:
    """The manifest file of shard (I, N): manifest.jsonl for a whole job, else one file per shard."""
    index, count = shard
    return "manifest.jsonl" if count == 1 else f"manifest.shard-{index}-of-{count}.jsonl"


def cut_name(manifest: Path) -> Path:
    """Where the cut last lines of `manifest` are kept: next to it, outside the manifests' pattern."""
    return manifest.with_name(manifest.name + ".cut")


def lock_name(folder: Path, shard: tuple[int, int]) -> Path:
    return Path(folder) / f".{manifest_name(shard)}.lock"


@dataclass(frozen=True)
class Manifest:
    """A manifest as read: its entries with their line numbers, and the number of a cut last line."""

    path: Path
    entries: tuple[tuple[int, dict], ...]
    cut: int | None  # the last line, cut by a hard kill (or being written): not an entry


def unit_entry(
    kind: str, layer: str, index: int, position: int, settings: dict, seed: int, value: float, files
) -> dict:
    """The manifest line of one rendered unit: what it is, how it was made, its final value and files."""
    return {
        "objective": f"{kind.capitalize()}({layer}, {index})",
        "index": index,
        "position": position,
        "settings": settings,
        "seed": seed,
        "value": value,
        "files": files,
    }


def settings_differences(first, second) -> str:
    """The settings two manifest lines disagree on, as `key: first vs second, ...`."""
    if not (isinstance(first, dict) and isinstance(second, dict)):
        return f"{first!r} vs {second!r}"
    keys = sorted(key for key in {*first, *second} if first.get(key) != second.get(key))
    return ", ".join(f"{key}: {first.get(key)!r} vs {second.get(key)!r}" for key in keys)


def finished_indices(folder: Path, settings: dict, unrecorded: dict | None = None) -> set[int]:
    """The indices with a whole manifest line (in any manifest of the folder) and all their files.

    A cut last line is no entry: its objective is redone. A line made with other `settings`
    (after filling in `unrecorded`: settings that lines of older versions do not record) is an
    error naming the settings that differ: a folder holds the results of one set of settings.
    """
    folder = Path(folder)
    done: set[int] = set()
    for path in sorted(folder.glob(MANIFESTS)):
        for number, entry in read_manifest(path).entries:
            recorded = entry.get("settings")
            if isinstance(recorded, dict):
                recorded = {**(unrecorded or {}), **recorded}
            if recorded != settings:
                raise ValueError(
                    f"{folder} holds results made with other settings ({path.name} line {number} vs "
                    f"this call: {settings_differences(recorded, settings)}); pass the folder's settings "
                    "to resume it, or use another output folder to render these ones."
                )
            if all((folder / name).is_file() for name in entry.get("files", {}).values()):
                done.add(int(entry["index"]))
    return done


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


@contextlib.contextmanager
def shard_lock(folder: Path, shard: tuple[int, int]):
    """Holds shard (I, N)'s lock file in `folder` while the block runs, or refuses at once.

    Another process holding it, or holding the lock of a shard of another count that shares
    objectives with this one (0/2 and 1/4 share none, 0/1 and 1/4 do), raises ValueError naming
    the folder, the shards and the lock file. Shards that share no objective run side by side.
    The same thread may take a lock it holds again (the command line takes it before loading
    the model, then `render_atlas` takes it too). Where the file system cannot lock (some
    network file systems), a warning says so and the block runs unlocked.

    Example:
    >>> with shard_lock(Path("atlas"), (0, 4)):
    ...     pass  # render shard 0 of 4
    """
    folder = Path(folder)
    path = lock_name(folder, shard)
    key = os.path.abspath(path)
    if _HELD.get(key) == threading.get_ident():
        yield
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+b")
    except OSError as error:
        raise ValueError(f"Cannot write to the output folder {folder}: {error}") from None
    with handle:
        try:
            taken = _try_lock(handle, exclusive=True, retries=_BUSY_RETRIES)
        except _CannotLock as error:
            _warn_unlocked(folder, shard, path, error)
            yield
            return
        if not taken:
            raise ValueError(_busy(folder, shard, path, shard))
        try:
            _check_overlapping_shards(folder, shard)
            _write_holder(handle, shard)
            _HELD[key] = threading.get_ident()
            try:
                yield
            finally:
                del _HELD[key]
        finally:
            _unlock(handle)


class _CannotLock(OSError):
    """The file system does not lock files (some network file systems)."""


def _try_lock(handle, exclusive: bool, retries: int = 0) -> bool:
    """Takes the lock of an open file without waiting for a holder; False if another process holds it.

    Raises _CannotLock where the platform or the file system has no locks.
    """
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(_BUSY_WAIT)
        if fcntl is not None:
            try:
                fcntl.flock(handle.fileno(), (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                continue
            except OSError as error:  # ENOLCK, EOPNOTSUPP: a file system without locks
                raise _CannotLock(error.errno, error.strerror) from None
        if msvcrt is None:
            raise _CannotLock("this platform has neither fcntl nor msvcrt")
        try:  # Windows has no shared lock: byte 0 stands for the file, held or not
            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            continue
    return False


def _unlock(handle) -> None:
    with contextlib.suppress(OSError):
        if fcntl is not None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        elif msvcrt is not None:
            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)


def _check_overlapping_shards(folder: Path, shard: tuple[int, int]) -> None:
    """Refuses while a shard of another count that shares objectives with `shard` is rendering."""
    index, count = shard
    for path in sorted(folder.glob(".manifest*.jsonl.lock")):
        match = _LOCK.fullmatch(path.name)
        if not match:
            continue
        other = (int(match[1]), int(match[2])) if match[1] else (0, 1)
        # Positions p = index (mod count) and p = other (mod its count) exist together iff the
        # indices agree modulo the gcd of the counts.
        if other[1] == count or (index - other[0]) % math.gcd(count, other[1]):
            continue
        with contextlib.suppress(OSError), open(path, "rb") as probe:
            if not _try_lock(probe, exclusive=False):
                raise ValueError(_busy(folder, shard, path, other))
            _unlock(probe)


def _write_holder(handle, shard: tuple[int, int]) -> None:
    """Notes who holds the lock, for the message of a process that is refused."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    note = f"shard {shard[0]}/{shard[1]}, process {os.getpid()} on {socket.gethostname()}, since {stamp}\n"
    with contextlib.suppress(OSError):
        handle.truncate(0)
        handle.write(note.encode("utf-8"))
        handle.flush()


def _busy(folder: Path, shard: tuple[int, int], path: Path, other: tuple[int, int]) -> str:
    try:
        holder = path.read_text(encoding="utf-8", errors="replace").strip()[:200]
    except OSError:  # Windows: the holder's locked byte cannot be read
        holder = ""
    holder = f" ({holder})" if holder else ""
    mine, theirs = f"{shard[0]}/{shard[1]}", f"{other[0]}/{other[1]}"
    which = (
        f"shard {mine}" if mine == theirs else f"shard {theirs}, which shares objectives with shard {mine},"
    )
    return (
        f"Another process is rendering {which} into {folder}: it holds the lock file {path}{holder}. "
        "Two processes on the same objectives would render them twice, so this one stops before "
        "rendering anything. Wait for it to finish or stop it (its lock is released when it ends, even by a "
        "hard kill), then rerun to resume; other shards (--shard I/N) may run at the same time."
    )


def _warn_unlocked(folder: Path, shard: tuple[int, int], path: Path, error: OSError) -> None:
    warnings.warn(
        f"Cannot lock {path} ({error}): rendering shard {shard[0]}/{shard[1]} into {folder} without "
        "the lock, so nothing stops a second process on this shard from rendering the same objectives.",
        stacklevel=4,
    )
