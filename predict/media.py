"""Reading images and videos with clear errors, and drawing the results on them."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"}


class InputError(Exception):
    """A file that cannot be used, with the reason; the message names the file."""


def kind(path: Path) -> str:
    """'image', 'video' or 'folder'; InputError for anything else."""
    if path.is_dir():
        return "folder"
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if not path.is_file():
        raise InputError(f"{path}: not a regular file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file (0 bytes)")
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return "video"
    if suffix in IMAGE_SUFFIXES:
        return "image"
    raise InputError(
        f"{path}: not an image or video (unknown extension {suffix or 'none'!r}; "
        f"images: {', '.join(sorted(IMAGE_SUFFIXES))}; videos: {', '.join(sorted(VIDEO_SUFFIXES))})"
    )


def read_image(path: Path) -> np.ndarray:
    """An 8-bit gray, BGR or BGRA image; 16-bit images are scaled to 8 bits."""
    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise InputError(f"{path}: not a readable image (truncated, corrupt or not an image)")
    if image.dtype == np.uint16:
        image = (image // 257).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise InputError(f"{path}: unsupported pixel type {image.dtype} (8- or 16-bit images only)")
    if image.ndim == 3 and image.shape[2] == 2:  # gray + alpha
        image = image[:, :, 0]
    return image


def open_video(path: Path) -> tuple[cv2.VideoCapture, float, int, tuple[int, int]]:
    """A capture with its frames per second, frame count (0 when unknown) and (width, height)."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise InputError(f"{path}: not a readable video")
    ok, _ = capture.read()
    if not ok:
        raise InputError(f"{path}: no readable frames (truncated or corrupt video)")
    capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    return capture, fps, max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT))), size


def as_bgr(image: np.ndarray) -> np.ndarray:
    """A 3-channel copy to draw on."""
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image.copy()


def annotate(image: np.ndarray, faces: list[dict]) -> np.ndarray:
    """Boxes, landmarks and 'Label 0.87' above each face."""
    canvas = as_bgr(image)
    scale = max(0.4, min(canvas.shape[:2]) / 800)
    thickness = max(1, round(2 * scale))
    for face in faces:
        x, y, w, h = (round(v) for v in face["box"])
        cv2.rectangle(canvas, (x, y), (x + w, y + h), (0, 200, 255), thickness)
        for px, py in face["landmarks"].values():
            cv2.circle(canvas, (round(px), round(py)), thickness + 1, (0, 255, 0), -1)
        text = f"{face['label']} {face['probability']:.2f}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        top = max(th + base, y)
        cv2.rectangle(canvas, (x, top - th - base), (x + tw, top), (0, 200, 255), -1)
        cv2.putText(canvas, text, (x, top - base), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness, cv2.LINE_AA)
    return canvas
