"""python -m predict: both backends agree, images / folders / videos / crops, and bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data

from ferlib.classifier import Classifier
from ferlib.faces import TEMPLATES, FaceDetector
from ferlib.model_folder import ModelError, ModelFiles
from predict.__main__ import main
from predict.recognizer import Recognizer
from reference_images import lfw_face
from tiny_models import face_model

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small net with random weights and BatchNorm statistics of real faces (no Caffe needed)."""
    return face_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "astronaut.png"
    cv2.imwrite(str(path), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    return path


def test_opencv_and_caffe_backends_give_the_same_probabilities(model: Path, pycaffe: object) -> None:
    faces = np.stack([lfw_face(i, 48) for i in range(32)])
    files = ModelFiles.from_dir(model)
    for tta in ("none", "ten"):
        opencv = Classifier(files, "opencv").probabilities(faces, tta=tta)
        by_caffe = Classifier(files, "caffe").probabilities(faces, tta=tta)
        assert opencv.shape == (32, 7)
        assert np.allclose(opencv.sum(axis=1), 1, atol=1e-5)
        assert np.abs(opencv - by_caffe).max() < 1e-4
        assert opencv.std(axis=0).max() > 0.02  # the faces do get different answers


def test_the_classifier_prepares_faces_as_caffes_test_phase(model: Path) -> None:
    classifier = Classifier(ModelFiles.from_dir(model))
    faces = np.stack([lfw_face(i, 48) for i in range(2)])
    data_blob = classifier.prepare(faces)
    assert data_blob.shape == (2, 1, 42, 42)  # the tiny net reads 42x42 crops, as the reference net
    assert np.array_equal(data_blob[:, 0], faces[:, 3:45, 3:45].astype(np.float32) - 120)


def test_image_json_and_annotated_copy(model: Path, photo: Path, capsys: pytest.CaptureFixture) -> None:
    assert main([str(photo), "--model", str(model), "--top-k", "2"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["faces"]) == 1
    face = doc["faces"][0]
    assert set(face) >= {"box", "landmarks", "score", "label", "label_id", "probability", "probabilities", "top_k"}
    assert len(face["probabilities"]) == 7 and abs(sum(face["probabilities"].values()) - 1) < 1e-4
    assert len(face["top_k"]) == 2 and face["top_k"][0][0] == face["label"]
    annotated = cv2.imread(doc["annotated"])
    assert Path(doc["annotated"]) == photo.parent / "out" / "astronaut.png"
    assert annotated.shape == (512, 512, 3)
    assert not np.array_equal(annotated, cv2.imread(str(photo)))


def test_the_face_is_classified_as_preprocessing_aligns_it(model: Path, photo: Path) -> None:
    from ferlib.faces import align, to_gray

    image = cv2.imread(str(photo))
    recognizer = Recognizer(model)
    face = recognizer.detector.detect(image)[0]
    expected = recognizer.members[0][0].probabilities(align(to_gray(image), face, 48, "fer2013")[None])[0]
    got = recognizer.faces(image)[0]["probabilities"]
    assert np.allclose(list(got.values()), expected, atol=5e-5)  # JSON: 4 digits


def make_ensemble(model: Path, tmp_path: Path) -> Path:
    """An ensemble of the model and a copy of it that says it was trained on arcface-aligned faces."""
    arcface = tmp_path / "arcface"
    shutil.copytree(model, arcface)
    (arcface / "alignment.json").write_text('{"template": "arcface"}')
    ensemble = tmp_path / "ensemble"
    ensemble.mkdir()
    (ensemble / "ensemble.json").write_text(json.dumps({"members": [str(model), "../arcface"]}))
    return ensemble


def test_an_ensemble_averages_its_members_each_aligning_as_it_was_trained(
    model: Path, photo: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from ferlib.faces import align, to_gray

    ensemble = make_ensemble(model, tmp_path)
    with pytest.raises(ModelError, match="an ensemble"):
        ModelFiles.from_dir(ensemble)
    image = cv2.imread(str(photo))
    recognizer = Recognizer(ensemble)
    face = recognizer.detector.detect(image)[0]
    classifier, gray = Classifier(ModelFiles.from_dir(model)), to_gray(image)
    expected = np.mean([classifier.probabilities(align(gray, face, 48, t)[None])[0] for t in TEMPLATES], axis=0)
    assert np.allclose(list(recognizer.faces(image)[0]["probabilities"].values()), expected, atol=5e-5)
    assert main([str(photo), "--model", str(ensemble), "--out", str(tmp_path / "out.png")]) == 0
    assert json.loads(capsys.readouterr().out)["faces"][0]["label"] == recognizer.labels[int(np.argmax(expected))]
    assert recognizer.tta == "none"
    (ensemble / "ensemble.json").write_text(json.dumps({"members": [str(model), "../arcface"], "tta": "ten"}))
    assert Recognizer(ensemble).tta == "ten" and Recognizer(ensemble, tta="mirror").tta == "mirror"


@pytest.mark.parametrize(
    "damage, words",
    [
        ("{not json", "expected"),
        ('{"members": []}', "non-empty list"),
        ('{"members": ["../nowhere"]}', "no such model folder"),
        ('{"members": ["../arcface"], "tta": "twelve"}', "tta must be one of none, mirror, ten"),
        ('["../arcface"]', "expected"),
        ("other_labels", "different labels"),
    ],
)
def test_a_broken_ensemble_is_refused(
    model: Path, photo: Path, tmp_path: Path, damage: str, words: str, capsys: pytest.CaptureFixture
) -> None:
    ensemble = make_ensemble(model, tmp_path)
    if damage == "other_labels":
        (tmp_path / "arcface" / "labels.json").write_text(json.dumps([f"class {i}" for i in range(7)]))
    else:
        (ensemble / "ensemble.json").write_text(damage)
    assert main([str(photo), "--model", str(ensemble)]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


@pytest.mark.parametrize("variant", ["gray", "rgba", "16bit", "huge"])
def test_gray_rgba_16bit_and_huge_images_work(
    model: Path, photo: Path, tmp_path: Path, variant: str, capsys: pytest.CaptureFixture
) -> None:
    image = cv2.imread(str(photo))
    converted = {
        "gray": lambda: cv2.cvtColor(image, cv2.COLOR_BGR2GRAY),
        "rgba": lambda: cv2.cvtColor(image, cv2.COLOR_BGR2BGRA),
        "16bit": lambda: image.astype(np.uint16) * 257,
        "huge": lambda: cv2.resize(image, (5000, 5000)),
    }[variant]()
    path = tmp_path / f"{variant}.png"
    cv2.imwrite(str(path), converted)
    assert main([str(path), "--model", str(model), "--out", str(tmp_path / "a.png")]) == 0
    faces = json.loads(capsys.readouterr().out)["faces"]
    assert len(faces) == 1
    if variant == "huge":
        assert faces[0]["box"][2] > 500  # mapped back to the full-size image


def test_no_face_is_an_empty_list_not_an_error(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "coffee.png"
    cv2.imwrite(str(path), data.coffee())
    assert main([str(path), "--model", str(model)]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["faces"] == []
    assert "no face found" in captured.err


def test_no_detect_classifies_a_crop(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "crop.png"
    cv2.imwrite(str(path), lfw_face(3, 48))
    classifier = Classifier(ModelFiles.from_dir(model))
    assert main([str(path), "--model", str(model), "--no-detect"]) == 0  # preprocessing's protocol
    faces = json.loads(capsys.readouterr().out)["faces"]
    aligned = FaceDetector(min_face_size=20).prepare_crops(lfw_face(3, 48)[None])[0]
    expected = classifier.probabilities(aligned[None])[0]
    assert len(faces) == 1 and faces[0]["aligned"] is True
    assert np.allclose(list(faces[0]["probabilities"].values()), expected, atol=5e-5)
    assert main([str(path), "--model", str(model), "--no-detect", "--raw"]) == 0  # the whole crop, resized
    raw = json.loads(capsys.readouterr().out)["faces"]
    expected = classifier.probabilities(lfw_face(3, 48)[None])[0]
    assert raw[0]["box"] == [0, 0, 48, 48] and "aligned" not in raw[0]
    assert np.allclose(list(raw[0]["probabilities"].values()), expected, atol=5e-5)
    unaligned = tmp_path / "unaligned"
    shutil.copytree(model, unaligned)
    (unaligned / "alignment.json").write_text('{"template": null}')  # trained with preprocess --no-align
    assert main([str(path), "--model", str(unaligned), "--no-detect"]) == 0
    assert json.loads(capsys.readouterr().out)["faces"] == [{**raw[0], "aligned": False}]


def bad_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """name: (path, expected words of the error)."""
    text = tmp_path / "notes.png"
    text.write_text("this is not an image")
    truncated = tmp_path / "truncated.png"
    ok, png = cv2.imencode(".png", cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    truncated.write_bytes(png.tobytes()[:2000])
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    other = tmp_path / "data.xyz"
    other.write_text("x")
    return {
        "missing": (tmp_path / "nope.png", "no such file"),
        "text": (text, "not a readable image"),
        "truncated": (truncated, "not a readable image"),
        "empty": (empty, "empty file"),
        "extension": (other, "not an image or video"),
        "video": (text.with_suffix(".mp4"), "no such file"),
    }


@pytest.mark.parametrize("name", ["missing", "text", "truncated", "empty", "extension"])
def test_bad_input_is_one_clear_line_and_status_2(
    model: Path, tmp_path: Path, name: str, capsys: pytest.CaptureFixture
) -> None:
    path, words = bad_files(tmp_path)[name]
    assert main([str(path), "--model", str(model)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert str(path) in err and words in err


def test_a_corrupt_video_is_refused(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(500))
    assert main([str(path), "--model", str(model)]) == 2
    assert str(path) in capsys.readouterr().err


@pytest.mark.parametrize(
    "damage",
    [
        "no_folder",
        "no_weights",
        "corrupt_weights",
        "no_mean",
        "bad_labels",
        "no_alignment",
        "bad_template",
        "template_list",
        "unaligned",
    ],
)
def test_missing_or_corrupt_model_files(
    model: Path, photo: Path, tmp_path: Path, damage: str, capsys: pytest.CaptureFixture
) -> None:
    broken = tmp_path / "model"
    shutil.copytree(model, broken)
    if damage == "no_folder":
        shutil.rmtree(broken)
    elif damage == "no_weights":
        (broken / "random.caffemodel").unlink()
    elif damage == "corrupt_weights":
        (broken / "random.caffemodel").write_bytes(b"\x08garbage" * 10)
    elif damage == "no_mean":
        (broken / "mean.npy").unlink()
    elif damage == "no_alignment":
        (broken / "alignment.json").unlink()
    elif damage == "bad_template":
        (broken / "alignment.json").write_text('{"template": "square"}')
    elif damage == "template_list":
        (broken / "alignment.json").write_text('{"template": ["fer2013"]}')
    elif damage == "unaligned":
        (broken / "alignment.json").write_text('{"template": null}')
    else:
        (broken / "labels.json").write_text("{not json")
    assert main([str(photo), "--model", str(broken)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and str(broken) in err and "Traceback" not in err


def test_folder_mode_goes_on_past_bad_files(
    model: Path, photo: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(photo, folder / "a.png")
    cv2.imwrite(str(folder / "b.jpg"), lfw_face(1, 200))
    cv2.imwrite(str(folder / "sub" / "c.png"), data.coffee())
    (folder / "broken.png").write_bytes(b"nope")
    assert main([str(folder), "--model", str(model), "--out", str(tmp_path / "ann")]) == 2
    captured = capsys.readouterr()
    docs = [json.loads(line) for line in captured.out.splitlines()]
    assert [Path(d["file"]).name for d in docs] == ["a.png", "b.jpg"]
    assert "broken.png" in captured.err and "2 of 3 images done" in captured.err
    assert (tmp_path / "ann" / "a.png").exists()

    assert main([str(folder), "--model", str(model), "-r", "--format", "csv"]) == 2
    rows = capsys.readouterr().out.strip().splitlines()
    assert rows[0].startswith("file,face,track,x,y,width,height,label,probability,Angry")
    assert len(rows) == 1 + 3  # astronaut, the lfw face, and an empty row for the faceless coffee cup
    assert rows[-1].endswith("c.png" + "," * 15)


def test_video_mode_writes_an_annotated_video_and_json_lines(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    clip = tmp_path / "clip.avi"
    frame = cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), (320, 240))
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240))
    for shift in range(8):
        writer.write(np.roll(frame, 4 * shift, axis=1))
    writer.release()
    assert main([str(clip), "--model", str(model)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [d["frame"] for d in lines] == list(range(8))
    assert lines[3]["time_s"] == pytest.approx(0.3)
    assert all(len(d["faces"]) == 1 for d in lines)
    out = cv2.VideoCapture(str(tmp_path / "out" / "clip.avi"))  # the input's full name
    assert int(out.get(cv2.CAP_PROP_FRAME_COUNT)) == 8
