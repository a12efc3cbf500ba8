"""The MTCNN cascade (P-Net proposals, R-Net and O-Net refinement), without TensorFlow.

It follows mtcnn 1.0.0 step by step (pyramid with factor 0.709 and truncated sizes, area
resizing, P-Net boxes regressed before NMS, TensorFlow's crop_and_resize for the R- and
O-Net crops, its NMS and squaring), so that boxes and landmarks agree with that package;
tests/test_faces.py checks this against outputs recorded from it. One difference on purpose:
the pyramid honours min_face_size (mtcnn 1.0.0 counts its levels as if it were 12).

Boxes are rows [image index, x1, y1, x2, y2, score] in pixels of the input images; after
O-Net ten landmark columns follow (x of the five points, then y).
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

Net = Callable[[np.ndarray], list[np.ndarray]]

CELL, STRIDE = 12, 2  # P-Net's receptive field and stride, in pixels of a pyramid level


def normalize(image_rgb: np.ndarray) -> np.ndarray:
    """MTCNN's input scaling: (pixel - 127.5) / 128, float32."""
    return (image_rgb.astype(np.float32) - 127.5) / 128.0


def pyramid_scales(height: int, width: int, min_face_size: float, factor: float) -> list[float]:
    """Scales at which a face of min_face_size pixels or more fills P-Net's 12x12 cell."""
    scale, scales = CELL / min_face_size, []
    while min(height, width) * scale >= CELL:
        scales.append(scale)
        scale *= factor
    return scales


def iou_suppressed(boxes: np.ndarray, threshold: float, method: str) -> np.ndarray:
    """mtcnn's NMS: drop a box when any box before it overlaps it by more than threshold.

    boxes are [x1, y1, x2, y2] sorted best first; method "union" (IoU) or "min" (overlap
    over the smaller area). Returns the indices kept. Done in column blocks to bound memory.
    """
    x1, y1, x2, y2 = boxes.T
    area = (x2 - x1) * (y2 - y1)
    keep = np.ones(len(boxes), dtype=bool)
    for start in range(0, len(boxes), 1024):
        cols = slice(start, start + 1024)
        width = np.maximum(0, np.minimum(x2[:, None], x2[None, cols]) - np.maximum(x1[:, None], x1[None, cols]))
        height = np.maximum(0, np.minimum(y2[:, None], y2[None, cols]) - np.maximum(y1[:, None], y1[None, cols]))
        inter = width * height
        if method == "union":
            overlap = inter / (area[:, None] + area[None, cols] - inter)
        else:
            overlap = inter / np.minimum(area[:, None], area[None, cols])
        earlier = np.arange(len(boxes))[:, None] < np.arange(len(boxes))[None, cols]
        keep[cols] = ~((overlap > threshold) & earlier).any(axis=0)
    return np.flatnonzero(keep)


def nms(rows: np.ndarray, threshold: float, method: str = "union", sort: bool = True) -> np.ndarray:
    """Apply iou_suppressed to each image's rows (column 0 is the image index)."""
    if sort:
        rows = rows[np.argsort(rows[:, 5])[::-1]]
    kept = [
        group[iou_suppressed(group[:, 1:5], threshold, method)]
        for image in np.unique(rows[:, 0])
        for group in [rows[rows[:, 0] == image]]
    ]
    return np.concatenate(kept) if kept else rows[:0]


def square(rows: np.ndarray) -> np.ndarray:
    """Grow each box to a square around its centre, side = its longer side."""
    rows = rows.copy()
    width, height = rows[:, 3] - rows[:, 1], rows[:, 4] - rows[:, 2]
    side = np.maximum(width, height)
    rows[:, 1] += (width - side) / 2
    rows[:, 2] += (height - side) / 2
    rows[:, 3] = rows[:, 1] + side
    rows[:, 4] = rows[:, 2] + side
    return rows


