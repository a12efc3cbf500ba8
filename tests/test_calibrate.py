"""Calibration: the expected calibration error, the fitted temperature, and predict applying
a model folder's calibration.json. No Caffe needed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ferlib.model_folder import ModelError, calibrated, read_temperature
from predict import Recognizer
from reference_images import lfw_face
from tiny_models import face_model
from train.calibrate import expected_calibration_error, fit_temperature


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
