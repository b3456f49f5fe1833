"""The lens page (being written): index.html of a lens folder, rebuilt from its manifests."""

from __future__ import annotations

from pathlib import Path


def check_lens_folder(folder: Path) -> None:
    """Raises ValueError if `folder` holds an index.html the lens page did not write."""
    if (Path(folder) / "index.html").exists():
        raise ValueError(f"{folder} holds an index.html")


def build_lens_page(folder, labels=None) -> Path:
    """Rebuilds `folder`/index.html from the folder's manifests."""
    return Path(folder) / "index.html"
