"""python -m train.crowd: a model's accuracy on the test splits by whether the FER+ crowd
agrees with FER2013's label, disputes it or gives none of FER2013's classes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fer_files import crowd_csv, fer2013_dataset
from ferlib.classifier import Classifier
from ferlib.model_folder import ModelFiles
from hostile import call, command, one_error_line
from reference_images import lfw_face
from tiny_models import face_model
from train.crowd import crowd_groups, main

FERPLUS_COLUMN = [4, 5, 6, 1, 3, 2, 0]  # FER+'s vote column of each FER2013 class (anger ... neutral)


def test_groups_and_the_crowds_class() -> None:
    seven = np.array(
        [
            [6, 4, 0, 0, 0, 0, 0],  # label 0 holds the most: agrees
            [3, 0, 0, 7, 0, 0, 0],  # Happy holds more: disputes, the crowd's class 3
            [5, 5, 0, 0, 0, 0, 0],  # a tie with the label: agrees
            [0, 0, 0, 0, 0, 0, 0],  # no vote for any of the seven
        ],
        np.float32,
    )
    group, chosen = crowd_groups(seven, np.array([0, 0, 1, 2]))
    assert group.tolist() == [0, 1, 0, 2]
    assert chosen.tolist() == [0, 3, 0, -1]


def votes(row: int, predicted: int) -> list[int]:
    """Row i (label i % 7): the crowd agrees with the label when i % 3 == 0; when i % 3 == 1
    it disputes it, voting for the model's answer where that is not the label, else for the
    next class; when i % 3 == 2 it votes only contempt (no FER2013 class)."""
    counts, label = [0] * 10, row % 7
    disputed = predicted if predicted != label else (label + 1) % 7
    counts[7 if row % 3 == 2 else FERPLUS_COLUMN[label if row % 3 == 0 else disputed]] = 10
    return counts


def test_accuracy_per_group_and_how_often_a_disputed_face_gets_the_crowds_class(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    data = fer2013_dataset(tmp_path / "data", 30, ("val", "test"))  # rows 0-29, 30-59
    model = face_model(tmp_path / "model")
    rows, labels = np.arange(60), np.arange(60) % 7
    predicted = Classifier(ModelFiles.from_dir(model)).probabilities(np.stack([lfw_face(i, 48) for i in rows]))
    predicted = predicted.argmax(axis=1)
    usage = ["PublicTest"] * 30 + ["PrivateTest"] * 30
    csv = crowd_csv(tmp_path / "new.csv", [(usage[i], votes(i, predicted[i])) for i in rows])
    out = tmp_path / "crowd.json"
    assert main(["--model", str(model), "--data", str(data), "--votes", str(csv), "--out", str(out)]) == 0
    report = json.loads(out.read_text())["splits"]
    for name, part in (("PublicTest", rows < 30), ("PrivateTest", rows >= 30)):
        table = report[name]
        assert table["accuracy"] == pytest.approx(np.mean(predicted[part] == labels[part]), abs=1e-4)
        for kind, group in enumerate(("agrees", "disputes", "gives no FER2013 class")):
            where = part & (rows % 3 == kind)
            assert table[group]["images"] == 10
            assert table[group]["accuracy"] == pytest.approx(np.mean(predicted[where] == labels[where]), abs=1e-4)
        disputed = part & (rows % 3 == 1)
        wrong = np.mean(predicted[disputed] != labels[disputed])  # each wrong answer is the crowd's class
        assert wrong > 0 and table["disputes"]["crowds_class"] == pytest.approx(wrong, abs=1e-4)
    shown = capsys.readouterr().out
    assert shown.startswith("| faces | PublicTest | PrivateTest |\n")
    public, private = (report[name]["accuracy"] for name in ("PublicTest", "PrivateTest"))
    assert f"| all | {public:.4f} (30) | {private:.4f} (30) |" in shown


def test_votes_of_another_file_or_a_folder_dataset_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = fer2013_dataset(tmp_path / "data", 30, ("val", "test"))  # rows 0-29, 30-59
    model = face_model(tmp_path / "model")
    shifted = crowd_csv(tmp_path / "new.csv", [("Training", [10] + [0] * 9)] + [("PublicTest", [10] + [0] * 9)] * 59)
    argv = ["--model", str(model), "--data", str(data), "--out", str(tmp_path / "crowd.json")]
    assert call(main, [*argv, "--votes", str(shifted)]) == 2
    assert f"{shifted}: line 2: 'Training' where" in one_error_line(capsys.readouterr().err)
    process = command("train.crowd", *argv, "--votes", str(tmp_path / "missing.csv"))  # as cli.run reports it
    _, err = process.communicate(timeout=120)
    assert process.returncode == 2
    assert one_error_line(err.decode()) == f"error: {tmp_path / 'missing.csv'}: No such file or directory"
    manifest = json.loads((data / "manifest.json").read_text())
    (data / "manifest.json").write_text(json.dumps({**manifest, "input": {"folder": "faces"}}))
    assert call(main, [*argv, "--votes", str(shifted)]) == 2
    assert "made from the FER2013 csv" in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "crowd.json").exists()
