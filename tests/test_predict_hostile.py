"""python -m predict against hostile input: every kind of bad file, option, model folder and
output path gets one `error:` line and status 2 (or is handled and labelled), never a
traceback, and no input file changes by a single byte. Runs on the shipped model through
OpenCV: no Caffe needed."""

from __future__ import annotations

import json
import os
import shutil
import struct
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data

from ferlib.model_folder import model_members
from hostile import call, one_error_line, tree
from predict.__main__ import main
from predict.outputs import OUTPUT_MARK
from predict.recognizer import DEFAULT_MODEL
from reference_images import lfw_face

PHOTO = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header claims width x height pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(100))) + chunk(b"IEND", b"")
    )


def jpeg_with_orientation(image: np.ndarray, orientation: int) -> bytes:
    """A JPEG of image with an EXIF Orientation tag (6: the viewer turns it 90 degrees clockwise)."""
    ok, jpeg = cv2.imencode(".jpg", image)
    tiff = b"MM\x00*\x00\x00\x00\x08" + struct.pack(">HHHIHH", 1, 0x0112, 3, 1, orientation, 0) + b"\x00\x00\x00\x00"
    app1 = b"Exif\x00\x00" + tiff
    return jpeg.tobytes()[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + jpeg.tobytes()[2:]


def write_video(path: Path, frames: int, size: tuple[int, int] = (320, 240)) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, size)
    frame = cv2.resize(PHOTO, size)
    for shift in range(frames):
        writer.write(np.roll(frame, 4 * shift, axis=1))
    writer.release()


def damage_frames(path: Path, frames: tuple[int, ...]) -> None:
    """Overwrite the start of some MJPG frames so that they cannot be decoded."""
    raw = bytearray(path.read_bytes())
    starts = [i for i in range(len(raw) - 1) if raw[i] == 0xFF and raw[i + 1] == 0xD8]
    for k in frames:
        raw[starts[k] : starts[k] + 300] = bytes(300)
    path.write_bytes(bytes(raw))


@pytest.fixture(scope="module")
def member() -> Path:
    """One single-model folder of the shipped default model."""
    return model_members(DEFAULT_MODEL)[0][0]


def broken_model(member: Path, folder: Path, damage: Callable[[Path], None]) -> Path:
    model = folder / "model"
    shutil.copytree(member, model)
    damage(model)
    return model


def weights(model: Path) -> Path:
    return next(model.glob("*.caffemodel"))


Builder = Callable[[Path, Path, Path], list[str]]  # (inputs folder, scratch folder, member model) -> argv


def image(folder: Path, name: str | bytes = "photo.png", picture: np.ndarray = PHOTO) -> Path:
    path = Path(os.fsdecode(os.fsencode(folder) + b"/" + (name if isinstance(name, bytes) else name.encode())))
    path.write_bytes(cv2.imencode(Path(os.fsdecode(name)).suffix or ".png", picture)[1].tobytes())
    return path


def mixed_folder(folder: Path) -> Path:
    photos = folder / "photos"
    (photos / "sub").mkdir(parents=True)
    image(photos, "a.png")
    image(photos / "sub", "b.jpg")
    return photos


CASES: dict[str, tuple[int, str, Builder]] = {}


def case(name: str, status: int, words: str) -> Callable[[Builder], Builder]:
    """Register a hostile case: its builder makes the inputs and gives the argv; the run must
    end with status and one error line containing words."""

    def register(build: Builder) -> Builder:
        CASES[name] = (status, words, build)
        return build

    return register


@case("missing file", 2, "no such file")
def _(i: Path, s: Path, m: Path) -> list[str]:
    return [str(i / "nope.png")]


@case("empty file", 2, "empty file")
def _(i: Path, s: Path, m: Path) -> list[str]:
    return [str(_write(i / "e.jpg", b""))]


@case("text named .png", 2, "not a readable image")
def _(i: Path, s: Path, m: Path) -> list[str]:
    return [str(_write(i / "t.png", b"hello"))]


@case("truncated png", 2, "not a readable image")
def _(i: Path, s: Path, m: Path) -> list[str]:
    return [str(_write(i / "t.png", cv2.imencode(".png", PHOTO)[1].tobytes()[:3000]))]


@case("unknown extension", 2, "not an image or video")
def _(i: Path, s: Path, m: Path) -> list[str]:
    return [str(_write(i / "x.xyz", b"x"))]


@case("no extension", 2, "not an image or video")
def _(i: Path, s: Path, m: Path) -> list[str]:
    return [str(_write(i / "README", b"x"))]


