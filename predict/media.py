"""Reading images and videos with clear errors, and naming the annotated copies. Every file
is read through ferlib.cvio, so any file name works."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from ferlib import cvio
from ferlib.cvio import IMAGE_SUFFIXES

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"}
# Formats an annotated (colour) copy can be written in; other inputs get ".png" added.
COLOUR_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm"}
# Containers OpenCV writes MPEG-4 video into; other inputs get ".mp4" added.
VIDEO_OUT_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".m4v"}
# A decoder that fails this many frames in a row has reached the end of what it can read.
MAX_BAD_FRAMES_IN_A_ROW = 50

os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # FFmpeg's own messages: undecodable frames are counted


def show(path: Path | str) -> str:
    """A path as messages and results print it: bytes that are not UTF-8 as \\xNN escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


class InputError(Exception):
    """A file that cannot be used, or an output that cannot be written; the message names it."""


def kind(path: Path) -> str:
    """'image', 'video' or 'folder'; InputError for anything else."""
    if path.is_dir():
        return "folder"
    if not path.exists():
        what = "dangling link" if path.is_symlink() else "no such file or folder"
        raise InputError(f"{show(path)}: {what}")
    if not path.is_file():
        raise InputError(f"{show(path)}: not a regular file")
    if path.stat().st_size == 0:
        raise InputError(f"{show(path)}: empty file (0 bytes)")
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return "video"
    if suffix in IMAGE_SUFFIXES:
        return "image"
    raise InputError(
        f"{show(path)}: not an image or video (unknown extension {suffix or 'none'!r}; "
        f"images: {', '.join(sorted(IMAGE_SUFFIXES))}; videos: {', '.join(sorted(VIDEO_SUFFIXES))})"
    )


def annotated_name(path: Path, what: str) -> str:
    """The annotated copy's file name: the input's full name, so that x.jpg, x.JPG and x.png
    never share one; the input's own format where a colour copy can be written in it."""
    keep = COLOUR_IMAGE_SUFFIXES if what == "image" else VIDEO_OUT_SUFFIXES
    return path.name if path.suffix.lower() in keep else path.name + (".png" if what == "image" else ".mp4")


def read_image(path: Path) -> np.ndarray:
    """An 8-bit gray or BGR image, turned upright as its EXIF orientation says; 16-bit images
    are scaled to 8 bits."""
    try:
        image = cvio.decode_image(path, cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR)
    except cv2.error as error:
        reason = "too large to decode" if "pixels" in str(error) else "OpenCV cannot decode it"
        raise InputError(f"{show(path)}: not a usable image ({reason})") from error
    except MemoryError as error:
        raise InputError(f"{show(path)}: too large to decode in memory") from error
    except OSError as error:
        raise InputError(f"{show(path)}: cannot read ({error.strerror})") from error
    if image is None or image.size == 0:
        raise InputError(f"{show(path)}: not a readable image (truncated, corrupt or not an image)")
    if image.dtype == np.uint16:
        image = (image // 257).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise InputError(f"{show(path)}: unsupported pixel type {image.dtype} (8- or 16-bit images only)")
    return image


class Video:
    """The frames of a video file, a stream URL OpenCV can open (rtsp://, http://...) or a
    camera (an index), skipping (and counting) frames that cannot be decoded; use it in a
    with block."""

    def __init__(self, source: Path | str | int):
        if isinstance(source, str) and "://" not in source:
            source = Path(source)  # a file's path given as text: only a URL is a stream
        self.source = source
        self.live = not isinstance(source, Path)  # a stream or camera: no end of its own
        self.name = (
            show(source) if isinstance(source, Path) else f"camera {source}" if isinstance(source, int) else source
        )
        self.skipped = 0
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> Video:
        with self._stack as stack:
            where = stack.enter_context(cvio.readable(self.source)) if isinstance(self.source, Path) else self.source
            self.capture = cv2.VideoCapture(where)
            stack.callback(self.capture.release)
            if not self.capture.isOpened():
                raise InputError(f"{self.name}: not a readable video" + ("" if not self.live else " (cannot open it)"))
            self._stack = stack.pop_all()
        fps = self.capture.get(cv2.CAP_PROP_FPS)
        self.fps = fps if 0 < fps < 1000 else 25.0
        self.size = (int(self.capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(self.capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        self.frame_count = 0 if self.live else max(0, int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT)))
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def frames(self) -> Iterator[tuple[int, np.ndarray]]:
        """(frame index, BGR frame) for every decodable frame; indices count skipped ones too."""
        index, failed = 0, 0
        while failed < MAX_BAD_FRAMES_IN_A_ROW:
            ok, frame = self.capture.read()
            if not ok or frame is None:
                failed += 1
                continue
            self.skipped += failed
            index += failed
            failed = 0
            yield index, frame
            index += 1
