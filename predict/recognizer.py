"""Faces in, expressions out: detection and alignment as in preprocessing, then the classifier
(or the average of an ensemble's classifiers, each fed faces aligned as its training data was)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from ferlib.classifier import Classifier
from ferlib.dataset import file_sha256
from ferlib.faces import LANDMARK_NAMES, Face, FaceDetector, align, to_gray
from ferlib.model_folder import ModelError, ModelFiles, calibrated, model_members, read_temperature
from predict.media import read_image

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = ROOT / "models" / "fer2013_default"  # one model and its TTA (ensemble.json); ensembles go by name
# how every --model help names the default, so the three commands describe it alike
DEFAULT_MODEL_HELP = f"models/{DEFAULT_MODEL.name}, the best single model with its TTA"
SCHEMA = "fer-caffe/1"  # docs/predict.md: the fields of a document and of a face


def load_members(folders: list[Path], backend: str, detect: bool) -> list[tuple[Classifier, str | None]]:
    """(classifier, alignment template) for each model folder of a model (one, or an ensemble's)."""
    members = []
    for folder in folders:
        files = ModelFiles.from_dir(folder)
        if detect and files.alignment_template() is None:
            raise ModelError(
                f"{folder}: trained on unaligned crops (preprocess --no-align); use --no-detect on face crops"
            )
        members.append((Classifier(files, backend), files.template))
    return members


class Recognizer:
    """Labels every face of an image with the trained model (one model folder or an ensemble)."""

    def __init__(
        self,
        model: Path = DEFAULT_MODEL,
        backend: str = "opencv",
        min_face: float = 40,
        threshold: float = 0.8,
        top_k: int = 3,
        tta: str | None = None,
        detect: bool = True,
        align_crops: bool = True,
    ):
        folders, model_tta = model_members(model)
        self.members = load_members(folders, backend, detect)
        self.model = {"name": Path(model).name, "sha256": model_sha256([c.files.weights for c, _ in self.members])}
        self.temperature = read_temperature(Path(model))
        labels = {classifier.labels for classifier, _ in self.members}
        if len(labels) > 1:
            raise ModelError(f"{model}: the ensemble's members have different labels: {sorted(labels)}")
        tta = tta or model_tta
        self.detect, self.align_crops, self.backend = detect, align_crops, backend
        self._crop_detector: FaceDetector | None = None
        self.labels = self.members[0][0].labels
        self.detector = FaceDetector(backend=backend, min_face_size=min_face, thresholds=(0.6, 0.7, threshold))
        self.top_k, self.tta = top_k, tta

    def label(self, probabilities: np.ndarray) -> dict:
        """The JSON fields of one face's classification (probabilities to 4 digits)."""
        best = int(np.argmax(probabilities))
        ranked = np.argsort(probabilities)[::-1][: self.top_k]
        return {
            "label": self.labels[best],
            "label_id": best,
            "probability": round(float(probabilities[best]), 4),
            "top_k": [[self.labels[i], round(float(probabilities[i]), 4)] for i in ranked],
            "probabilities": {label: round(float(p), 4) for label, p in zip(self.labels, probabilities)},
        }

    def average(self, prepare: Callable[[int, str | None], np.ndarray]) -> np.ndarray:
        """The members' mean probabilities (temperature-scaled when the model folder says so);
        prepare(side, template) gives each member its faces."""
        mean = np.mean(
            [
                classifier.probabilities(prepare(classifier.mean.shape[-1], template), tta=self.tta)
                for classifier, template in self.members
            ],
            axis=0,
        )
        return mean if self.temperature == 1.0 else calibrated(mean, self.temperature)

    def faces(self, image: np.ndarray, near: list[list[float]] | None = None) -> list[dict]:
        """Every face of a gray, BGR or BGRA image: box, landmarks, score and expression; with
        near (the boxes of faces seen in an earlier frame), only the faces near those boxes,
        several times faster (FaceDetector.detect_near)."""
        found = self.detector.detect(image) if near is None else self.detector.detect_near(image, near)
        if not found:
            return []
        gray = to_gray(image)
        probabilities = self.average(lambda side, template: np.stack([align(gray, f, side, template) for f in found]))
        return [{**face_json(face), **self.label(p)} for face, p in zip(found, probabilities)]

    def crops(self, images: list[np.ndarray]) -> list[dict]:
        """--no-detect: each image is already a face crop. By default it gets the protocol the
        models were trained and evaluated with (padded, MTCNN, aligned on five landmarks; the
        plain crop where no face is found: "aligned" says which); with align_crops=False
        (--raw) the whole crop is resized to the model's input. The box is the face's, or the
        whole image."""
        if not images:
            return []
        grays = [to_gray(image) for image in images]
        aligns = self.align_crops and any(template for _, template in self.members)
        found = self.crop_detector().faces_in_crops(grays) if aligns else [None] * len(grays)

        def prepare(side: int, template: str | None) -> np.ndarray:
            return np.stack(
                [
                    align(g, f, side, template)
                    if f and template
                    else cv2.resize(g, (side, side), interpolation=cv2.INTER_AREA)
                    for g, f in zip(grays, found)
                ]
            )

        probabilities = self.average(prepare)
        return [
            {
                "box": [round(v, 1) for v in f.box] if f else [0, 0, g.shape[1], g.shape[0]],
                **({"aligned": f is not None} if self.align_crops else {}),
                **self.label(p),
            }
            for g, f, p in zip(grays, found, probabilities)
        ]

    def crop_detector(self) -> FaceDetector:
        """MTCNN as preprocessing runs it on face crops (smallest face 20 pixels of the padded crop)."""
        if self._crop_detector is None:
            self._crop_detector = FaceDetector(backend=self.backend, min_face_size=20)
        return self._crop_detector

    def predict(self, image: np.ndarray | str | Path, color: str = "bgr") -> list[dict]:
        """The faces of one picture, as the CLI's JSON gives them (box [x, y, width, height],
        score, landmarks, label, label_id, probability, top_k, probabilities). image: a file
        path, or an array whose colour order is color: "bgr" (OpenCV) or "rgb" (PIL,
        matplotlib, scikit-image). A Recognizer made with detect=False takes face crops."""
        picture = as_bgr_order(image, color)
        return self.faces(picture) if self.detect else self.crops([picture])

    def predict_batch(self, images: list[np.ndarray | str | Path], color: str = "bgr") -> list[list[dict]]:
        """predict() for many pictures; face crops (detect=False) go through the net in batches."""
        pictures = [as_bgr_order(image, color) for image in images]
        if not self.detect:
            return [[face] for face in self.crops(pictures)]
        return [self.faces(picture) for picture in pictures]


def face_json(face: Face) -> dict:
    """A detected face's JSON fields: box [x, y, width, height] and landmarks (as the image
    shows them: left_eye is the eye on the image's left) to 0.1 pixel, score to 4 digits."""
    return {
        "box": [round(v, 1) for v in face.box],
        "score": round(face.score, 4),
        "landmarks": {name: [round(x, 1), round(y, 1)] for name, (x, y) in zip(LANDMARK_NAMES, face.landmarks)},
    }


def model_sha256(weights: list[Path]) -> str:
    """The model's identity: the sha256 of its weight file, or for an ensemble of the list of
    its members' sha256s."""
    digests = [file_sha256(path) for path in weights]
    return digests[0] if len(digests) == 1 else hashlib.sha256(" ".join(digests).encode()).hexdigest()


def as_bgr_order(image: np.ndarray | str | Path, color: str) -> np.ndarray:
    """A picture as OpenCV orders its channels: read from a file, or an array converted from RGB."""
    if color not in ("bgr", "rgb"):
        raise ValueError(f'color must be "bgr" or "rgb", got {color!r}')
    if isinstance(image, (str, Path)):
        return read_image(Path(image))
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise ValueError(f"expected a file path or a uint8 image array, got {getattr(image, 'dtype', type(image))}")
    if color == "rgb" and image.ndim == 3 and image.shape[2] in (3, 4):
        return cv2.cvtColor(image, cv2.COLOR_RGB2BGR if image.shape[2] == 3 else cv2.COLOR_RGBA2BGRA)
    return image
