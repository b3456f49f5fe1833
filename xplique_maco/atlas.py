"""Rendering many objectives to files: chunked, sharded across machines, safe to interrupt and resume.

Each objective's PNGs are written atomically (temporary file, then rename), then one line is
appended to the shard's manifest (JSON Lines). An objective counts as finished when its
manifest line is whole and its files are there; a rerun skips finished objectives and redoes
the others, so a killed job resumes where it stopped and a finished image is never written
twice. A shard renders in one process at a time: a second one on the same folder and shard is
refused before it renders anything. After each finished batch the folder's page,
`index.html`, is rebuilt from all its manifests (see `build_page`).
"""

from __future__ import annotations

from ._apps.atlas import render_atlas
from ._config.checks import parse_indices, parse_shard
from ._outputs.page import build_page

__all__ = ["parse_indices", "parse_shard", "render_atlas", "build_page"]