@case("png claiming 100000x100000", 2, "too large")
def _(i: Path, s: Path, m: Path) -> list[str]:
    return [str(_write(i / "huge.png", png_claiming(100000, 100000)))]


@case("dangling link", 2, "dangling link")
def _(i: Path, s: Path, m: Path) -> list[str]:
    return [str(_link(i / "gone.png"))]


@case("named pipe", 2, "not a regular file")
def _(i: Path, s: Path, m: Path) -> list[str]:
    return [str(_fifo(i / "pipe.png"))]


@case("folder without images", 2, "no images")
def _(i: Path, s: Path, m: Path) -> list[str]:
    return [str(_mkdir(i / "empty"))]


@case("corrupt video", 2, "video")
def _(i: Path, s: Path, m: Path) -> list[str]:
    return [str(_write(i / "c.mp4", b"\x00\x00\x00\x18ftypmp42" + bytes(500)))]


@case("no-detect on a video", 2, "--no-detect")
def _(i: Path, s: Path, m: Path) -> list[str]:
    return [str(_video(i / "v.avi", 3)), "--no-detect"]


@case("--rescan 0", 2, "--rescan")
def _(i: Path, s: Path, m: Path) -> list[str]:
    return [str(_video(i / "v.avi", 3)), "--rescan", "0"]


@case("--min-face 0", 2, "--min-face")
def _(i: Path, s: Path, m: Path) -> list[str]:
    return [str(image(i)), "--min-face", "0"]


@case("--min-face -5", 2, "--min-face")
def _(i: Path, s: Path, m: Path) -> list[str]:
    return [str(image(i)), "--min-face", "-5"]


@case("--min-face 1", 2, "--min-face")
def _(i: Path, s: Path, m: Path) -> list[str]:
    return [str(image(i)), "--min-face", "1"]


@case("--min-face nan", 2, "--min-face")
def _(i: Path, s: Path, m: Path) -> list[str]:
    return [str(image(i)), "--min-face", "nan"]


@case("--min-face inf", 2, "--min-face")
def _(i: Path, s: Path, m: Path) -> list[str]:
    return [str(image(i)), "--min-face", "inf"]


@case("--top-k -1", 2, "--top-k")
def _(i: Path, s: Path, m: Path) -> list[str]:
    return [str(image(i)), "--top-k", "-1"]


@case("--top-k 0", 2, "--top-k")
def _(i: Path, s: Path, m: Path) -> list[str]:
    return [str(image(i)), "--top-k", "0"]


@case("--top-k 1.5", 2, "--top-k")
def _(i: Path, s: Path, m: Path) -> list[str]:
    return [str(image(i)), "--top-k", "1.5"]


@case("--threshold 2", 2, "--threshold")
def _(i: Path, s: Path, m: Path) -> list[str]:
    return [str(image(i)), "--threshold", "2"]


@case("--threshold nan", 2, "--threshold")
def _(i: Path, s: Path, m: Path) -> list[str]:
    return [str(image(i)), "--threshold", "nan"]


@case("--tta twelve", 2, "--tta")
def _(i: Path, s: Path, m: Path) -> list[str]:
    return [str(image(i)), "--tta", "twelve"]


@case("--backend tensorflow", 2, "--backend")
def _(i: Path, s: Path, m: Path) -> list[str]:
    return [str(image(i)), "--backend", "tensorflow"]


@case("unknown option", 2, "--colour")
def _(i: Path, s: Path, m: Path) -> list[str]:
    return [str(image(i)), "--colour"]


@case("--out is the input image", 2, "the input itself")
def _(i: Path, s: Path, m: Path) -> list[str]:
    p = image(i)
    return [str(p), "--out", str(p)]


@case("--out is the input folder", 2, "the input folder")
def _(i: Path, s: Path, m: Path) -> list[str]:
    f = mixed_folder(i)
    return [str(f), "--out", str(f)]


@case("--out contains the input folder", 2, "contains the input folder")
def _(i: Path, s: Path, m: Path) -> list[str]:
    f = mixed_folder(i)
    return [str(f), "--out", str(i)]


@case("-r --out inside the input tree", 2, "inside the input folder")
def _(i: Path, s: Path, m: Path) -> list[str]:
    f = mixed_folder(i)
    return [str(f), "-r", "--out", str(f / "sub")]


@case("--out a folder of someone's files", 2, "did not write")
def _(i: Path, s: Path, m: Path) -> list[str]:
    return [str(mixed_folder(i)), "--out", str(_write(s / "mine" / "keep.txt", b"mine").parent)]


@case("folder mode --out is a file", 2, "a file")
def _(i: Path, s: Path, m: Path) -> list[str]:
    return [str(mixed_folder(i)), "--out", str(_write(s / "x.png", b"x"))]


