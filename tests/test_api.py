"""The Python API: from predict import Recognizer, from any folder (make install-predict
installs the project in .venv), on paths and arrays in either colour order, one at a time
or in batches, giving the same face objects as the CLI's JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data

from predict import Recognizer
from predict.__main__ import main
from reference_images import lfw_face


@pytest.fixture(scope="module")
def recognizer() -> Recognizer:
    return Recognizer()


def test_importable_from_any_folder(tmp_path: Path) -> None:
    script = "from predict import Recognizer; print(Recognizer.__module__)"
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "predict.recognizer"


def test_faces_are_the_clis_json(recognizer: Recognizer, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    photo = tmp_path / "astronaut.png"
    cv2.imwrite(str(photo), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    assert main([str(photo), "--out", str(tmp_path / "a.png")]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "fer-caffe/1" and doc["model"] == recognizer.model
    assert doc["model"]["name"] == "fer2013_default" and len(doc["model"]["sha256"]) == 64
    cli = doc["faces"]
    assert json.loads(json.dumps(recognizer.predict(photo))) == cli
    assert recognizer.predict(str(photo))[0]["label"] == "Happy"


def test_rgb_arrays_are_not_taken_for_bgr(recognizer: Recognizer) -> None:
    rgb = data.astronaut()
    from_rgb = recognizer.predict(rgb, color="rgb")
    from_bgr = recognizer.predict(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert from_rgb == from_bgr
    swapped = recognizer.predict(rgb)  # the same array taken as BGR: a different picture
    assert swapped != from_rgb
    with pytest.raises(ValueError, match="color"):
        recognizer.predict(rgb, color="hsv")


def test_batches_of_face_crops(tmp_path: Path) -> None:
    crops = Recognizer(detect=False)
    faces = [lfw_face(i, 48) for i in range(5)]
    batch = crops.predict_batch(faces)
    assert [len(found) for found in batch] == [1] * 5
    assert batch[2] == crops.predict(faces[2])
    assert [found[0]["aligned"] for found in batch] == [True] * 4 + [False]  # MTCNN misses the last
    assert 0 < batch[0][0]["box"][2] < 48 and batch[4][0]["box"] == [0, 0, 48, 48]
    raw = Recognizer(detect=False, align_crops=False).predict(faces[0])
    assert raw[0]["box"] == [0, 0, 48, 48] and raw[0]["probabilities"] != batch[0][0]["probabilities"]
    assert np.isclose(sum(batch[0][0]["probabilities"].values()), 1, atol=5e-4)  # 4 digits each