def regress(rows: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Move box corners by offsets given in units of the box size (+1, as mtcnn does)."""
    rows = rows.copy()
    width = rows[:, 3] - rows[:, 1] + 1
    height = rows[:, 4] - rows[:, 2] + 1
    rows[:, 1:5] += offsets * np.stack([width, height, width, height], axis=1)
    return rows


def crop_and_resize(images: np.ndarray, rows: np.ndarray, size: int) -> np.ndarray:
    """TensorFlow's crop_and_resize (bilinear, 0 outside) of each box, as mtcnn calls it.

    images: (N, H, W, C) float32; returns (len(rows), C, size, size) for the next net.
    """
    _, height, width, _ = images.shape
    steps = np.arange(size) / (size - 1)
    # mtcnn normalises boxes by the image size (not size - 1); crop_and_resize then maps
    # back with size - 1.
    ys = (rows[:, 2:3] + steps * (rows[:, 4:5] - rows[:, 2:3])) / height * (height - 1)
    xs = (rows[:, 1:2] + steps * (rows[:, 3:4] - rows[:, 1:2])) / width * (width - 1)
    valid = ((ys >= 0) & (ys <= height - 1))[:, :, None] & ((xs >= 0) & (xs <= width - 1))[:, None, :]
    y0 = np.clip(np.floor(ys), 0, height - 1).astype(int)
    x0 = np.clip(np.floor(xs), 0, width - 1).astype(int)
    y1 = np.clip(np.ceil(ys), 0, height - 1).astype(int)
    x1 = np.clip(np.ceil(xs), 0, width - 1).astype(int)
    fy = (ys - np.floor(ys))[:, :, None, None]
    fx = (xs - np.floor(xs))[:, None, :, None]
    index = rows[:, 0].astype(int)[:, None, None]

    def row(y: np.ndarray) -> np.ndarray:  # one bilinear row blend, along x
        left, right = images[index, y[:, :, None], x0[:, None, :]], images[index, y[:, :, None], x1[:, None, :]]
        return left + (right - left) * fx

    top, bottom = row(y0), row(y1)
    patches = np.where(valid[..., None], top + (bottom - top) * fy, 0.0)
    return np.ascontiguousarray(patches.transpose(0, 3, 1, 2), dtype=np.float32)


class Cascade:
    """The three MTCNN stages over a batch of equally sized, normalized RGB images."""

    def __init__(self, pnet: Net, rnet: Net, onet: Net):
        self.pnet, self.rnet, self.onet = pnet, rnet, onet

    def proposals(self, images: np.ndarray, min_face_size: float, factor: float, threshold: float) -> np.ndarray:
        """P-Net over the image pyramid: candidate boxes, NMS'd per level and across levels."""
        count, height, width, _ = images.shape
        levels = []
        for scale in pyramid_scales(height, width, min_face_size, factor):
            size = (int(width * scale), int(height * scale))
            batch = np.stack([cv2.resize(image, size, interpolation=cv2.INTER_AREA) for image in images])
            batch = batch.reshape(count, size[1], size[0], -1).transpose(0, 3, 1, 2)
            offsets, prob = self.pnet(np.ascontiguousarray(batch))
            index, y, x = np.nonzero(prob[:, 1] > threshold)
            score = prob[index, 1, y, x]
            reg = offsets[index, :, y, x]
            # mtcnn's cell spans [2x + 1, 2x + 12]: width 11, regressed before rescaling.
            left, top, side = x * STRIDE + 1, y * STRIDE + 1, CELL - 1
            rows = np.stack(
                [
                    index,
                    left + reg[:, 0] * side,
                    top + reg[:, 1] * side,
                    left + side + reg[:, 2] * side,
                    top + side + reg[:, 3] * side,
                    score,
                ],
                axis=1,
            )
            rows[:, 1:5] /= scale
            levels.append(nms(rows, 0.5))
        if not levels:
            return np.empty((0, 6))
        return square(nms(np.concatenate(levels), 0.7))

    def refine(self, images: np.ndarray, rows: np.ndarray, threshold: float) -> np.ndarray:
        """R-Net on 24x24 crops of the proposals: rescored, regressed, NMS'd, squared."""
        if not len(rows):
            return rows
        offsets, prob = self.rnet(crop_and_resize(images, rows, 24))
        rows = regress(rows, offsets)
        rows[:, 5] = prob[:, 1]
        return square(nms(rows[rows[:, 5] > threshold], 0.7))

    def output(self, images: np.ndarray, rows: np.ndarray, threshold: float) -> np.ndarray:
        """O-Net on 48x48 crops: final boxes, scores and the five landmarks."""
        if not len(rows):
            return np.empty((0, 16))
        offsets, points, prob = self.onet(crop_and_resize(images, rows, 48))
        width = rows[:, 3:4] - rows[:, 1:2] + 1
        height = rows[:, 4:5] - rows[:, 2:3] + 1
        points = np.concatenate(
            [width * points[:, :5] + rows[:, 1:2] - 1, height * points[:, 5:] + rows[:, 2:3] - 1], axis=1
        )
        rows = np.concatenate([regress(rows, offsets), points], axis=1)
        rows[:, 5] = prob[:, 1]
        return nms(rows[rows[:, 5] > threshold], 0.7, method="min")

    def __call__(
        self,
        images: np.ndarray,
        min_face_size: float = 20,
        factor: float = 0.709,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.8),
    ) -> np.ndarray:
        """All faces in a (N, H, W, 3) normalized batch as rows of 16 columns."""
        rows = self.proposals(images, min_face_size, factor, thresholds[0])
        rows = self.refine(images, rows, thresholds[1])
        return self.output(images, rows, thresholds[2])
