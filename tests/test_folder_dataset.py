"""Your own labelled faces: make preprocess FOLDER= (split by the tool, stratified, seeded,
grouped by subject; or split by you; folder names mapped onto FER2013's classes; bad files
reported by name and skipped), then fine-tuning a shipped model with a fresh last layer,
evaluation and a model card: the worked example of docs/your-faces.md, on faces the test makes."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data

from ferlib.lmdb_io import read_lmdb
from hostile import call, one_error_line
from preprocess.__main__ import main
from reference_images import lfw_face

ROOT = Path(__file__).resolve().parent.parent
CLASSES = ("calm", "gloom", "joy")


def faces_folder(root: Path, subjects: int = 12, per_subject: int = 5, split: bool = False) -> Path:
    """Face crops of scikit-image's LFW subset, 64x64, in class folders; S<subject>_<n>.png,
    every subject in one class (the test checks no subject straddles two splits)."""
    for s in range(subjects):
        label = CLASSES[s % len(CLASSES)]
        part = ("train", "train", "val", "test")[s % 4] if split else ""
        folder = root / part / label
        folder.mkdir(parents=True, exist_ok=True)
        for n in range(per_subject):
            cv2.imwrite(str(folder / f"S{s:03d}_{n}.png"), lfw_face((s * per_subject + n) % 100, 64))
    return root


def rows(dataset: Path) -> list[dict]:
    with open(dataset / "files.csv") as handle:
        return list(csv.DictReader(handle))


def test_a_folder_becomes_a_dataset_split_by_subject(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = faces_folder(tmp_path / "faces")
    cv2.imwrite(str(folder / "joy" / "S000_photo.jpg"), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    (folder / "joy" / "notes.txt").write_text("not a face")
    (folder / "gloom" / "S001_cut.png").write_bytes(cv2.imencode(".png", lfw_face(1, 64))[1].tobytes()[:60])
    out = tmp_path / "data"
    assert main(["--folder", str(folder), "--out", str(out), "--subject", r"^(S\d+)_"]) == 0
    err = capsys.readouterr().err
    assert "notes.txt: not an image file (.txt) (skipped)" in err and "S001_cut.png: not a readable image" in err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["classes"] == list(CLASSES)
    assert manifest["bad_files"]["count"] == 2
    assert {f["file"] for f in manifest["bad_files"]["files"]} == {"joy/notes.txt", "gloom/S001_cut.png"}
    listed = rows(out)
    assert len(listed) == 12 * 5 + 1  # the faces and the photo; the cut PNG skipped
    by_subject = {}
    for row in listed:
        by_subject.setdefault(row["subject"], set()).add(row["split"])
    assert all(len(splits) == 1 for splits in by_subject.values()), "a subject on two sides of a split"
    for split in ("train", "val", "test"):
        in_split = [r for r in listed if r["split"] == split]
        assert {r["class"] for r in in_split} == set(CLASSES), "stratified: every class in every split"
        keys, images, labels = read_lmdb(out / f"{split}_lmdb")
        assert images.shape[1:] == (1, 48, 48) and len(keys) == manifest["counts"][split]["total"]
        assert sorted(labels.tolist()) == sorted(int(r["label"]) for r in in_split)
    photo = next(r for r in listed if r["file"] == "joy/S000_photo.jpg")
    index = {line.split(",")[2]: line.split(",")[4] for line in (out / "index.csv").read_text().splitlines()[1:]}
    assert index[photo["row"]] == "1", "the face in the large photo was found"
    assert sum(manifest["faces"][s]["found"] for s in ("train", "val", "test")) >= 0.9 * len(listed)


def test_the_split_is_seeded(tmp_path: Path) -> None:
    folder = faces_folder(tmp_path / "faces", subjects=30, per_subject=1)
    splits = {}
    for name, seed in (("a", "1"), ("b", "1"), ("c", "2")):
        assert main(["--folder", str(folder), "--out", str(tmp_path / name), "--seed", seed, "--no-images"]) == 0
        splits[name] = [(r["file"], r["split"]) for r in rows(tmp_path / name)]
    assert splits["a"] == splits["b"] and splits["a"] != splits["c"]


def test_your_own_split_and_a_mapping_onto_fer2013(tmp_path: Path) -> None:
    folder = faces_folder(tmp_path / "faces", split=True)
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"calm": "Neutral", "joy": "Happy", "gloom": None}))
    out = tmp_path / "data"
    assert main(["--folder", str(folder), "--out", str(out), "--map", str(mapping), "--no-images"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["classes"] == ["Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral"]
    assert manifest["split"]["by"].startswith("user")
    listed = rows(out)
    assert {r["class"] for r in listed} == {"Neutral", "Happy"}
    assert all(r["file"].startswith(r["split"] + "/") for r in listed)


def test_folders_named_like_fer2013_keep_its_order(tmp_path: Path) -> None:
    folder = tmp_path / "faces"
    for i, name in enumerate(["sad", "HAPPY", "neutral"] * 4):
        (folder / name).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / name / f"{i}.png"), lfw_face(i, 48))
    assert main(["--folder", str(folder), "--out", str(tmp_path / "d"), "--no-images"]) == 0
    assert json.loads((tmp_path / "d/manifest.json").read_text())["classes"][3] == "Happy"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--subject", "^(X\\d+)_"], "no subject in 60 of 60 file names, e.g. calm/S000_0.png"),
        (["--subject", "(unclosed"], "not a regular expression"),
        (["--split", "0.5,0.5"], "--split: expected three positive fractions"),
        (["--map", "MAP"], "class folders gloom are not in the --map file"),
        (["--ferplus", "x.csv"], "--ferplus: FER+ labels belong to the FER2013 csv"),
        (["CSV"], "give the FER2013 csv or --folder DIR (one of them)"),
    ],
)
def test_bad_options_get_one_line(tmp_path: Path, capsys: pytest.CaptureFixture, args: list[str], words: str) -> None:
    folder = faces_folder(tmp_path / "faces")
    (tmp_path / "map.json").write_text(json.dumps({"calm": "Neutral", "joy": "Happy"}))
    args = [str(tmp_path / "map.json") if a == "MAP" else str(tmp_path / "x.csv") if a == "CSV" else a for a in args]
    assert call(main, ["--folder", str(folder), "--out", str(tmp_path / "d"), *args]) == 2
    assert words in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "d").exists()


def test_bad_folders_get_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cases = []
    half = faces_folder(tmp_path / "half", split=True)
    shutil.rmtree(half / "val")
    cases.append((half, "has train/ but not val/"))
    lonely = tmp_path / "lonely" / "joy"
    lonely.mkdir(parents=True)
    cv2.imwrite(str(lonely / "a.png"), lfw_face(0, 48))
    cases.append((lonely.parent, "one class folder (joy)"))
    few = faces_folder(tmp_path / "few", subjects=3, per_subject=2)
    cases.append((few, "no readable images in val, test"))
    cases.append((tmp_path / "none", "no such folder"))
    for folder, words in cases:
        assert call(main, ["--folder", str(folder), "--out", str(tmp_path / "d")]) == 2
        assert words in one_error_line(capsys.readouterr().err)


def test_an_unchanged_folder_is_not_read_again(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = faces_folder(tmp_path / "faces")
    argv = ["--folder", str(folder), "--out", str(tmp_path / "d"), "--no-images"]
    assert main(argv) == 0
    assert main(argv) == 0 and "is up to date" in capsys.readouterr().out
    extra = folder / "joy" / "S000_9.png"
    cv2.imwrite(str(extra), lfw_face(50, 64))
    assert main(argv) == 0 and "wrote" in capsys.readouterr().out
    assert any(r["file"] == "joy/S000_9.png" for r in rows(tmp_path / "d"))


def test_fine_tuning_the_shipped_model_on_a_folder_ships_a_model(
    tmp_path: Path, caffe_tool: str, capsys: pytest.CaptureFixture
) -> None:
    from predict import Recognizer
    from train.evaluate import evaluate
    from train.run import train
    from train.ship import ship

    dataset = tmp_path / "data"
    assert (
        main(["--folder", str(faces_folder(tmp_path / "faces")), "--out", str(dataset), "--subject", r"^(S\d+)_"]) == 0
    )
    # docs/your-faces.md: the default's net, whose last layer is fc7
    weights = ROOT / "models/fer2013_vgg13_half_siblings/fer2013_vgg13_half_siblings.caffemodel"
    info = train(
        "fer_vgg13_half", dataset, tmp_path / "runs", "ft", epochs=6, caffe=caffe_tool, weights=weights, base_lr=0.001
    )
    assert info["status"] == "done" and info["fresh_layers"] == ["fc7-3classes"] and info["base_lr"] == 0.001
    log = (tmp_path / "runs/ft/caffe.log").read_text()
    ignored = set(re.findall(r"Ignoring source layer (\S+)", log))
    # of the layers with weights only the 7-class classifier is dropped; the distillation loss
    # the shipped model was trained with (soft/*, and the split feeding it) has none, nor has the
    # deploy net's Softmax that a soup's weights file names
    dropped = {n for n in ignored if not n.startswith(("soft/", "fc7_")) and n != "prob"}
    assert "Finetuning from" in log and dropped == {"fc7"}
    report = evaluate(dataset, tmp_path / "runs/ft/eval", "none", "opencv", run=tmp_path / "runs/ft")
    assert report["split_names"] == {"val": "val", "test": "test"}
    model = ship(tmp_path / "runs/ft", "my_faces", tmp_path / "models")
    card = (model / "README.md").read_text()
    assert (
        "trained on the folder dataset `faces`" in card and "`fc7-3classes` started afresh for these 3 classes" in card
    )
    assert f"| test accuracy (all {report['splits']['test']['images']} images) |" in card
    assert "make preprocess FOLDER=" in card and "DATA=data/faces WEIGHTS=" in card and "LR=0.001" in card
    assert json.loads((model / "labels.json").read_text()) == list(CLASSES)
    faces = Recognizer(model).predict(cv2.resize(lfw_face(3, 64), (160, 160)))
    assert len(faces) == 1 and faces[0]["label"] in CLASSES and set(faces[0]["probabilities"]) == set(CLASSES)
    assert np.isclose(sum(faces[0]["probabilities"].values()), 1, atol=1e-3)
    # fine-tuning the fine-tuned model again copies its renamed classifier instead of restarting it
    again = train(
        "fer_vgg13_half",
        dataset,
        tmp_path / "runs",
        "again",
        epochs=1,
        caffe=caffe_tool,
        weights=model / "my_faces.caffemodel",
    )
    assert (
        again["fresh_layers"] == [] and "Ignoring source layer" not in (tmp_path / "runs/again/caffe.log").read_text()
    )
