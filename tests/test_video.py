"""Video as people use it: stable track ids, smoothed probabilities, --every, a summary (JSON,
CSV, timeline plot) beside the annotated video, the same tracks from Python (predict.track),
and stream input (a video served over HTTP as a camera or an IP stream would be); Ctrl-C
ends a stream cleanly with its summary."""

from __future__ import annotations

import csv
import functools
import http.server
import json
import signal
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data

from hostile import call, command, one_error_line
from predict import InputError, Recognizer, track
from predict.__main__ import main
from predict.tracking import Tracker, iou
from predict.video import tracked_frames

PHOTO = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def two_faces_clip(path: Path, frames: int = 12) -> Path:
    """Two astronauts side by side, moving apart: two tracks that must keep their ids."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 320))
    face = cv2.resize(PHOTO, (256, 256))
    for i in range(frames):
        frame = np.full((320, 640, 3), 100, np.uint8)
        frame[30:286, 20 + i : 276 + i] = face
        frame[30:286, 360 - i : 616 - i] = cv2.flip(face, 1)
        writer.write(frame)
    writer.release()
    return path


def test_tracks_follow_boxes_and_smooth_probabilities() -> None:
    labels = ("a", "b")
    tracker = Tracker(labels, smoothing=0.5)
    face = lambda x, pa: {"box": [x, 0, 10, 10], "probabilities": {"a": pa, "b": 1 - pa}, "top_k": [["a", pa]]}  # noqa: E731
    first = tracker.update(0, 0.0, [face(0, 1.0), face(50, 0.0)])
    second = tracker.update(1, 0.1, [face(52, 0.0), face(1, 0.0)])  # the order swapped, the boxes moved
    assert [f["track"] for f in first] == [1, 2] and [f["track"] for f in second] == [2, 1]
    assert second[1]["probabilities"] == {"a": 0.5, "b": 0.5}  # halfway from 1.0 towards this frame's 0.0
    assert second[1]["frame_probabilities"] == {"a": 0.0, "b": 1.0}
    assert tracker.update(30, 3.0, [face(0, 1.0)])[0]["track"] == 3  # gone too long: a new track
    assert iou([0, 0, 10, 10], [5, 0, 10, 10]) == pytest.approx(1 / 3)


def test_a_video_gets_tracks_and_a_summary(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    clip = two_faces_clip(tmp_path / "two.avi")
    assert call(main, [str(clip), "--out", str(tmp_path / "ann.mp4")]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    tracks = [[face["track"] for face in sorted(doc["faces"], key=lambda f: f["box"][0])] for doc in lines]
    assert sorted(tracks[0]) == [1, 2] and tracks == [tracks[0]] * 12  # each face keeps its id
    summary = json.loads((tmp_path / "ann.mp4.summary.json").read_text())
    assert summary["frames"] == 12 and [t["frames"] for t in summary["tracks"]] == [12, 12]
    assert all(t["dominant"] == "Happy" and t["shares"]["Happy"] > 0.5 for t in summary["tracks"])
    rows = list(csv.DictReader((tmp_path / "ann.mp4.summary.csv").open()))
    assert [r["track"] for r in rows] == ["1", "2"] and rows[0]["dominant"] == "Happy"
    assert cv2.imread(str(tmp_path / "ann.mp4.timeline.png")).shape[0] > 100


def test_every_nth_frame_and_no_smoothing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    clip = two_faces_clip(tmp_path / "two.avi", 6)
    assert call(main, [str(clip), "--every", "3", "--smooth", "0", "--out", str(tmp_path / "a.mp4")]) == 0
    docs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert docs[1]["faces"] == docs[0]["faces"] and docs[4]["faces"] == docs[3]["faces"]  # carried over
    assert "frame_probabilities" not in docs[0]["faces"][0]
    assert json.loads((tmp_path / "a.mp4.summary.json").read_text())["tracks"][0]["frames"] == 2


class Scripted:
    """A recognizer whose frames hold one face except those listed, and which records what
    each call of faces() was asked to search: None (the whole frame) or the boxes near."""

    model = {"name": "scripted"}
    labels = ("a", "b")

    def __init__(self, empty: set[int]):
        self.empty, self.calls = empty, []

    def faces(self, frame: np.ndarray, near: list[list[float]] | None = None) -> list[dict]:
        index = int(frame[0, 0, 0])
        self.calls.append(near)
        if index in self.empty:
            return []
        return [{"box": [index, 0.0, 10.0, 10.0], "probabilities": {"a": 1.0, "b": 0.0}, "top_k": [["a", 1.0]]}]


class Frames:
    """A video of n 4x4 frames, each filled with its index."""

    live, fps, size = False, 10.0, (4, 4)

    def __init__(self, n: int):
        self.n = n

    def frames(self):
        return ((i, np.full((4, 4, 3), i, np.uint8)) for i in range(self.n))


def test_the_whole_frame_is_searched_every_rescan_th_labelled_frame_and_after_one_without_faces() -> None:
    recognizer = Scripted(empty={4})
    docs = [doc for _, doc in tracked_frames(recognizer, Frames(10), Tracker(recognizer.labels), rescan=3)]
    whole = [near is None for near in recognizer.calls]
    assert whole == [True, False, False, True, False, True, True, False, False, True]  # 0, 3, 5 (after 4), 6, 9
    assert recognizer.calls[1] == [[0.0, 0.0, 10.0, 10.0]]  # near the face of the frame before
    assert [len(doc["faces"]) for doc in docs] == [1] * 4 + [0] + [1] * 5
    recognizer = Scripted(empty=set())
    list(tracked_frames(recognizer, Frames(8), Tracker(recognizer.labels), every=2, rescan=2))
    assert [near is None for near in recognizer.calls] == [True, False, True, False]  # counted in labelled frames


def test_searching_near_the_tracked_faces_labels_as_searching_whole_frames(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    clip = two_faces_clip(tmp_path / "two.avi")
    runs = []
    for rescan in ("1", "12"):
        assert call(main, [str(clip), "--rescan", rescan, "--smooth", "0", "--out", str(tmp_path / "a.mp4")]) == 0
        docs = [json.loads(line)["faces"] for line in capsys.readouterr().out.splitlines()]
        runs.append([sorted(faces, key=lambda f: f["track"]) for faces in docs])
    assert len(runs[1]) == 12
    for whole, near in zip(*runs):
        assert [f["track"] for f in near] == [f["track"] for f in whole] == [1, 2]
        for a, b in zip(whole, near):
            moved = np.subtract(list(a["landmarks"].values()), list(b["landmarks"].values()))
            assert np.abs(moved).max() < 2 and iou(a["box"], b["box"]) > 0.8  # boxes differ more than landmarks
            assert a["label"] == b["label"] and abs(a["probability"] - b["probability"]) < 0.05


def test_the_python_api_tracks_as_the_cli_does(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    clip = two_faces_clip(tmp_path / "two.avi", 6)
    assert call(main, [str(clip), "--every", "2", "--out", str(tmp_path / "a.mp4")]) == 0
    cli = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    monkeypatch.chdir(tmp_path)
    before = sorted(tmp_path.iterdir())
    frames = track(clip, Recognizer(), every=2)
    assert json.loads(json.dumps(list(frames))) == cli  # tracks, smoothing and carried frames alike
    assert sorted(tmp_path.iterdir()) == before  # it writes nothing
    first = next(track(str(clip), smooth=0))  # a str path and the default model; one frame is enough
    assert sorted(f["track"] for f in first["faces"]) == [1, 2] and "frame_probabilities" not in first["faces"][0]
    with pytest.raises(ValueError, match="every"):
        track(clip, every=0)
    with pytest.raises(ValueError, match="rescan"):
        track(clip, rescan=0)
    with pytest.raises(ValueError, match="smooth"):
        track(clip, smooth=1.5)
    with pytest.raises(InputError, match="nothing.avi"):
        next(track(tmp_path / "nothing.avi"))


@pytest.fixture
def served(tmp_path: Path) -> str:
    """A folder served over HTTP on loopback; yields its base URL."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_stream_url_is_read_like_a_video(tmp_path: Path, served: str, capsys: pytest.CaptureFixture) -> None:
    two_faces_clip(tmp_path / "live.avi")
    out = tmp_path / "recorded"
    out.mkdir()
    assert call(main, [f"{served}/live.avi", "--out", str(out)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 12
    assert (out / "live.mp4").is_file() and (out / "live.mp4.summary.json").is_file()


def test_ctrl_c_ends_a_stream_with_its_summary(tmp_path: Path, served: str) -> None:
    two_faces_clip(tmp_path / "long.avi", 200)
    process = command("predict", f"{served}/long.avi", "--out", str(tmp_path / "rec.mp4"))
    assert process.stdout.readline()
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err.decode()
    assert "stopped with Ctrl-C" in err.decode() and "Traceback" not in err.decode()
    summary = json.loads((tmp_path / "rec.mp4.summary.json").read_text())
    assert 0 < summary["frames"] < 200
    assert int(cv2.VideoCapture(str(tmp_path / "rec.mp4")).get(cv2.CAP_PROP_FRAME_COUNT)) == summary["frames"]


def test_a_camera_that_does_not_exist(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert call(main, ["--camera", "42", "--out", str(tmp_path / "c.mp4")]) == 2
    assert "camera 42" in one_error_line(capsys.readouterr().err)
    assert call(main, []) == 2 and "--camera" in one_error_line(capsys.readouterr().err)
