"""Test images made from scikit-image's bundled data, shared by the tests and by
tests/fixtures/record_mtcnn_reference.py (which runs in a throwaway TensorFlow venv)."""

from __future__ import annotations

import cv2
import numpy as np
from skimage import data


def lfw_face(index: int, size: int) -> np.ndarray:
    """Face number index of scikit-image's lfw_subset (faces are 0-99), gray uint8, size x size."""
    face = (data.lfw_subset()[index] * 255).round().astype(np.uint8)
    return cv2.resize(face, (size, size), interpolation=cv2.INTER_CUBIC)


def reference_images() -> dict[str, np.ndarray]:
    """Named RGB uint8 images: photos with and without faces, a group, and padded crops."""
    group = np.vstack([np.hstack([lfw_face(i + 4 * r, 100) for i in range(4)]) for r in range(2)])
    fer_like = [cv2.copyMakeBorder(lfw_face(i, 48), 12, 12, 12, 12, cv2.BORDER_REPLICATE) for i in (10, 20, 30)]
    images = {
        "astronaut": data.astronaut(),
        "camera": data.camera(),
        "coffee": data.coffee(),
        "lfw_group_2x4": group,
    }
    images.update({f"lfw_crop_{i}_padded": crop for i, crop in zip((10, 20, 30), fer_like)})
    return {name: np.ascontiguousarray(np.dstack([im] * 3) if im.ndim == 2 else im) for name, im in images.items()}