@case("--out with an unknown extension", 2, "--out")
def _(i: Path, s: Path, m: Path) -> list[str]:
    return [str(image(i)), "--out", str(s / "a.xyz")]


@case("--out without an extension", 2, "--out")
def _(i: Path, s: Path, m: Path) -> list[str]:
    return [str(image(i)), "--out", str(s / "annotated")]


@case("--out in a missing folder", 2, "no such folder")
def _(i: Path, s: Path, m: Path) -> list[str]:
    return [str(image(i)), "--out", str(s / "no" / "a.png")]


@case("--out under a file", 2, "--out")
def _(i: Path, s: Path, m: Path) -> list[str]:
    return [str(image(i)), "--out", str(_write(s / "f", b"x") / "a.png")]


@case("video --out with an image extension", 2, "--out")
def _(i: Path, s: Path, m: Path) -> list[str]:
    return [str(_video(i / "v.avi", 2)), "--out", str(s / "a.png")]


@case("model: no folder", 2, "no such model folder")
def _(i: Path, s: Path, m: Path) -> list[str]:
    return [str(image(i)), "--model", str(s / "none")]


@case("model: binary deploy", 2, "deploy.prototxt")
def _(i: Path, s: Path, m: Path) -> list[str]:
    return [
        str(image(i)),
        "--model",
        str(broken_model(m, s, lambda d: _write(d / "deploy.prototxt", bytes(range(256))))),
    ]


@case("model: corrupt deploy", 2, "model")
def _(i: Path, s: Path, m: Path) -> list[str]:
    return [
        str(image(i)),
        "--model",
        str(broken_model(m, s, lambda d: _write(d / "deploy.prototxt", b'layer { name: "x" type: '))),
    ]


@case("model: empty weights", 2, "caffemodel")
def _(i: Path, s: Path, m: Path) -> list[str]:
    return [str(image(i)), "--model", str(broken_model(m, s, lambda d: _write(weights(d), b"")))]


@case("model: garbage weights", 2, "caffemodel")
def _(i: Path, s: Path, m: Path) -> list[str]:
    return [str(image(i)), "--model", str(broken_model(m, s, lambda d: _write(weights(d), b"\x08garbage" * 50)))]


@case("model: two caffemodels", 2, "2 .caffemodel files")
def _(i: Path, s: Path, m: Path) -> list[str]:
    return [str(image(i)), "--model", str(broken_model(m, s, lambda d: shutil.copy(weights(d), d / "copy.caffemodel")))]


@case("model: wrong mean shape", 2, "mean.npy")
def _(i: Path, s: Path, m: Path) -> list[str]:
    return [
        str(image(i)),
        "--model",
        str(broken_model(m, s, lambda d: np.save(d / "mean.npy", np.zeros((3, 10, 10), np.float32)))),
    ]


@case("model: mean not an array", 2, "mean.npy")
def _(i: Path, s: Path, m: Path) -> list[str]:
    return [str(image(i)), "--model", str(broken_model(m, s, lambda d: _write(d / "mean.npy", b"not numpy")))]


@case("model: 6 labels for 7 outputs", 2, "7 outputs but 6 labels")
def _(i: Path, s: Path, m: Path) -> list[str]:
    return [
        str(image(i)),
        "--model",
        str(broken_model(m, s, lambda d: _write(d / "labels.json", json.dumps(list("abcdef")).encode()))),
    ]


@case("model: 8 labels for 7 outputs", 2, "7 outputs but 8 labels")
def _(i: Path, s: Path, m: Path) -> list[str]:
    return [
        str(image(i)),
        "--model",
        str(broken_model(m, s, lambda d: _write(d / "labels.json", json.dumps(list("abcdefgh")).encode()))),
    ]


@case("model: labels a dict", 2, "labels.json")
def _(i: Path, s: Path, m: Path) -> list[str]:
    return [str(image(i)), "--model", str(broken_model(m, s, lambda d: _write(d / "labels.json", b'{"a": 1}')))]


@case("model: labels numbers", 2, "labels.json")
def _(i: Path, s: Path, m: Path) -> list[str]:
    return [
        str(image(i)),
        "--model",
        str(broken_model(m, s, lambda d: _write(d / "labels.json", b"[1, 2, 3, 4, 5, 6, 7]"))),
    ]


@case("model: labels a string", 2, "labels.json")
def _(i: Path, s: Path, m: Path) -> list[str]:
    return [str(image(i)), "--model", str(broken_model(m, s, lambda d: _write(d / "labels.json", b'"Angry"')))]


