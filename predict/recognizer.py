"""Faces in, expressions out: detection and alignment as in preprocessing, then the classifier."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from predict.classifier import Classifier, ModelError, ModelFiles
from preprocess.faces import FaceDetector, align, to_gray

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = ROOT / "models" / "fer2013_vgg"


class Recognizer:
    """Labels every face of an image with the trained model."""

    def __init__(
        self,
        model: Path = DEFAULT_MODEL,
        backend: str = "opencv",
        min_face: float = 40,
        threshold: float = 0.8,
        top_k: int = 3,
        tta: str = "none",
        detect: bool = True,
    ):
        files = ModelFiles.from_dir(model)
        if detect and not files.alignment_known:
            raise ModelError(f"{model}: model folder lacks alignment.json, which says how its faces were aligned")
        if detect and files.template is None:
            raise ModelError(
                f"{model}: trained on unaligned crops (preprocess --no-align); use --no-detect on face crops"
            )
        self.classifier = Classifier(files, backend)
        self.template = files.template
        self.detector = FaceDetector(backend=backend, min_face_size=min_face, thresholds=(0.6, 0.7, threshold))
        self.side = self.classifier.mean.shape[-1]
        self.top_k, self.tta = top_k, tta

    def label(self, probabilities: np.ndarray) -> dict:
        """The JSON fields of one face's classification."""
        labels = self.classifier.labels
        best = int(np.argmax(probabilities))
        ranked = np.argsort(probabilities)[::-1][: self.top_k]
        return {
            "label": labels[best],
            "label_id": best,
            "probability": float(probabilities[best]),
            "top_k": [[labels[i], float(probabilities[i])] for i in ranked],
            "probabilities": {labels[i]: float(p) for i, p in enumerate(probabilities)},
        }

    def faces(self, image: np.ndarray) -> list[dict]:
        """Every face of a gray, BGR or BGRA image: box, landmarks, score and expression."""
        found = self.detector.detect(image)
        if not found:
            return []
        gray = to_gray(image)
        aligned = np.stack([align(gray, face, self.side, self.template) for face in found])
        probabilities = self.classifier.probabilities(aligned, tta=self.tta)
        return [{**face.to_json(), **self.label(p)} for face, p in zip(found, probabilities)]

    def crops(self, images: list[np.ndarray]) -> list[dict]:
        """--no-detect: each image is already a face crop; resized to the model's input side."""
        faces = np.stack(
            [cv2.resize(to_gray(image), (self.side, self.side), interpolation=cv2.INTER_AREA) for image in images]
        )
        return [self.label(p) for p in self.classifier.probabilities(faces, tta=self.tta)]
