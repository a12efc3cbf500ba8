"""Expression probabilities for aligned 48x48 gray faces, from a trained Caffe model.

The input is prepared exactly as Caffe's TEST data layer prepares it in training: the
training mean (48x48) is subtracted and the centre crop_size x crop_size is taken. Two
backends run the same deploy.prototxt + .caffemodel: OpenCV's DNN module (default, no Caffe
build needed) and pycaffe.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ferlib import cvio
from preprocess.faces import TEMPLATES
from preprocess.fer_csv import CLASSES

# Test-time augmentation: how many of Classifier.views() each mode averages over.
TTA_VIEWS = {"none": 1, "mirror": 2, "ten": 10}
TTA_MODES = tuple(TTA_VIEWS)


def tta_average(views: np.ndarray, tta: str) -> np.ndarray:
    """Class probabilities under a test-time augmentation: the mean of the first views of
    Classifier.view_probabilities' (views, N, classes)."""
    return views[: TTA_VIEWS[tta]].mean(axis=0)


class ModelError(Exception):
    """A model folder that is missing files or holds unreadable ones."""


def read_alignment(path: Path) -> str | None:
    """The template name in an alignment.json ({"template": name or null}), or ModelError."""
    try:
        template = json.loads(path.read_text())["template"]
    except (ValueError, UnicodeDecodeError, KeyError, TypeError) as error:
        raise ModelError(f'{path}: expected {{"template": name or null}} ({error!r})') from error
    if template is not None and (not isinstance(template, str) or template not in TEMPLATES):
        raise ModelError(f"{path}: unknown template {template!r}, expected one of {', '.join(TEMPLATES)}")
    return template


def read_labels(path: Path) -> tuple[str, ...]:
    """The class names in a labels.json (a JSON list of distinct, non-empty strings), or ModelError."""
    try:
        labels = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise ModelError(f"{path}: not a JSON list of label names ({error})") from error
    if (
        not isinstance(labels, list)
        or not labels
        or not all(isinstance(label, str) and label.strip() for label in labels)
        or len(set(labels)) != len(labels)
    ):
        raise ModelError(f"{path}: expected a JSON list of distinct label names, got {json.dumps(labels)[:80]}")
    return tuple(labels)


@dataclass(frozen=True)
class ModelFiles:
    """The files of a trained model."""

    deploy: Path
    weights: Path
    mean: Path
    labels: tuple[str, ...] = CLASSES
    template: str | None = None  # the alignment template of the training faces; None: unaligned crops
    alignment_known: bool = False  # whether the folder says how its training faces were aligned

    def alignment_template(self) -> str | None:
        """The template the training faces were aligned with (None: unaligned crops); a
        ModelError when the folder does not say (no alignment.json)."""
        if not self.alignment_known:
            raise ModelError(
                f"{self.deploy.parent}: model folder lacks alignment.json, which says how its faces were aligned"
            )
        return self.template

    @classmethod
    def from_dir(cls, folder: Path) -> ModelFiles:
        """A model folder: deploy.prototxt, one .caffemodel, mean.npy, and optionally labels.json and
        alignment.json ({"template": name or null}, how the training faces were aligned)."""
        if not folder.is_dir():
            raise ModelError(f"{folder}: no such model folder")
        if (folder / "ensemble.json").is_file():
            raise ModelError(f"{folder}: an ensemble (ensemble.json) of model folders, not one model")
        weights = sorted(folder.glob("*.caffemodel"))
        if len(weights) > 1:
            raise ModelError(
                f"{folder}: holds {len(weights)} .caffemodel files ({', '.join(w.name for w in weights)}); expected one"
            )
        missing = [
            name
            for name, ok in (
                ("deploy.prototxt", (folder / "deploy.prototxt").is_file()),
                ("a .caffemodel", len(weights) == 1),
                ("mean.npy", (folder / "mean.npy").is_file()),
            )
            if not ok
        ]
        if missing:
            raise ModelError(f"{folder}: model folder lacks {', '.join(missing)}")
        labels = read_labels(folder / "labels.json") if (folder / "labels.json").is_file() else CLASSES
        alignment = folder / "alignment.json"
        template = read_alignment(alignment) if alignment.is_file() else None
        return cls(folder / "deploy.prototxt", weights[0], folder / "mean.npy", labels, template, alignment.is_file())


