"""Encoders for recordings: frames (uint8, H x W x 3) to the bytes of a GIF or an MP4 file."""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def gif_bytes(frames: Sequence[np.ndarray], fps: int) -> bytes:
    """An endlessly looping GIF (Pillow)."""
    from PIL import Image

    pictures = [Image.fromarray(frame) for frame in frames]
    stream = io.BytesIO()
    pictures[0].save(
        stream,
        format="GIF",
        save_all=True,
        append_images=pictures[1:],
        duration=max(1, round(1000 / fps)),
        loop=0,
    )
    return stream.getvalue()


def mp4_bytes(frames: Sequence[np.ndarray], fps: int, folder: Path) -> bytes:
    """An MP4 (OpenCV, codec mp4v), encoded through a temporary file in `folder`."""
    import cv2

    height, width = frames[0].shape[:2]
    handle, temporary = tempfile.mkstemp(suffix=".mp4", dir=folder if folder.exists() else None)
    os.close(handle)
    try:
        writer = cv2.VideoWriter(temporary, cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
        if not writer.isOpened():
            raise RuntimeError("OpenCV could not open an MP4 writer (codec mp4v unavailable).")
        for frame in frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        writer.release()
        return Path(temporary).read_bytes()
    finally:
        os.unlink(temporary)
