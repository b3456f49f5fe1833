"""Thumbnails of a page's images, made once (again only when the image is newer), and the lock
that lets shards rebuilding one folder's page take turns."""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

from PIL import Image

from .._config.files import atomic_write

THUMBNAILS = "thumbnails"
THUMBNAIL_SIDE = 160
_THUMBNAIL_QUALITY = 80


def thumbnail(source: str, target: str, kind: str) -> bool:
    """Writes a small WebP of `source` unless an up-to-date one exists; True if it wrote one.

    `kind` is "image" (RGB), "transparency" (grey) or "rgba" (with its alpha)."""
    with contextlib.suppress(FileNotFoundError):
        if os.stat(target).st_mtime_ns >= os.stat(source).st_mtime_ns:
            return False
    try:
        with Image.open(source) as picture:
            picture = picture.convert({"image": "RGB", "transparency": "L", "rgba": "RGBA"}[kind])
    except OSError as error:
        raise ValueError(f"Cannot read the image {source} for its thumbnail: {error}") from None
    picture.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
    payload = _encode(picture)
    atomic_write(Path(target), payload)
    return True


def _encode(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="WEBP", quality=_THUMBNAIL_QUALITY, method=4)
    return buffer.getvalue()


def thumbnail_name(file_name: str) -> str:
    """Where the thumbnail of a page's file goes, relative to the folder."""
    return f"{THUMBNAILS}/{os.path.splitext(file_name)[0]}.webp"


@contextlib.contextmanager
def page_lock(folder: Path):
    """Shards rendering into one folder rebuild the page one at a time (where the OS has flock)."""
    try:
        import fcntl
    except ImportError:  # Windows: the last writer wins; `xplique-maco page` rebuilds it whole
        yield
        return
    with open(folder / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
