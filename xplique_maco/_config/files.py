"""Files that are never half-written: atomic writes, and a check that a folder takes files."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def atomic_write(path: Path, payload: bytes) -> None:
    """Writes to a temporary file in the same folder, then renames: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(payload)
        os.chmod(temporary, 0o666 & ~_UMASK)  # mkstemp creates 0600; give files the usual mode
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def check_writable(folder: Path) -> None:
    """Creates `folder` if needed and proves a file can be written there, or raises ValueError."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(folder / ".write-test", b"")
        (folder / ".write-test").unlink()
    except OSError as error:
        raise ValueError(f"Cannot write to the output folder {folder}: {error}") from None
