"""Face detection (MTCNN) and 5-point alignment: one module for preprocessing and prediction.

    detector = FaceDetector()                 # OpenCV DNN backend; backend="caffe" for pycaffe
    faces = detector.detect(image)            # gray, BGR or BGRA uint8 -> list[Face]
    crop = align(image, faces[0], size=48)    # similarity transform onto TEMPLATES["fer2013"]

FER2013 images are already 48x48 face crops; prepare_crop() pads them before detection
(MTCNN finds far more faces that way) and returns the aligned face, or None when no face is
found, so the caller decides what to do and counts it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ferlib import mtcnn_nets
from ferlib.mtcnn_cascade import Cascade, normalize

LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")

# Where the five landmarks go in a 48x48 aligned face (scaled with the output size).
# "fer2013": FER2013's own framing, so that alignment only straightens a face and keeps its
# resolution: the per-coordinate median of MTCNN's landmarks on 3,602 FER2013 training crops
# (make bench-faces writes them), made mirror-symmetric about the centre (x -> 47 - x) so a
# mirrored face has the same framing. "arcface": the ArcFace 112x112 template scaled to 48,
# which frames faces about 15% smaller and lower (eyes 15.1 px apart at 46% of the height,
# against FER2013's 18.0 px at 37.5%), filling the top rows with replicated border; the
# models shipped before the fer2013 template were trained with it.
TEMPLATES = {
    "fer2013": np.array(
        [[14.39, 17.93], [32.61, 17.93], [23.5, 28.36], [15.9, 37.23], [31.1, 37.23]], dtype=np.float64
    ),
    "arcface": np.array(
        [[16.41, 22.16], [31.51, 22.07], [24.01, 30.74], [17.81, 39.59], [30.31, 39.52]], dtype=np.float64
    ),
}
DEFAULT_TEMPLATE = "fer2013"


PAD_FRACTION = 0.25  # replicate-padding on each side of a face crop before detection

# detect_near looks for a face seen a frame or a few before within its box grown by NEAR_MARGIN
# of its side each way, for faces of at least NEAR_MIN_FACE of its side: a face neither leaves
# that region nor halves in size between two labelled frames of a video. On a face moving 45 px
# a frame (its box 55 px) a margin of half the side lost it every other frame, three quarters
# never; labelling a video took about 3% longer with it (medians of five runs each in turn).
NEAR_MARGIN = 0.75
NEAR_MIN_FACE = 0.5


@dataclass(frozen=True)
class Face:
    """One detected face: box (x, y, width, height), score, and five (x, y) landmarks."""

    box: tuple[float, float, float, float]
    score: float
    landmarks: tuple[tuple[float, float], ...]


def to_rgb(image: np.ndarray) -> np.ndarray:
    """A gray (H, W) / (H, W, 1), BGR or BGRA uint8 image as RGB; ValueError for anything else."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image array, got {getattr(image, 'dtype', type(image).__name__)}")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise ValueError(f"expected a gray, BGR or BGRA image, got shape {image.shape}")
    if image.size == 0:
        return np.zeros(image.shape[:2] + (3,), np.uint8)
    if image.ndim == 2 or image.shape[2] == 1:
        return cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB if image.shape[2] == 3 else cv2.COLOR_BGRA2RGB)


def to_gray(image: np.ndarray) -> np.ndarray:
    """A gray, BGR or BGRA uint8 image as one gray channel (H, W)."""
    return cv2.cvtColor(to_rgb(image), cv2.COLOR_RGB2GRAY)


def iou(a: tuple[float, ...] | list[float], b: tuple[float, ...] | list[float]) -> float:
    """Intersection over union of two (x, y, width, height) boxes."""
    width = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    height = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def shifted(face: Face, dx: float, dy: float) -> Face:
    """The face moved by (dx, dy): from a region's pixels to the whole image's."""
    x, y, w, h = face.box
    return Face((x + dx, y + dy, w, h), face.score, tuple((px + dx, py + dy) for px, py in face.landmarks))


