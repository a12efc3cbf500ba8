"""Annotated pictures stay readable: labels inside the picture on both axes, never over each
other or over another face, sized from the face; a crowded picture gets numbers and a legend."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from predict.drawing import Rect, annotate, place_labels, text_scale, text_size


def face(x: float, y: float, side: float, label: str = "Happy") -> dict:
    points = {"left_eye": [x + 0.3 * side, y + 0.4 * side], "right_eye": [x + 0.7 * side, y + 0.4 * side]}
    return {"box": [x, y, side, side], "landmarks": points, "label": label, "probability": 0.87}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(-20, 620), st.integers(-20, 460), st.integers(12, 200)), min_size=1, max_size=12))
def test_placed_labels_are_inside_and_apart(faces: list[tuple[int, int, int]]) -> None:
    width, height = 640, 480
    boxes = [Rect(x, y, s, s) for x, y, s in faces]
    sizes = [text_size("Surprise 0.99", text_scale(b.h)) for b in boxes]
    places = place_labels(boxes, sizes, width, height)
    if places is None:
        return  # too crowded: the legend takes over (next test)
    for i, rect in enumerate(places):
        assert rect.inside(width, height)
        assert not any(rect.overlaps(other) for other in places[i + 1 :])
        assert not any(rect.overlaps(box) for j, box in enumerate(boxes) if j != i)


def test_labels_are_sized_from_the_face_with_a_legible_minimum() -> None:
    assert text_scale(25) == pytest.approx(0.35)  # small face: the smallest legible text
    assert text_scale(25) < text_scale(120) < text_scale(400)
    assert text_size("Happy 0.87", text_scale(25))[1] < 20


def test_faces_at_the_four_borders_keep_their_labels_inside(tmp_path: Path) -> None:
    image = np.full((300, 400, 3), 90, np.uint8)
    faces = [face(0, 0, 60), face(340, 120, 60, "Surprise"), face(150, 240, 60, "Neutral"), face(0, 200, 50, "Sad")]
    out = annotate(image, faces)
    assert out.shape == image.shape  # every label found a place: no legend needed
    assert cv2.imwrite(str(tmp_path / "borders.png"), out)  # to look at: pytest --basetemp=DIR


def test_a_crowded_grid_gets_numbers_and_a_legend(tmp_path: Path) -> None:
    image = np.full((280, 700, 3), 120, np.uint8)
    faces = [face(5 + 50 * c, 5 + 40 * r, 36) for r in range(7) for c in range(14)]  # 98 faces, 4 px apart
    out = annotate(image, faces)
    assert out.shape[0] == image.shape[0] and out.shape[1] > image.shape[1]  # a legend panel on the right
    assert (out[:, image.shape[1] :] == 255).mean() > 0.5  # mostly white panel, with text
    assert cv2.imwrite(str(tmp_path / "grid.png"), out)


def test_no_landmarks_draws_no_dots() -> None:
    image = np.full((200, 200, 3), 90, np.uint8)
    with_dots, without = annotate(image, [face(50, 60, 80)]), annotate(image, [face(50, 60, 80)], landmarks=False)
    assert (with_dots != without).any()
    assert not (np.all(without == (0, 255, 0), axis=2)).any()
