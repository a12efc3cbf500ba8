"""python -m train.teacher: an ensemble's averaged (and softened) probabilities on the
training faces, in the training LMDB's order, as soft targets make train SOFT= accepts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fer_files import crowd_csv
from ferlib.classes import FER2013
from ferlib.classifier import Classifier
from ferlib.dataset import file_sha256
from ferlib.lmdb_io import read_vectors, write_lmdb
from ferlib.model_folder import ModelFiles
from hostile import call, one_error_line
from reference_images import lfw_face
from tiny_models import face_model
from train.teacher import main, soften


def dataset(folder: Path, template: str = "fer2013") -> Path:
    folder.mkdir(parents=True)
    faces = [lfw_face(i, 48) for i in range(20)]
    write_lmdb(folder / "train_lmdb", ((f"{i:08d}_{i:05d}", face, i % 7) for i, face in enumerate(faces)))
    manifest = {"settings": {"align": True, "template": template}, "classes": list(FER2013)}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_an_ensembles_probabilities_become_soft_targets(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = dataset(tmp_path / "data")
    members = [face_model(tmp_path / "a", seed=1), face_model(tmp_path / "b", seed=2)]
    ensemble = tmp_path / "ensemble"
    ensemble.mkdir()
    (ensemble / "ensemble.json").write_text(json.dumps({"members": ["../a", "../b"], "tta": "mirror", "format": 1}))
    assert main(["--model", str(ensemble), "--data", str(data), "--out", str(tmp_path / "t1")]) == 0
    shown = capsys.readouterr()
    assert "20 targets of 7 classes (T=1)" in shown.out
    assert "/80.0 [" in shown.err  # a bar over 2 members x 2 views x 20 faces
    keys, targets = read_vectors(tmp_path / "t1")
    faces = np.stack([lfw_face(i, 48) for i in range(20)])
    expected = np.mean([Classifier(ModelFiles.from_dir(m)).probabilities(faces, tta="mirror") for m in members], axis=0)
    assert keys == [f"{i:08d}_{i:05d}" for i in range(20)] and np.allclose(targets, expected, atol=1e-5)
    made = json.loads((tmp_path / "t1/teacher.json").read_text())
    assert (
        made["command"]
        == f"python -m train.teacher --model {ensemble} --data {data} --out {tmp_path / 't1'} --temperature 1"
    )
    recorded = [
        {"folder": str(m), "weights": "random.caffemodel", "sha256": file_sha256(m / "random.caffemodel")}
        for m in members
    ]
    assert made["members"] == recorded and made["tta"] == "mirror"  # which weights taught, after the folder moves on
    given = ["--model", str(members[0]), "--model", str(members[1]), "--tta", "mirror"]
    assert main([*given, "--data", str(data), "--out", str(tmp_path / "t2")]) == 0  # the members given directly
    assert np.array_equal(read_vectors(tmp_path / "t2")[1], targets)
    assert made["agreement"] == pytest.approx(np.mean(expected.argmax(axis=1) == np.arange(20) % 7))
    assert (
        main(["--model", str(ensemble), "--data", str(data), "--out", str(tmp_path / "t3"), "--temperature", "3"]) == 0
    )
    softer = read_vectors(tmp_path / "t3")[1]
    assert np.allclose(softer, soften(expected, 3), atol=1e-5) and np.allclose(softer.sum(axis=1), 1, atol=1e-5)
    assert (softer.max(axis=1) <= targets.max(axis=1) + 1e-6).all()  # flatter, same ranking
    assert (softer.argmax(axis=1) == targets.argmax(axis=1)).all()


def test_a_card_cites_the_teacher_that_made_its_soft_targets(tmp_path: Path) -> None:
    from train.ship import soft_targets_lines

    data = dataset(tmp_path / "data")
    targets = tmp_path / "t"
    assert main(["--model", str(face_model(tmp_path / "m")), "--data", str(data), "--out", str(targets)]) == 0
    soft = {"path": str(targets), "sha256": "abc", "weight": 0.7}
    args, line, command = soft_targets_lines(soft, data, " DATA=data/mine")
    assert args == " SOFT=runs/t SOFT_WEIGHT=0.7"  # the repository's folders, not this machine's paths
    assert (
        command
        == f".venv/bin/python -m train.teacher --model {tmp_path / 'm'} --data data/mine --out runs/t --temperature 1"
    )
    assert f"`{tmp_path / 'm'}` (`random.caffemodel` sha256 `{file_sha256(tmp_path / 'm/random.caffemodel')}`)" in line
    assert "0.7 x cross-entropy" in line and "0.3 x the hard labels'" in line and "agrees with" in line
    (data / "votes_lmdb").mkdir()  # targets inside the dataset folder, not a teacher's: named, no command
    args, line, command = soft_targets_lines({**soft, "path": str(data / "votes_lmdb"), "weight": 1}, data)
    assert args == " SOFT=votes_lmdb SOFT_WEIGHT=1" and command == "" and "teacher" not in line


def test_a_teacher_aligned_otherwise_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = dataset(tmp_path / "data", template="arcface")
    model = face_model(tmp_path / "m")
    assert call(main, ["--model", str(model), "--data", str(data), "--out", str(tmp_path / "t")]) == 2
    assert "aligned with template 'fer2013', the dataset with 'arcface'" in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "t").exists()


def test_an_ensemble_among_several_teachers_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = dataset(tmp_path / "data")
    model, ensemble = face_model(tmp_path / "m"), tmp_path / "ensemble"
    ensemble.mkdir()
    (ensemble / "ensemble.json").write_text(json.dumps({"members": ["../m"], "tta": "none", "format": 1}))
    argv = ["--model", str(model), "--model", str(ensemble), "--data", str(data), "--out", str(tmp_path / "t")]
    assert call(main, argv) == 2
    assert f"{ensemble}: an ensemble; give its members, or it alone" in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "t").exists()


def test_both_views_of_a_face_share_one_target(tmp_path: Path) -> None:
    """A --raw-view dataset holds each face twice (keys end with its csv row): the teacher's
    target for both records is the mean of its probabilities on the two views."""
    data = tmp_path / "data"
    data.mkdir()
    faces = [lfw_face(i, 48) for i in range(10)]
    views = [(f"{2 * i:08d}_{i:05d}", faces[i]) for i in range(10)] + [
        (f"{2 * i + 1:08d}_{i:05d}", np.ascontiguousarray(faces[i][::-1])) for i in range(10)
    ]
    write_lmdb(data / "train_lmdb", ((key, face, 3) for key, face in views))
    manifest = {"settings": {"align": True, "template": "fer2013"}, "classes": list(FER2013)}
    (data / "manifest.json").write_text(json.dumps(manifest))
    model = face_model(tmp_path / "m", seed=1)
    assert main(["--model", str(model), "--data", str(data), "--out", str(tmp_path / "t")]) == 0
    keys, targets = read_vectors(tmp_path / "t")
    probabilities = Classifier(ModelFiles.from_dir(model)).probabilities(np.stack([f for _, f in views]))
    by_key = dict(zip(keys, targets))
    for i in range(10):
        one, other = by_key[f"{2 * i:08d}_{i:05d}"], by_key[f"{2 * i + 1:08d}_{i:05d}"]
        assert np.array_equal(one, other)
        assert np.allclose(one, (probabilities[i] + probabilities[10 + i]) / 2, atol=1e-5)
    assert not np.allclose(probabilities[:10], probabilities[10:], atol=1e-3)  # the views did differ


def test_the_crowds_votes_become_soft_targets_over_fer2013s_classes(tmp_path: Path) -> None:
    """FER+ counts votes as neutral, happiness, surprise, sadness, anger, disgust, fear,
    contempt, unknown, not a face; the targets put them in FER2013's order without the last
    three, and a face whose votes all fall there keeps its own label."""
    data = dataset(tmp_path / "data")  # 20 faces, row i labelled i % 7
    votes = [[0] * 10 for _ in range(20)]
    for i in range(20):
        votes[i][[4, 5, 6, 1, 3, 2, 0][i % 7]] = 6  # FER+'s column of FER2013 class i % 7: the crowd agrees
        votes[i][1] += 4  # ... and four vote happiness
    votes[3] = [0, 7, 0, 0, 0, 0, 0, 3, 0, 0]  # label Happy; contempt is no FER2013 class: Happy alone
    votes[4] = [2, 0, 0, 0, 0, 0, 0, 0, 8, 0]  # label Sad; the crowd says neutral, with 8 unknown votes left out
    votes[5] = [0, 0, 0, 0, 0, 0, 0, 4, 3, 3]  # contempt, unknown, not a face: the label, one-hot
    csv = crowd_csv(tmp_path / "fer2013new.csv", [("Training", v) for v in votes] + [("PublicTest", [10] + [0] * 9)])
    assert main(["--votes", str(csv), "--data", str(data), "--out", str(tmp_path / "t")]) == 0
    keys, targets = read_vectors(tmp_path / "t")
    assert keys == [f"{i:08d}_{i:05d}" for i in range(20)]
    happy, sad, neutral = FER2013.index("Happy"), FER2013.index("Sad"), FER2013.index("Neutral")
    assert np.allclose(targets[0], np.eye(7)[0] * 0.6 + np.eye(7)[happy] * 0.4)  # Angry 6, happiness 4
    assert np.array_equal(targets[3], np.eye(7, dtype=np.float32)[happy])
    assert np.array_equal(targets[4], np.eye(7, dtype=np.float32)[neutral]) and 4 % 7 == sad
    assert np.array_equal(targets[5], np.eye(7, dtype=np.float32)[5 % 7])
    made = json.loads((tmp_path / "t/teacher.json").read_text())
    assert made["votes"] == {"file": "fer2013new.csv", "sha256": file_sha256(csv)} and "members" not in made
    assert made["agreement"] == pytest.approx(np.mean(targets.argmax(axis=1) == np.arange(20) % 7))
    assert made["agreement"] < 1  # row 4: the crowd's neutral, not the label


def test_votes_for_another_csv_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = dataset(tmp_path / "data")
    csv = crowd_csv(tmp_path / "new.csv", [("Training", [10] + [0] * 9)] * 12 + [("PrivateTest", [10] + [0] * 9)] * 8)
    assert call(main, ["--votes", str(csv), "--data", str(data), "--out", str(tmp_path / "t")]) == 2
    assert f"{csv}: line 14: 'PrivateTest' where" in one_error_line(capsys.readouterr().err)
    short = crowd_csv(tmp_path / "short.csv", [("Training", [10] + [0] * 9)] * 5)
    assert call(main, ["--votes", str(short), "--data", str(data), "--out", str(tmp_path / "t")]) == 2
    assert f"{short}: line 7: 'no such row'" in one_error_line(capsys.readouterr().err)
    assert call(main, ["--votes", str(csv), "--tta", "mirror", "--data", str(data), "--out", str(tmp_path / "t")]) == 2
    assert "--tta" in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "t").exists()


def test_a_card_cites_the_crowds_votes(tmp_path: Path) -> None:
    from train.ship import soft_targets_lines

    data = dataset(tmp_path / "data")
    csv = crowd_csv(tmp_path / "fer2013new.csv", [("Training", [10] + [0] * 9)] * 20)
    assert main(["--votes", str(csv), "--data", str(data), "--out", str(tmp_path / "votes")]) == 0
    soft = {"path": str(tmp_path / "votes"), "sha256": "abc", "weight": 0.5}
    args, line, command = soft_targets_lines(soft, data, " DATA=data/fer2013-rawview")
    assert args == " SOFT=runs/votes SOFT_WEIGHT=0.5"
    assert command == (
        ".venv/bin/python -m train.teacher --votes path/to/fer2013new.csv --data data/fer2013-rawview "
        "--out runs/votes --temperature 1"
    )
    assert f"`fer2013new.csv` sha256 `{file_sha256(csv)}`" in line and "0.5 x the hard labels'" in line