def model_members(folder: Path) -> tuple[list[Path], str]:
    """The model folders behind a model, and the test-time augmentation it asks for: itself and
    "none", or the members and "tta" an ensemble.json lists ({"members": [folder, ...], "tta":
    mode}; member paths relative to the ensemble's folder)."""
    manifest = folder / "ensemble.json"
    if not manifest.is_file():
        return [folder], "none"
    try:
        spec = json.loads(manifest.read_text())
        members, tta = spec["members"], spec.get("tta", "none")
    except (ValueError, UnicodeDecodeError, KeyError, TypeError, AttributeError) as error:
        raise ModelError(f'{manifest}: expected {{"members": [model folder, ...], "tta": mode}} ({error!r})') from error
    if not isinstance(members, list) or not members or not all(isinstance(m, str) for m in members):
        raise ModelError(f"{manifest}: members must be a non-empty list of model folders")
    if tta not in TTA_MODES:
        raise ModelError(f"{manifest}: tta must be one of {', '.join(TTA_MODES)}, got {tta!r}")
    return [(folder / member).resolve() for member in members], tta


def crop_size(deploy: Path) -> int:
    """The input side declared by deploy.prototxt's Input layer (the last dim)."""
    try:
        text = deploy.read_text()
    except UnicodeDecodeError as error:
        raise ModelError(f"{deploy}: not a text prototxt (binary data)") from error
    dims = [int(d) for d in re.findall(r"dim:\s*(\d+)", text)[:4]]
    if len(dims) != 4 or min(dims) < 1:
        raise ModelError(f"{deploy}: expected an Input layer with a 4-D shape (N, C, H, W)")
    return dims[3]


def read_mean(path: Path, crop: int) -> np.ndarray:
    """The training mean as (H, W) float32, at least crop x crop, or ModelError."""
    try:
        mean = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise ModelError(f"{path}: not a readable mean array ({error})") from error
    if mean.ndim not in (2, 3) or (mean.ndim == 3 and mean.shape[0] != 1) or min(mean.shape[-2:]) < crop:
        raise ModelError(f"{path}: expected a (1, H, W) gray mean of at least {crop}x{crop}, found shape {mean.shape}")
    if not np.issubdtype(mean.dtype, np.number) or not np.isfinite(mean).all():
        raise ModelError(f"{path}: expected finite numbers, found {mean.dtype}")
    return mean.astype(np.float32).reshape(mean.shape[-2:])