def _faces_from_rows(rows: np.ndarray, height: int, width: int, scale: float = 1.0, offset: float = 0.0) -> list[Face]:
    """Face objects from cascade rows: boxes clipped to the image as mtcnn does, then mapped
    back through a detection-time scale and padding offset."""
    faces = []
    for row in rows:
        x1, x2 = np.clip(row[[1, 3]], 0, width - 1)
        y1, y2 = np.clip(row[[2, 4]], 0, height - 1)
        box = ((x1 - offset) / scale, (y1 - offset) / scale, (x2 - x1) / scale, (y2 - y1) / scale)
        points = tuple(
            (float((x - offset) / scale), float((y - offset) / scale)) for x, y in zip(row[6:11], row[11:16])
        )
        faces.append(Face(tuple(float(v) for v in box), float(row[5]), points))
    return faces


class FaceDetector:
    """MTCNN with the `mtcnn` package's weights, run by OpenCV DNN ("opencv") or pycaffe ("caffe")."""

    def __init__(
        self,
        backend: str = "opencv",
        min_face_size: float = 20,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.8),
        max_side: int = 1600,
    ):
        if min_face_size <= 0:
            raise ValueError(f"min_face_size must be positive, got {min_face_size}")
        self.cascade = Cascade(*(mtcnn_nets.load(net, backend) for net in ("pnet", "rnet", "onet")))
        self.min_face_size = min_face_size
        self.thresholds = thresholds
        self.max_side = max_side

    def detect(self, image: np.ndarray) -> list[Face]:
        """Every face in one image, best score first.

        Images larger than max_side are downscaled for detection (min_face_size then counts
        in the downscaled image) and the results are mapped back to the input's pixels.
        """
        return self._detect_rgb(to_rgb(image))

    def detect_near(self, image: np.ndarray, boxes: list[list[float]]) -> list[Face]:
        """The faces near boxes (x, y, width, height) of faces seen in an earlier frame, best
        score first: MTCNN on each box's region (grown by NEAR_MARGIN of its side each way)
        for faces of at least NEAR_MIN_FACE of its side. A region around a face costs about a
        quarter of a whole 640x480 frame (8-11 against 39-43 ms on the slowest 2 cores of
        these sessions; P-Net's pyramid is most of it), which is what keeps a video's frame
        rate; a face two regions find is kept once."""
        rgb = to_rgb(image)
        height, width = rgb.shape[:2]
        found: list[Face] = []
        for x, y, w, h in boxes:
            side = max(w, h)
            x0, y0 = max(0, int(x - NEAR_MARGIN * side)), max(0, int(y - NEAR_MARGIN * side))
            x1 = min(width, int(np.ceil(x + w + NEAR_MARGIN * side)))
            y1 = min(height, int(np.ceil(y + h + NEAR_MARGIN * side)))
            if x1 > x0 and y1 > y0:
                region = np.ascontiguousarray(rgb[y0:y1, x0:x1])
                found += [shifted(f, x0, y0) for f in self._detect_rgb(region, NEAR_MIN_FACE * side)]
        kept: list[Face] = []
        for face in sorted(found, key=lambda f: -f.score):
            if all(iou(face.box, other.box) < 0.5 for other in kept):
                kept.append(face)
        return kept

    def _detect_rgb(self, rgb: np.ndarray, min_face: float = 0.0) -> list[Face]:
        """detect on an RGB image; faces smaller than min_face (in the image's own pixels) are
        not looked for, nor any under min_face_size (in the downscaled image's)."""
        height, width = rgb.shape[:2]
        scale = min(1.0, self.max_side / max(height, width, 1))
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))  # a 4000x1 strip stays 1 px
            rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        return self.detect_batch(rgb[None], rgb_input=True, scale=scale, min_face=min_face * scale)[0]

    def detect_batch(
        self,
        images: np.ndarray,
        rgb_input: bool = False,
        scale: float = 1.0,
        offset: float = 0.0,
        min_face: float = 0.0,
    ) -> list[list[Face]]:
        """Faces in each image of a batch of equally sized images (N, H, W[, C]): one
        cascade run for the whole batch, which is what makes preprocessing fast. Faces under
        min_face_size, or under min_face where that is larger, are not looked for."""
        rgb = images if rgb_input else np.stack([to_rgb(image) for image in images])
        if rgb.size == 0:
            return [[] for _ in range(len(rgb))]
        rows = self.cascade(normalize(rgb), max(self.min_face_size, min_face), 0.709, self.thresholds)
        height, width = rgb.shape[1:3]
        return [_faces_from_rows(rows[rows[:, 0] == i], height, width, scale, offset) for i in range(len(rgb))]

    def crop_faces(self, crops: np.ndarray) -> list[Face | None]:
        """The largest, most central face of each face crop (for example FER2013's 48x48 gray
        images), in crop coordinates; None where no face is found. Each crop is
        replicate-padded by PAD_FRACTION of its side before detection."""
        pad = round(crops.shape[1] * PAD_FRACTION)
        padded = np.stack([cv2.copyMakeBorder(crop, pad, pad, pad, pad, cv2.BORDER_REPLICATE) for crop in crops])
        found = self.detect_batch(padded, offset=pad)
        return [central_face(faces, crop.shape) if faces else None for crop, faces in zip(crops, found)]

    def faces_in_crops(self, crops: list[np.ndarray], side: int = 48) -> list[Face | None]:
        """crop_faces for face crops of any sizes: each is looked at as a side x side crop (the
        way FER2013's crops were when the models' training faces were aligned), and the face
        found is given in the crop's own pixels, so that it can be aligned at full resolution."""
        if not crops:
            return []
        small = np.stack([cv2.resize(to_gray(c), (side, side), interpolation=cv2.INTER_AREA) for c in crops])
        found = []
        for crop, face in zip(crops, self.crop_faces(small)):
            if face is None:
                found.append(None)
                continue
            sx, sy = crop.shape[1] / side, crop.shape[0] / side
            x, y, w, h = face.box
            landmarks = tuple((px * sx, py * sy) for px, py in face.landmarks)
            found.append(Face((x * sx, y * sy, w * sx, h * sy), face.score, landmarks))
        return found

    def prepare_crops(
        self, crops: np.ndarray, size: int = 48, template: str = DEFAULT_TEMPLATE
    ) -> list[np.ndarray | None]:
        """Aligned size x size faces for a batch of face crops; None where no face is found."""
        faces = self.crop_faces(crops)
        return [align(crop, face, size, template) if face else None for crop, face in zip(crops, faces)]


