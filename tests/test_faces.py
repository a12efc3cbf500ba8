"""Face detection and alignment: agreement with mtcnn 1.0.0, input kinds, edge cases."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data

from ferlib.faces import TEMPLATES, Face, FaceDetector, align, central_face, iou, similarity_transform
from ferlib.mtcnn_cascade import pyramid_scales
from reference_images import lfw_face, reference_images

REFERENCE = json.loads((Path(__file__).parent / "fixtures" / "mtcnn_reference.json").read_text())["faces"]


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector()


def box_iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """IoU of two (x1, y1, x2, y2) boxes."""
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def xyxy(box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    x, y, w, h = box
    return x, y, x + w, y + h


@pytest.mark.parametrize("backend", ["opencv", pytest.param("caffe", marks=pytest.mark.caffe)])
@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_agrees_with_recorded_mtcnn(name: str, backend: str) -> None:
    detector = FaceDetector(backend=backend)
    faces = detector.detect(cv2.cvtColor(reference_images()[name], cv2.COLOR_RGB2BGR))
    expected = REFERENCE[name]
    assert len(faces) == len(expected)
    for ref in expected:
        face = max(faces, key=lambda f: box_iou(xyxy(f.box), ref["box_xyxy"]))
        assert box_iou(xyxy(face.box), ref["box_xyxy"]) >= 0.95
        ref_points = np.array([ref["landmarks_x"], ref["landmarks_y"]]).T
        assert np.abs(np.array(face.landmarks) - ref_points).max() <= 1.0


def test_gray_bgr_and_bgra_inputs(detector: FaceDetector) -> None:
    bgr = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    from_bgr = detector.detect(bgr)
    from_bgra = detector.detect(cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA))
    from_gray = detector.detect(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    from_gray1 = detector.detect(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)[:, :, None])
    assert len(from_bgr) == len(from_bgra) == 1
    assert from_bgr == from_bgra
    assert len(from_gray) == 1 and from_gray == from_gray1
    assert box_iou(xyxy(from_gray[0].box), xyxy(from_bgr[0].box)) > 0.8


def test_results_are_plain_python_numbers(detector: FaceDetector) -> None:
    face = detector.detect(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))[0]
    json.dumps([face.box, face.score, face.landmarks])  # numpy scalars would fail here
    assert all(type(v) is float for v in face.box)
    assert type(face.score) is float
    assert len(face.landmarks) == 5 and all(type(v) is float for point in face.landmarks for v in point)


@pytest.mark.parametrize("shape", [(1, 1), (1, 1, 3), (0, 0), (0, 0, 3), (5, 400, 3), (11, 11)])
def test_tiny_and_empty_images_have_no_faces(detector: FaceDetector, shape: tuple[int, ...]) -> None:
    assert detector.detect(np.zeros(shape, np.uint8)) == []


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((10, 10), np.float32),
        np.zeros((10, 10, 2), np.uint8),
        np.zeros((2, 10, 10, 3), np.uint8),
        [[0, 1], [2, 3]],
    ],
)
def test_invalid_inputs_raise_a_clear_error(detector: FaceDetector, bad: object) -> None:
    with pytest.raises(ValueError, match="expected"):
        detector.detect(bad)


def test_very_large_image_is_downscaled_and_boxes_map_back(detector: FaceDetector) -> None:
    bgr = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    small = detector.detect(bgr)[0]
    large = detector.detect(cv2.resize(bgr, (4096, 4096), interpolation=cv2.INTER_CUBIC))
    assert len(large) == 1
    assert box_iou(xyxy(large[0].box), tuple(8 * v for v in xyxy(small.box))) > 0.9


def test_min_face_size_is_honoured_below_20() -> None:
    def canvas(index: int) -> np.ndarray:
        image = np.full((120, 120), 128, np.uint8)
        image[50:62, 50:62] = lfw_face(index, 12)  # a face of about 10 pixels
        return image

    small = FaceDetector(min_face_size=10)
    default = FaceDetector()
    assert sum(len(small.detect(canvas(i))) for i in range(4)) >= 3
    assert sum(len(default.detect(canvas(i))) for i in range(4)) == 0


def test_pyramid_covers_min_face_size_down_to_the_image() -> None:
    scales = pyramid_scales(100, 200, min_face_size=10, factor=0.709)
    assert scales[0] == pytest.approx(1.2)
    assert np.allclose(np.diff(np.log(scales)), np.log(0.709))
    assert 100 * scales[-1] >= 12 > 100 * scales[-1] * 0.709
    assert pyramid_scales(11, 500, min_face_size=20, factor=0.709) == []


def test_faces_and_non_faces_from_lfw(detector: FaceDetector) -> None:
    faces = np.stack([lfw_face(i, 48) for i in range(100)])
    non_faces = np.stack([lfw_face(i, 48) for i in range(100, 200)])
    found = sum(crop is not None for crop in detector.prepare_crops(faces))
    false = sum(crop is not None for crop in detector.prepare_crops(non_faces))
    assert found >= 90
    assert false <= 5


def test_prepare_crops_returns_none_without_a_face(detector: FaceDetector) -> None:
    crops = np.stack([np.full((48, 48), 90, np.uint8), lfw_face(3, 48)])
    blank, face = detector.prepare_crops(crops)
    assert blank is None
    assert face.shape == (48, 48) and face.dtype == np.uint8
    assert detector.prepare_crops(crops, size=64)[1].shape == (64, 64)
    none, found = detector.crop_faces(crops)
    assert none is None and all(0 <= v < 48 for point in found.landmarks for v in point)


def test_alignment_puts_landmarks_on_the_template(detector: FaceDetector) -> None:
    bgr = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    face = detector.detect(bgr)[0]
    for (name, template), size in itertools.product(TEMPLATES.items(), (48, 64)):
        matrix = similarity_transform(np.array(face.landmarks), template * size / 48)
        mapped = np.hstack([np.array(face.landmarks), np.ones((5, 1))]) @ matrix.T
        assert np.abs(mapped - template * size / 48).max() < 0.1 * size  # a similarity fits 5 points closely
        crop = align(bgr, face, size, name)
        assert crop.shape == (size, size, 3) and crop.dtype == np.uint8
    assert align(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), face).shape == (48, 48)


def test_a_face_already_on_the_template_is_left_as_it_is() -> None:
    image = lfw_face(3, 48)
    for name, points in TEMPLATES.items():
        face = Face((0.0, 0.0, 48.0, 48.0), 1.0, tuple(map(tuple, points)))
        assert np.abs(align(image, face, 48, name).astype(int) - image).max() <= 1
    with pytest.raises(ValueError, match="unknown alignment template 'nope'"):
        align(image, face, 48, "nope")


def test_the_fer2013_template_is_mirror_symmetric_and_frames_faces_larger_than_arcface() -> None:
    fer, arcface = TEMPLATES["fer2013"], TEMPLATES["arcface"]
    mirrored = np.column_stack([47 - fer[:, 0], fer[:, 1]])[[1, 0, 2, 4, 3]]  # swap left and right points
    assert np.allclose(mirrored, fer)
    assert fer[1, 0] - fer[0, 0] > 1.15 * (arcface[1, 0] - arcface[0, 0])
    assert fer[:2, 1].mean() < arcface[:2, 1].mean() - 3  # eyes higher up


def test_similarity_transform_recovers_a_known_transform() -> None:
    angle, scale, shift = np.deg2rad(17), 1.7, np.array([5.0, -3.0])
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = np.random.default_rng(0).uniform(0, 50, (5, 2))
    matrix = similarity_transform(src, src @ rotation.T + shift)
    assert np.allclose(matrix, np.hstack([rotation, shift[:, None]]))


def test_central_face_prefers_large_and_central() -> None:
    from ferlib.faces import Face

    points = ((0.0, 0.0),) * 5
    corner = Face((0.0, 0.0, 30.0, 30.0), 0.99, points)
    centre = Face((30.0, 30.0, 28.0, 28.0), 0.9, points)
    assert central_face([corner, centre], (88, 88)) == centre


def test_detect_near_finds_the_face_near_a_box_once_and_nothing_far_from_it(detector: FaceDetector) -> None:
    canvas = np.full((480, 800, 3), 100, np.uint8)
    canvas[100:356, 60:316] = cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), (256, 256))
    (whole,) = detector.detect(canvas)
    x, y, w, h = whole.box
    moved = [x + 0.2 * w, y - 0.2 * h, w * 0.8, h * 0.8]  # where the face was a frame before, about
    (near,) = detector.detect_near(canvas, [moved, [x, y, w, h]])  # two regions, one face
    assert iou(near.box, whole.box) > 0.9
    assert np.abs(np.subtract(near.landmarks, whole.landmarks)).max() < 3
    assert detector.detect_near(canvas, [[600, 200, w, h]]) == []  # gray wall there
    assert detector.detect_near(canvas, []) == []
    left = canvas[:, int(x) - 5 :]  # the face 5 px from the left edge: its region is cut there
    (edge,) = detector.detect_near(left, [[5, y, w, h]])
    assert iou(edge.box, (x - int(x) + 5, y, w, h)) > 0.8