def caffe_net(files: ModelFiles) -> object:
    """The net in pycaffe, or ModelError when pycaffe is not built or cannot read the files."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    try:
        import caffe
    except ImportError as error:
        raise ModelError(
            f"--backend caffe: pycaffe is not installed ({error}); run 'make install', or use --backend opencv"
        ) from error
    caffe.set_mode_cpu()
    try:  # Caffe aborts the process on a file it cannot parse: let OpenCV's reader refuse those first
        cv2.dnn.readNetFromCaffe(str(files.deploy), str(files.weights))
    except cv2.error as error:
        raise ModelError(f"{files.weights}: not a readable Caffe model ({str(error).strip()[-120:]})") from error
    try:
        return caffe.Net(str(files.deploy), caffe.TEST, weights=str(files.weights))
    except (RuntimeError, ValueError) as error:
        raise ModelError(f"{files.weights}: pycaffe cannot read the model ({error})") from error


class Classifier:
    """probabilities(faces) for aligned faces, (N, 48, 48) uint8 -> (N, classes) float32."""

    def __init__(self, files: ModelFiles, backend: str = "opencv"):
        self.files = files
        self.labels = files.labels
        self.crop = crop_size(files.deploy)
        self.mean = read_mean(files.mean, self.crop)
        if backend == "opencv":
            try:
                with cvio.readable(files.deploy) as deploy, cvio.readable(files.weights) as weights:
                    self._net = cv2.dnn.readNetFromCaffe(deploy, weights)
            except cv2.error as error:
                raise ModelError(
                    f"{files.weights}: OpenCV cannot read the model ({str(error).strip()[-120:]})"
                ) from error
            self._forward = self._forward_opencv
        elif backend == "caffe":
            self._net = caffe_net(files)
            self._forward = self._forward_caffe
        else:
            raise ValueError(f"unknown backend {backend!r}: opencv or caffe")
        self._check_outputs()

    def _check_outputs(self) -> None:
        """A forward pass on a blank face: the weights fit the net, and the net has one output per label."""
        try:
            out = self._forward(np.zeros((1, 1, self.crop, self.crop), np.float32))
        except (cv2.error, RuntimeError, ValueError) as error:
            raise ModelError(f"{self.files.weights}: the net cannot run ({str(error).strip()[-120:]})") from error
        if out.shape[1] != len(self.labels):
            raise ModelError(
                f"{self.files.deploy.parent}: the net has {out.shape[1]} outputs but {len(self.labels)} labels "
                f"({', '.join(self.labels)})"
            )

    def prepare(self, faces: np.ndarray, mirror: bool = False, offset: tuple[int, int] | None = None) -> np.ndarray:
        """Mean-subtracted crops (N, 1, crop, crop) float32, centred unless offset (y, x) is given."""
        side = faces.shape[-1]
        y, x = offset if offset is not None else ((side - self.crop) // 2,) * 2
        data = faces.astype(np.float32) - self.mean
        data = data[:, y : y + self.crop, x : x + self.crop]
        if mirror:
            data = data[:, :, ::-1]
        return np.ascontiguousarray(data[:, None])

    def views(self) -> list[tuple[bool, tuple[int, int] | None]]:
        """The ten test-time views as (mirror, offset): the centre crop, its mirror, then the
        four corner crops each plain and mirrored."""
        far = self.mean.shape[-1] - self.crop
        corners = [(m, corner) for corner in ((0, 0), (0, far), (far, 0), (far, far)) for m in (False, True)]
        return [(False, None), (True, None), *corners]

    def view_probabilities(self, faces: np.ndarray, count: int = 10, batch: int = 256) -> np.ndarray:
        """Class probabilities of the first count views: (count, N, classes)."""
        faces = np.asarray(faces, dtype=np.uint8).reshape(-1, *self.mean.shape)
        views = self.views()[:count]
        out = [
            np.stack([self._forward(self.prepare(faces[start : start + batch], m, o)) for m, o in views])
            for start in range(0, len(faces), batch)
        ]
        return np.concatenate(out, axis=1) if out else np.zeros((len(views), 0, len(self.labels)), np.float32)

    def probabilities(self, faces: np.ndarray, tta: str = "none", batch: int = 256) -> np.ndarray:
        """Class probabilities; tta "mirror" averages with the flipped face, "ten" over the
        four corner and centre crops and their mirrors."""
        return tta_average(self.view_probabilities(faces, TTA_VIEWS[tta], batch), tta)

    def _forward_opencv(self, data: np.ndarray) -> np.ndarray:
        self._net.setInput(data)
        return self._net.forward().reshape(len(data), -1).copy()

    def _forward_caffe(self, data: np.ndarray) -> np.ndarray:
        self._net.blobs["data"].reshape(*data.shape)
        self._net.reshape()
        return self._net.forward(data=data)["prob"].reshape(len(data), -1).copy()
