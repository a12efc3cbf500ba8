"""Annotated pictures that stay readable on any photo: marks sized from each face, labels
inside the picture that never cover each other, and a numbered legend when faces are too
crowded for labels beside them."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_SIMPLEX
BOX_COLOUR, LANDMARK_COLOUR, TEXT_COLOUR = (0, 200, 255), (0, 255, 0), (0, 0, 0)
MIN_SCALE = 0.35  # about 8 px high: the smallest legible text
MAX_SCALE = 1.6


@dataclass(frozen=True)
class Rect:
    x: int
    y: int
    w: int
    h: int

    def overlaps(self, other: Rect) -> bool:
        return (
            self.x < other.x + other.w
            and other.x < self.x + self.w
            and self.y < other.y + other.h
            and (other.y < self.y + self.h)
        )

    def inside(self, width: int, height: int) -> bool:
        return self.x >= 0 and self.y >= 0 and self.x + self.w <= width and self.y + self.h <= height


def text_scale(face_height: float) -> float:
    """Label text about a fifth of the face's height, within legible bounds."""
    return float(np.clip(face_height / 110, MIN_SCALE, MAX_SCALE))


def text_size(text: str, scale: float) -> tuple[int, int]:
    """(width, height) of the filled label rectangle, baseline included."""
    (width, height), base = cv2.getTextSize(text, FONT, scale, thickness(scale))
    return width + 4, height + base + 4


def thickness(scale: float) -> int:
    return 1 if scale < 0.9 else 2


def candidates(box: Rect, w: int, h: int, width: int, height: int) -> list[Rect]:
    """Places for a label of w x h beside its box: above, below, inside the top, inside the
    bottom; each slid sideways into the picture."""
    x = min(max(box.x, 0), max(width - w, 0))
    return [Rect(x, y, w, h) for y in (box.y - h, box.y + box.h, box.y, box.y + box.h - h)]


def place_labels(boxes: list[Rect], sizes: list[tuple[int, int]], width: int, height: int) -> list[Rect] | None:
    """A place for every label, inside the picture and clear of every other label and of
    the other faces; None when the faces are too crowded for that."""
    placed: list[Rect] = []
    for i, (box, (w, h)) in enumerate(zip(boxes, sizes)):
        others = boxes[:i] + boxes[i + 1 :]
        spot = next(
            (
                rect
                for rect in candidates(box, w, h, width, height)
                if rect.inside(width, height)
                and not any(rect.overlaps(p) for p in placed)
                and not any(rect.overlaps(o) for o in others)
            ),
            None,
        )
        if spot is None:
            return None
        placed.append(spot)
    return placed


def as_bgr(image: np.ndarray) -> np.ndarray:
    """A 3-channel copy to draw on."""
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image.copy()


def draw_label(canvas: np.ndarray, rect: Rect, text: str, scale: float) -> None:
    cv2.rectangle(canvas, (rect.x, rect.y), (rect.x + rect.w - 1, rect.y + rect.h - 1), BOX_COLOUR, -1)
    (_, text_h), base = cv2.getTextSize(text, FONT, scale, thickness(scale))
    origin = (rect.x + 2, rect.y + 2 + text_h)
    cv2.putText(canvas, text, origin, FONT, scale, TEXT_COLOUR, thickness(scale), cv2.LINE_AA)


def annotate(image: np.ndarray, faces: list[dict], landmarks: bool = True) -> np.ndarray:
    """Each face's box (and landmarks), and 'Label 0.87' beside it; when the labels do not fit
    beside their faces, numbers on the faces and a legend panel on the right instead."""
    canvas = as_bgr(image)
    height, width = canvas.shape[:2]
    boxes = [Rect(*(round(v) for v in face["box"])) for face in faces]
    for box, face in zip(boxes, faces):
        line = max(1, round(min(box.w, box.h) / 60))
        cv2.rectangle(canvas, (box.x, box.y), (box.x + box.w, box.y + box.h), BOX_COLOUR, line)
        if landmarks and "landmarks" in face:
            radius = max(1, round(min(box.w, box.h) / 45))
            for px, py in face["landmarks"].values():
                cv2.circle(canvas, (round(px), round(py)), radius, LANDMARK_COLOUR, -1)
    texts = [f"{face['label']} {face['probability']:.2f}" for face in faces]
    scales = [text_scale(box.h) for box in boxes]
    places = place_labels(boxes, [text_size(t, s) for t, s in zip(texts, scales)], width, height)
    if places is not None:
        for rect, text, scale in zip(places, texts, scales):
            draw_label(canvas, rect, text, scale)
        return canvas
    return with_legend(canvas, boxes, texts)


def with_legend(canvas: np.ndarray, boxes: list[Rect], texts: list[str]) -> np.ndarray:
    """Numbers on the faces, and 'n  Label 0.87' for each in a panel to the right."""
    height = canvas.shape[0]
    for number, box in enumerate(boxes, start=1):
        scale = text_scale(box.h) * 0.8
        w, h = text_size(str(number), scale)
        x = min(max(box.x + 1, 0), canvas.shape[1] - w)
        y = min(max(box.y + 1, 0), height - h)
        draw_label(canvas, Rect(x, y, w, h), str(number), scale)
    scale = float(np.clip(height / (len(texts) * 28), MIN_SCALE, 0.6))
    entries = [f"{n}  {text}" for n, text in enumerate(texts, start=1)]
    line_h = text_size("0", scale)[1] + 2
    per_column = max(1, (height - 8) // line_h)
    columns = [entries[i : i + per_column] for i in range(0, len(entries), per_column)]
    column_w = max(text_size(e, scale)[0] for e in entries) + 8
    panel = np.full((height, column_w * len(columns), 3), 255, np.uint8)
    for c, column in enumerate(columns):
        for r, entry in enumerate(column):
            y = 4 + r * line_h + text_size("0", scale)[1] - 2
            cv2.putText(panel, entry, (c * column_w + 4, y), FONT, scale, TEXT_COLOUR, 1, cv2.LINE_AA)
    return np.hstack([canvas, panel])
