"""Face detection + alignment speed, and MTCNN's detection rate on FER2013's training images.

    python bench/faces_speed.py [--fer2013 ../shared/data/fer2013.csv.gz]

Writes bench/results/faces_speed.json. FER2013 crops are timed on one OpenCV thread (one
core, as each preprocessing worker runs); the photo with 1 and 2 threads.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).resolve().parent.parent / "tests")]

from bench.common import fer_faces, median_seconds, photo_640x480, write_results  # noqa: E402
from ferlib.faces import TEMPLATES, FaceDetector, align  # noqa: E402
from preprocess.build import Settings, align_faces  # noqa: E402
from reference_images import lfw_face  # noqa: E402


def framing(landmarks: np.ndarray) -> dict:
    """Median eye distance (px) and eye height (fraction of the side) of (N, 5, 2) landmarks in 48x48 crops."""
    eyes = landmarks[:, :2]
    return {
        "eye_distance_px": round(float(np.median(np.linalg.norm(eyes[:, 1] - eyes[:, 0], axis=1))), 2),
        "eye_height_fraction": round(float(np.median(eyes[:, :, 1].mean(axis=1))) / 48, 3),
    }


def largest_rotation_found(detector: FaceDetector, photo: np.ndarray, step: int = 5) -> dict:
    """The largest in-plane rotation (degrees, each way) at which the photo's face is still
    found, turning it in steps until the face is lost: MTCNN learned upright faces."""
    height, width = photo.shape[:2]
    found = {}
    for sign, side in ((1, "anticlockwise"), (-1, "clockwise")):
        angle = 0
        while angle + step <= 180:
            turn = cv2.getRotationMatrix2D((width / 2, height / 2), sign * (angle + step), 1.0)
            if not detector.detect(cv2.warpAffine(photo, turn, (width, height), borderMode=cv2.BORDER_REPLICATE)):
                break
            angle += step
        found[side] = angle
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fer2013", type=Path, default=Path("../shared/data/fer2013.csv.gz"))
    args = parser.parse_args()
    cv2.setNumThreads(1)
    detector = FaceDetector()
    faces = fer_faces(args.fer2013)
    crops = faces[:1024] if faces is not None else np.stack([lfw_face(i % 100, 48) for i in range(1024)])
    results = {"crops": "FER2013 training images" if faces is not None else "scikit-image lfw faces at 48x48"}
    for batch in (1, 64):
        count = 128 if batch == 1 else 1024
        seconds = median_seconds(
            lambda b=batch, n=count: [detector.prepare_crops(crops[i : i + b]) for i in range(0, n, b)], repeats=3
        )
        results[f"ms_per_crop_batch_{batch}"] = round(1000 * seconds / count, 2)
    framed = faces[:4096] if faces is not None else crops
    found_faces = [f.landmarks for f in detector.crop_faces(framed) if f is not None]
    results["framing_crops_with_a_face"] = len(found_faces)
    results["framing_of_the_crops"] = framing(np.array(found_faces))
    results["median_landmarks_of_the_crops"] = np.round(np.median(found_faces, axis=0), 2).tolist()
    for name, template in TEMPLATES.items():
        results[f"framing_of_template_{name}"] = framing(template[None])
    photo = photo_640x480()
    results["photo_faces_found"] = len(detector.detect(photo))
    results["largest_in_plane_rotation_found_degrees"] = largest_rotation_found(FaceDetector(min_face_size=40), photo)
    for threads in (1, 2):
        cv2.setNumThreads(threads)
        for min_face in (20, 40):
            photo_detector = FaceDetector(min_face_size=min_face)
            seconds = median_seconds(lambda d=photo_detector: [align(photo, f) for f in d.detect(photo)], 10)
            results[f"ms_per_640x480_photo_min_face_{min_face}_threads_{threads}"] = round(1000 * seconds, 1)
    if faces is not None:
        start = time.time()
        _, found = align_faces(faces, Settings(), workers=2, desc="FER2013 train")
        results["fer2013_train_images"] = len(faces)
        results["fer2013_train_detection_rate"] = round(float(found.mean()), 4)
        results["fer2013_train_seconds_2_workers"] = round(time.time() - start, 1)
    write_results("faces_speed", results)


if __name__ == "__main__":
    main()
