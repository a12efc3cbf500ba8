"""Calibration: the expected calibration error, the fitted temperature, predict applying a
model folder's calibration.json, and the card that says what was measured. No Caffe needed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ferlib.classes import FER2013
from ferlib.lmdb_io import write_lmdb
from ferlib.model_folder import ModelError, calibrated, read_temperature
from predict import Recognizer
from reference_images import lfw_face
from tiny_models import face_model
from train.calibrate import SECTION, expected_calibration_error, fit_temperature, main, with_section


def test_calibration_error_of_known_answers() -> None:
    labels = np.array([0, 0, 0, 0, 1])
    confident = np.tile([0.9, 0.1], (5, 1))  # 90% sure of class 0 each time, right 4 times in 5
    assert expected_calibration_error(confident, labels) == pytest.approx(0.1)
    honest = np.tile([0.8, 0.2], (5, 1))
    assert expected_calibration_error(honest, labels) == pytest.approx(0.0)


def test_the_fitted_temperature_undoes_a_known_one() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, (4000, 7))
    truth = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(7, p=p) for p in truth])
    overconfident = calibrated(truth, 0.5)  # as if a model's logits were twice too large
    assert fit_temperature(overconfident, labels) == pytest.approx(2.0, abs=0.15)
    assert (calibrated(overconfident, 2.0).argmax(axis=1) == overconfident.argmax(axis=1)).all()
    assert expected_calibration_error(calibrated(overconfident, 2.0), labels) < expected_calibration_error(
        overconfident, labels
    )


def test_predict_applies_a_model_folders_temperature(tmp_path: Path) -> None:
    model = face_model(tmp_path / "model")
    faces = [lfw_face(i, 48) for i in range(4)]
    raw = Recognizer(model, detect=False).crops(faces)
    (model / "calibration.json").write_text(json.dumps({"temperature": 2.0}))
    scaled = Recognizer(model, detect=False).crops(faces)
    labels = list(raw[0]["probabilities"])
    for before, after in zip(raw, scaled):
        expected = calibrated(np.array([before["probabilities"][n] for n in labels]), 2.0)
        assert np.allclose([after["probabilities"][n] for n in labels], expected, atol=2e-4)
        assert after["label"] == before["label"]
    for bad in ('{"temperature": "hot"}', '{"temperature": 0}', "{", '{"temperature": 1, "format": 9}'):
        (model / "calibration.json").write_text(bad)
        with pytest.raises(ModelError, match="calibration.json"):
            read_temperature(model)


def test_write_puts_one_calibration_section_on_the_card(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for split, first in (("val", 0), ("test", 30)):
        faces = ((f"{i:05d}", lfw_face(i, 48), i % 7) for i in range(first, first + 30))
        write_lmdb(data / f"{split}_lmdb", faces)
    (data / "manifest.json").write_text(json.dumps({"input": {"csv_sha256": "synthetic"}, "classes": list(FER2013),
                                                    "settings": {"align": True, "template": "fer2013"}}))  # fmt: skip
    model = face_model(tmp_path / "model")
    card = "# model\n\n## Data\nfaces\n\n## Intended use and limits\n\nresearch\n"
    (model / "README.md").write_text(card)
    argv = ["--model", str(model), "--data", str(data)]
    before = sorted(p.name for p in model.iterdir())
    assert main([*argv, "--out", str(tmp_path / "report")]) == 0
    assert sorted(p.name for p in model.iterdir()) == before  # measuring alone leaves the model folder alone
    assert (model / "README.md").read_text() == card
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == ["calibration-report.json", "calibration.png"]
    assert f"report in {tmp_path / 'report'}" in capsys.readouterr().out
    for _ in range(2):  # again: the section is replaced, not added twice
        assert main([*argv, "--write"]) == 0
    written = (model / "README.md").read_text()
    temperature = json.loads((model / "calibration.json").read_text())["temperature"]
    assert written.startswith(card.rstrip("\n") + "\n\n" + SECTION + "\n")
    assert written.count(SECTION) == 1
    # the dataset by the repository folder make preprocess makes it in, not this machine's path
    assert f"python -m train.calibrate --model {model} --data data/fer2013 --write" in written
    assert f"fitted on PublicTest, {temperature:g}," in written
    assert "wrote calibration.json and the card's Calibration section" in capsys.readouterr().out
    (model / "README.md").unlink()  # a folder without a card gets none
    assert main([*argv, "--write"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("; wrote calibration.json")
    assert not (model / "README.md").exists()


def test_a_calibration_section_amid_the_card_is_replaced_whole() -> None:
    card = f"# m\n\n{SECTION}\n\nold figures\nmore\n\n## Limits\n\nresearch\n"
    assert with_section(card, f"{SECTION}\n\nnew\n") == f"# m\n\n## Limits\n\nresearch\n\n{SECTION}\n\nnew\n"
