"""OpenCV image and video files under any file name.

OpenCV takes file names as UTF-8 text and crashes on a name that is not valid UTF-8 (Python
hands such names over as surrogate escapes). Images therefore go through bytes in memory
(np.fromfile + cv2.imdecode, cv2.imencode + an atomic write), and videos through
/proc/self/fd paths, which are plain ASCII whatever the real name is.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from ferlib import atomic

# Image files OpenCV reads, by extension (the predict stage and folder datasets share it).
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm"})


def utf8_safe(path: Path) -> bool:
    """Whether OpenCV can be given this path as it is."""
    try:
        os.fsencode(path).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@contextlib.contextmanager
def readable(path: Path) -> Iterator[str]:
    """A name OpenCV can open for reading the existing file path."""
    if utf8_safe(path):
        yield str(path)
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        yield f"/proc/self/fd/{fd}"
    finally:
        os.close(fd)


@contextlib.contextmanager
def writable(path: Path) -> Iterator[str]:
    """A name OpenCV can create path under; path's own name must be ASCII (a temp_name)."""
    if utf8_safe(path):
        yield str(path)
        return
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


def decode_image(path: Path, flags: int) -> np.ndarray | None:
    """cv2.imdecode of the file's bytes; None when OpenCV cannot decode them."""
    data = np.fromfile(path, dtype=np.uint8)
    return cv2.imdecode(data, flags) if data.size else None


def write_image(dest: Path, image: np.ndarray, params: tuple[int, ...] = ()) -> None:
    """Encode image in the format dest's extension names and write it atomically."""
    ok, encoded = cv2.imencode(dest.suffix, image, list(params))
    if not ok:
        raise ValueError(f"OpenCV cannot encode a {dest.suffix} image")
    atomic.write_bytes(dest, encoded.tobytes())