def central_face(faces: list[Face], shape: tuple[int, ...]) -> Face:
    """The largest face, less a penalty for its distance from the image centre."""
    centre = np.array([shape[1], shape[0]]) / 2

    def merit(face: Face) -> float:
        x, y, w, h = face.box
        return w * h - 2.0 * float(np.sum((np.array([x + w / 2, y + h / 2]) - centre) ** 2))

    return max(faces, key=merit)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares rotation + uniform scale + translation taking src points to dst
    (Umeyama, 1991): a 2x3 matrix for cv2.warpAffine."""
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    u, s, vt = np.linalg.svd(dst_c.T @ src_c / len(src))
    d = np.diag([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt))])
    rotation = u @ d @ vt
    scale = np.trace(np.diag(s) @ d) / src_c.var(axis=0).sum()
    translation = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, translation[:, None]])


def align(image: np.ndarray, face: Face, size: int = 48, template: str = DEFAULT_TEMPLATE) -> np.ndarray:
    """The face warped onto TEMPLATES[template] (scaled to size x size); same channels as image."""
    if template not in TEMPLATES:
        raise ValueError(f"unknown alignment template {template!r}: one of {', '.join(TEMPLATES)}")
    matrix = similarity_transform(np.array(face.landmarks), TEMPLATES[template] * (size / 48.0))
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
