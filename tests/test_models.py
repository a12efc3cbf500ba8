"""The shipped models: models/ holds only what a user would choose (the default, its members,
the FER+ model) under a size budget, and each model gives the probabilities recorded for it
on fixed faces, with either backend (tests/fixtures/golden_probabilities.json, written by
tests/fixtures/record_golden_probabilities.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ferlib.classifier import Classifier
from ferlib.model_folder import ModelFiles
from predict.recognizer import DEFAULT_MODEL, Recognizer

ROOT = Path(__file__).resolve().parent.parent
GOLDEN_PATH = Path(__file__).parent / "fixtures" / "golden_probabilities.json"
SHIPPED = sorted(p.name for p in (ROOT / "models").iterdir() if p.is_dir())
BUDGET_MB = 60


def golden() -> dict:
    return json.loads(GOLDEN_PATH.read_text())


def probabilities(folder: Path, faces: np.ndarray, backend: str = "opencv") -> np.ndarray:
    """(faces, classes) for face crops: a model folder's own probabilities, an ensemble's average
    with its own test-time augmentation."""
    if (folder / "ensemble.json").exists():
        recognizer = Recognizer(folder, backend, detect=False, align_crops=False)  # the nets alone
        return np.array(
            [[face["probabilities"][n] for n in recognizer.labels] for face in recognizer.crops(list(faces))]
        )
    return Classifier(ModelFiles.from_dir(folder), backend).probabilities(faces)


def test_models_stay_under_the_size_budget() -> None:
    size = sum(p.stat().st_size for p in (ROOT / "models").rglob("*") if p.is_file())
    assert size < BUDGET_MB * 2**20, f"models/ holds {size / 2**20:.1f} MB"


def test_every_shipped_model_has_a_card_and_golden_probabilities() -> None:
    assert SHIPPED == sorted(golden()["models"])
    assert all((ROOT / "models" / name / "README.md").is_file() for name in SHIPPED)


@pytest.mark.parametrize("backend", ["opencv", pytest.param("caffe", marks=pytest.mark.caffe)])
@pytest.mark.parametrize("name", SHIPPED)
def test_golden_probabilities(name: str, backend: str) -> None:
    recorded = golden()
    faces = np.array(recorded["faces"], dtype=np.uint8)
    folder = ROOT / "models" / name
    expected = np.array(recorded["models"][name])
    got = probabilities(folder, faces, backend)
    assert np.abs(got - expected).max() < 1e-4


def test_the_demo_photo_is_happy(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from predict.demo import main as demo

    assert demo(tmp_path) == 0
    faces = json.loads((tmp_path / "demo.json").read_text())["faces"]
    assert len(faces) == 1 and faces[0]["label"] == "Happy" and faces[0]["probability"] > 0.9
    assert (tmp_path / "demo.png").stat().st_size > 10000
    assert DEFAULT_MODEL.name == "fer2013_ensemble"