@case("model: labels not json", 2, "labels.json")
def _(i: Path, s: Path, m: Path) -> list[str]:
    return [str(image(i)), "--model", str(broken_model(m, s, lambda d: _write(d / "labels.json", b"{nope")))]


@case("model: ensemble.json not json", 2, "ensemble.json")
def _(i: Path, s: Path, m: Path) -> list[str]:
    return [str(image(i)), "--model", str(_write(s / "ens" / "ensemble.json", b"{").parent)]


def _write(path: Path, content: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def _link(path: Path) -> Path:
    path.symlink_to(path.with_name("nowhere.png"))
    return path


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _mkdir(path: Path) -> Path:
    path.mkdir()
    (path / "notes.txt").write_text("no images here")
    return path


def _video(path: Path, frames: int) -> Path:
    write_video(path, frames)
    return path


def test_the_suite_has_forty_kinds() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize("name", CASES)
def test_hostile_input(name: str, member: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    inputs, scratch = tmp_path / "in", tmp_path / "scratch"
    inputs.mkdir()
    scratch.mkdir()
    status, words, build = CASES[name]
    argv = build(inputs, scratch, member)
    before, scratch_before = tree(inputs), tree(scratch)
    assert call(main, argv) == status
    line = one_error_line(capsys.readouterr().err)
    assert words in line
    assert tree(inputs) == before  # nothing read was changed, nothing new appeared among the inputs
    assert tree(scratch) == scratch_before  # a refused run writes nothing anywhere


def run_ok(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[str, str]:
    assert call(main, argv) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return captured.out, captured.err


def test_names_that_are_not_utf8_are_read_and_written(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    path = image(folder, b"caf\xe9.png")  # latin-1, not UTF-8: OpenCV alone would crash on it
    image(folder, "plain.png")
    before = tree(folder)
    out, _ = run_ok([str(path)], capsys)
    assert json.loads(out)["faces"][0]["label"]
    assert (folder / "out" / path.name).is_file()
    out, _ = run_ok([str(folder), "--out", str(tmp_path / "ann")], capsys)
    assert len(out.splitlines()) == 2
    assert (tmp_path / "ann" / path.name).is_file()
    assert all(tree(folder)[key] == value for key, value in before.items())
    clip = Path(os.fsdecode(os.fsencode(folder) + b"/clip\xe9.avi"))
    write_video(tmp_path / "clip.avi", 2)
    (tmp_path / "clip.avi").rename(clip)
    out, _ = run_ok([str(clip)], capsys)
    assert len(out.splitlines()) == 2 and (folder / "out" / clip.name).stat().st_size > 1000


def test_annotated_copies_keep_the_full_name_and_format(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("x.jpg", "x.JPG", "x.png", "x.tif", "x.webp", "x.pgm"):
        image(folder, name, cv2.cvtColor(PHOTO, cv2.COLOR_BGR2GRAY) if name.endswith(".pgm") else PHOTO)
    out, _ = run_ok([str(folder), "--out", str(tmp_path / "ann")], capsys)
    docs = [json.loads(line) for line in out.splitlines()]
    written = sorted(Path(doc["annotated"]).name for doc in docs)
    assert written == ["x.JPG", "x.jpg", "x.pgm.png", "x.png", "x.tif", "x.webp"]
    assert cv2.imread(str(tmp_path / "ann" / "x.jpg")).shape == PHOTO.shape
    assert (tmp_path / "ann" / "x.jpg").read_bytes()[:2] == b"\xff\xd8"  # JPEG in, JPEG out


def test_recursive_runs_skip_the_tools_own_output_folders(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    photo = image(folder, "a.png")
    run_ok([str(photo)], capsys)  # writes in/out/a.png, a dedicated output folder
    assert (folder / "out" / OUTPUT_MARK).exists()
    out, _ = run_ok([str(folder), "-r"], capsys)
    assert [Path(json.loads(line)["file"]).name for line in out.splitlines()] == ["a.png"]
    out, _ = run_ok([str(folder), "-r", "--out", str(folder / "annotated")], capsys)  # new: dedicated
    out, _ = run_ok([str(folder), "-r", "--out", str(folder / "annotated")], capsys)  # and again
    assert [Path(json.loads(line)["file"]).name for line in out.splitlines()] == ["a.png"]


def test_odd_images_are_labelled_or_found_faceless(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    image(folder, "strip.png", np.zeros((1, 4000, 3), np.uint8))  # downscaled for detection to 1 px high
    image(folder, "dot.png", np.zeros((1, 1), np.uint8))
    image(folder, "tall.png", np.zeros((3000, 2, 3), np.uint8))
    out, err = run_ok([str(folder)], capsys)
    assert [json.loads(line)["faces"] for line in out.splitlines()] == [[], [], []]


def test_one_bad_file_fails_alone_and_is_listed(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    image(folder, "a.png")
    _write(folder / "huge.png", png_claiming(100000, 100000))
    _link(folder / "gone.jpg")
    _fifo(folder / "pipe.png")
    before = tree(folder)
    assert call(main, [str(folder)]) == 2
    captured = capsys.readouterr()
    assert [Path(json.loads(line)["file"]).name for line in captured.out.splitlines()] == ["a.png"]
    assert "Traceback" not in captured.err
    for name in ("huge.png", "gone.jpg", "pipe.png"):
        assert f"failed: {folder / name}" in captured.err
    assert "1 of 4 images done" in captured.err
    assert tree(folder) == before


def test_exif_orientation_is_applied(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    sideways = cv2.rotate(PHOTO, cv2.ROTATE_90_COUNTERCLOCKWISE)  # as a phone stores a portrait photo
    path = _write(tmp_path / "portrait.jpg", jpeg_with_orientation(sideways, 6))
    out, _ = run_ok([str(path)], capsys)
    doc = json.loads(out)
    assert len(doc["faces"]) == 1 and doc["faces"][0]["label"] == "Happy"
    annotated = cv2.imread(doc["annotated"], cv2.IMREAD_IGNORE_ORIENTATION | cv2.IMREAD_COLOR)
    assert annotated.shape == PHOTO.shape  # written upright


def test_videos_skip_frames_they_cannot_decode(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    clip = tmp_path / "clip.avi"
    write_video(clip, 12)
    damage_frames(clip, (4, 7, 8))
    out, err = run_ok([str(clip), "--out", str(tmp_path / "ann.mp4")], capsys)
    frames = [json.loads(line)["frame"] for line in out.splitlines()]
    assert frames == [0, 1, 2, 3, 5, 6, 9, 10, 11]
    assert "3 undecodable frames skipped" in err
    assert int(cv2.VideoCapture(str(tmp_path / "ann.mp4")).get(cv2.CAP_PROP_FRAME_COUNT)) == 9


def test_a_one_frame_video_works(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    clip = tmp_path / "one.avi"
    write_video(clip, 1)
    out, err = run_ok([str(clip), "--format", "csv"], capsys)
    rows = out.strip().splitlines()
    assert rows[0].startswith("frame,time_s,face,track,x,y,width,height,label,probability,Angry")
    assert len(rows) == 2 and rows[1].startswith("0,0.0,0,1,")
    assert int(cv2.VideoCapture(str(tmp_path / "out" / "one.avi")).get(cv2.CAP_PROP_FRAME_COUNT)) == 1


def test_csv_for_a_single_image_and_no_detect_boxes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    crop = image(tmp_path, "crop.png", lfw_face(3, 48))
    out, _ = run_ok([str(crop), "--no-detect", "--raw", "--format", "csv"], capsys)
    rows = out.strip().splitlines()
    assert len(rows) == 2 and rows[1].startswith(f"{crop},0,,0,0,48,48,")  # the whole crop
    out, _ = run_ok([str(crop), "--no-detect", "--format", "csv"], capsys)
    assert out.strip().splitlines()[1].startswith(f"{crop},0,,2.8,-1.2,35.1,47.6,")  # the face aligned
    assert not (tmp_path / "out").exists()  # --no-detect without --out draws nothing


def test_without_pycaffe_the_caffe_backend_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "caffe", None)  # as if Caffe had never been built
    assert call(main, [str(image(tmp_path)), "--backend", "caffe"]) == 2
    assert "make install" in one_error_line(capsys.readouterr().err)


def test_a_folder_of_crops_is_classified_in_batches(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from predict import Recognizer

    folder = tmp_path / "crops"
    folder.mkdir()
    crops = {f"{i:03d}.png": np.roll(lfw_face(i % 200, 48), i // 200, axis=1) for i in range(300)}  # > 256
    for name, crop in crops.items():
        image(folder, name, crop)
    _write(folder / "broken.png", b"nope")
    assert call(main, [str(folder), "--no-detect"]) == 2  # one file failed, the others are labelled
    captured = capsys.readouterr()
    docs = {Path(json.loads(line)["file"]).name: json.loads(line) for line in captured.out.splitlines()}
    assert len(docs) == 300 and "failed: " in captured.err and "broken.png" in captured.err
    one_by_one = Recognizer(detect=False)
    for name in ("000.png", "299.png"):
        assert docs[name]["faces"] == one_by_one.predict(crops[name])
