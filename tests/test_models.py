"""The shipped models: models/ holds only what a user would choose (the default, its members,
the FER+ model) under a size budget, and each model gives the probabilities recorded for it
on fixed faces, with either backend (tests/fixtures/golden_probabilities.json, written by
tests/fixtures/record_golden_probabilities.py)."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from ferlib.classifier import Classifier, face_mflops
from ferlib.model_folder import ModelError, ModelFiles, model_members
from predict.recognizer import DEFAULT_MODEL, Recognizer

ROOT = Path(__file__).resolve().parent.parent
GOLDEN_PATH = Path(__file__).parent / "fixtures" / "golden_probabilities.json"
RESTORED = "RESTORED"  # scripts/restore_model.sh marks the superseded models it takes out of history
SHIPPED = sorted(p.name for p in (ROOT / "models").iterdir() if p.is_dir() and not (p / RESTORED).exists())
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
    size = sum(p.stat().st_size for name in SHIPPED for p in (ROOT / "models" / name).rglob("*") if p.is_file())
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
    assert DEFAULT_MODEL.name == "fer2013_default"


def full_history() -> bool:
    """Whether this checkout is a git clone with all of its history (not shallow)."""
    result = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--is-shallow-repository"], capture_output=True, text=True
    )
    return result.returncode == 0 and result.stdout.strip() == "false"


@pytest.mark.skipif(not full_history(), reason="needs a git clone with its full history (superseded models live there)")
def test_a_superseded_model_comes_back_out_of_history(tmp_path: Path) -> None:
    script = str(ROOT / "scripts/restore_model.sh")
    done = subprocess.run([script, "fer2013_vgg", str(tmp_path / "m")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    weights = (tmp_path / "m/fer2013_vgg.caffemodel").read_bytes()
    # the sha256 docs/results.md gives for the superseded fer_vgg of 36 epochs
    assert hashlib.sha256(weights).hexdigest().startswith("b47c6f6f245570979032f054462b3558")
    assert ModelFiles.from_dir(tmp_path / "m").labels[3] == "Happy"
    again = subprocess.run([script, "fer2013_vgg", str(tmp_path / "m")], capture_output=True, text=True)
    never = subprocess.run([script, "no_such_model", str(tmp_path / "n")], capture_output=True, text=True)
    assert again.returncode == 2 and again.stderr.startswith("error: ") and "exists: nothing restored" in again.stderr
    assert never.returncode == 2 and "is not in this clone's git history" in never.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # nothing half-written beside it
    assert (tmp_path / "m" / RESTORED).read_text().startswith("models/fer2013_vgg as of commit ")


@pytest.mark.parametrize("load", [face_mflops, Classifier], ids=["operation count", "classifier"])
def test_unreadable_weights_are_one_model_error_naming_them(tmp_path: Path, load) -> None:
    shipped = ModelFiles.from_dir(model_members(DEFAULT_MODEL)[0][0])  # the default's net, whichever it is
    weights = tmp_path / shipped.weights.name
    weights.mkdir()  # unreadable as a file, even for root
    with pytest.raises(ModelError, match=f"^{re.escape(str(weights))}: cannot read"):
        load(ModelFiles(shipped.deploy, weights, shipped.mean))
