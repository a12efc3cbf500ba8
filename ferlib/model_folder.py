"""The model-folder format: the only code that reads or writes a model's files.

A model folder holds deploy.prototxt (an Input layer, then the net up to a Softmax "prob"),
exactly one .caffemodel, mean.npy (the training mean, (1, H, W)), labels.json (the class
names in output order; FER2013's seven when absent) and alignment.json ({"template": name or
null, "points_48": [...], "format": 1}: how the training faces were aligned). An ensemble
folder holds ensemble.json instead ({"members": [folder, ...], "tta": mode, "format": 1},
member folders relative to it). Either may hold calibration.json ({"temperature": T, ...}:
predict applies softmax(log p / T) to the model's probabilities). Folders without "format"
are format 1.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ferlib import atomic
from ferlib.classes import FER2013
from ferlib.faces import TEMPLATES

FORMAT_VERSION = 1
ENSEMBLE_FILE = "ensemble.json"  # in a model folder: it averages the model folders it names
MODEL_FOLDER = atomic.Kind(  # what ship, ensemble and soup may replace (a net's folder has no .caffemodel)
    "a model folder (deploy.prototxt and a .caffemodel, or ensemble.json)",
    lambda folder: (
        (folder / ENSEMBLE_FILE).is_file()
        or ((folder / "deploy.prototxt").is_file() and any(folder.glob("*.caffemodel")))
    ),
)
# Test-time augmentations a model can ask for, and how many views each averages.
TTA_VIEWS = {"none": 1, "mirror": 2, "ten": 10}
TTA_MODES = tuple(TTA_VIEWS)


def _check_format(path: Path, spec: dict) -> None:
    version = spec.get("format", 1)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelError(f"{path}: format {version!r} is newer than this code reads ({FORMAT_VERSION}); update it")


class ModelError(Exception):
    """A model folder that is missing files or holds unreadable ones."""


def read_alignment(path: Path) -> str | None:
    """The template name in an alignment.json ({"template": name or null}), or ModelError."""
    try:
        spec = json.loads(path.read_text())
        template = spec["template"]
    except (ValueError, UnicodeDecodeError, KeyError, TypeError) as error:
        raise ModelError(f'{path}: expected {{"template": name or null}} ({error!r})') from error
    _check_format(path, spec)
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
    labels: tuple[str, ...] = FER2013
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
        if is_ensemble(folder):
            raise ModelError(f"{folder}: an ensemble ({ENSEMBLE_FILE}) of model folders, not one model")
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
        labels = read_labels(folder / "labels.json") if (folder / "labels.json").is_file() else FER2013
        alignment = folder / "alignment.json"
        template = read_alignment(alignment) if alignment.is_file() else None
        return cls(folder / "deploy.prototxt", weights[0], folder / "mean.npy", labels, template, alignment.is_file())


def is_ensemble(folder: Path) -> bool:
    """Whether a model folder is an ensemble of others (it holds ensemble.json) rather than one model."""
    return (folder / ENSEMBLE_FILE).is_file()


def model_members(folder: Path) -> tuple[list[Path], str]:
    """The model folders behind a model, and the test-time augmentation it asks for: itself and
    "none", or the members and "tta" an ensemble.json lists ({"members": [folder, ...], "tta":
    mode}; member paths relative to the ensemble's folder)."""
    if not is_ensemble(folder):
        return [folder], "none"
    manifest = folder / ENSEMBLE_FILE
    try:
        spec = json.loads(manifest.read_text())
        members, tta = spec["members"], spec.get("tta", "none")
    except (ValueError, UnicodeDecodeError, KeyError, TypeError, AttributeError) as error:
        raise ModelError(f'{manifest}: expected {{"members": [model folder, ...], "tta": mode}} ({error!r})') from error
    _check_format(manifest, spec)
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


def alignment_spec(template: str | None) -> dict:
    """alignment.json's content for faces aligned with template (None: unaligned crops)."""
    return {"template": template, "points_48": TEMPLATES[template].tolist() if template else None, "format": 1}


def write_model(
    folder: Path,
    name: str,
    weights: Path,
    deploy: Path,
    mean: Path,
    labels: tuple[str, ...],
    template: str | None,
) -> None:
    """The files predict reads, into folder (a new folder being built; see ferlib.atomic)."""
    shutil.copy(weights, folder / f"{name}.caffemodel")
    shutil.copy(deploy, folder / "deploy.prototxt")
    shutil.copy(mean, folder / "mean.npy")
    (folder / "labels.json").write_text(json.dumps(list(labels)) + "\n")
    (folder / "alignment.json").write_text(json.dumps(alignment_spec(template)) + "\n")


def write_ensemble(folder: Path, members: list[str], tta: str) -> None:
    """ensemble.json into folder: members relative to the ensemble's final place, and its TTA."""
    spec = {"members": members, "tta": tta, "format": FORMAT_VERSION}
    (folder / ENSEMBLE_FILE).write_text(json.dumps(spec, indent=1) + "\n")


def calibrated(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """Temperature scaling: softmax(log p / T); T > 1 softens the probabilities, T < 1
    sharpens them, and the winning label never changes."""
    logits = np.log(np.clip(probabilities, 1e-12, None)) / temperature
    scaled = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return scaled / scaled.sum(axis=-1, keepdims=True)


def read_temperature(folder: Path) -> float:
    """The temperature in a model folder's calibration.json (fitted by train.calibrate), or 1."""
    path = folder / "calibration.json"
    if not path.is_file():
        return 1.0
    try:
        spec = json.loads(path.read_text())
        temperature = float(spec["temperature"])
    except (ValueError, UnicodeDecodeError, KeyError, TypeError) as error:
        raise ModelError(f'{path}: expected {{"temperature": number}} ({error!r})') from error
    _check_format(path, spec)
    if not 0.05 <= temperature <= 20:
        raise ModelError(f"{path}: temperature {temperature} is out of range (0.05-20)")
    return temperature


def write_calibration(folder: Path, report: dict) -> None:
    """calibration.json: the temperature and how it was fitted."""
    atomic.write_json(folder / "calibration.json", {**report, "format": FORMAT_VERSION})
