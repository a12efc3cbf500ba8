"""make serve: every endpoint of the web page's server, good and bad uploads (wrong type,
oversized, truncated, empty, malformed, concurrent), the server still working after each and
writing nothing outside its output folder; the page itself is tested in a real browser in
test_serve_browser.py."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from skimage import data
from test_video import two_faces_clip

from hostile import call, one_error_line
from predict.recognizer import Recognizer
from predict.serve import Limits, Service, create_app, main

PHOTO = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


@pytest.fixture(scope="module")
def recognizer() -> Recognizer:
    return Recognizer()


def served(folder: Path, recognizer: Recognizer, limits: Limits | None = None) -> tuple[TestClient, Path]:
    out = folder / "out"
    service = Service(lambda: recognizer, out, limits or Limits())
    return TestClient(create_app(service)), out


@pytest.fixture
def client(tmp_path: Path, recognizer: Recognizer) -> tuple[TestClient, Path]:
    return served(tmp_path, recognizer)


def png(image: np.ndarray = PHOTO) -> bytes:
    return cv2.imencode(".png", image)[1].tobytes()


def written(out: Path) -> set[str]:
    return {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}


def test_the_page_and_its_scripts_are_served_locally(client: tuple[TestClient, Path]) -> None:
    http, _ = client
    page = http.get("/")
    assert page.status_code == 200 and "<title>fer-caffe" in page.text
    for asset in ("/static/app.js", "/static/style.css"):
        assert http.get(asset).status_code == 200
    assert "http://" not in page.text and "https://" not in page.text  # nothing fetched from elsewhere
    info = http.get("/api/info").json()
    assert info["classes"][3] == "Happy" and info["model"]["name"] == "fer2013_default"


def test_a_photo_gets_its_faces_and_an_annotated_picture(client: tuple[TestClient, Path]) -> None:
    http, out = client
    reply = http.post("/api/photo", files={"file": ("astronaut.png", png(), "image/png")})
    assert reply.status_code == 200, reply.text
    doc = reply.json()
    assert doc["schema"] == "fer-caffe/1" and doc["image"] == "astronaut.png"
    assert [face["label"] for face in doc["faces"]] == ["Happy"]
    picture = http.get(doc["annotated"])
    assert picture.status_code == 200
    annotated = cv2.imdecode(np.frombuffer(picture.content, np.uint8), cv2.IMREAD_COLOR)
    assert annotated.shape == PHOTO.shape and not np.array_equal(annotated, PHOTO)
    assert not list((out / "uploads").iterdir()), "the upload is deleted once read"


BAD_UPLOADS = [
    # (endpoint, file name, content, status, words in the one-line error)
    ("/api/photo", "notes.txt", b"hello", 415, "notes.txt: expected one of .bmp"),
    ("/api/photo", "fake.jpg", b"not a jpeg at all", 415, "fake.jpg: not a readable image"),
    ("/api/photo", "cut.png", None, 415, "cut.png: not a readable image"),
    ("/api/photo", "empty.png", b"", 400, "empty.png: empty file"),
    ("/api/photo", "large.png", b"x" * 30_000, 413, "limit"),
    ("/api/video", "clip.exe", b"MZ", 415, "clip.exe: expected one of .avi"),
    ("/api/video", "clip.mp4", b"\x00" * 2000, 415, "clip.mp4: not a readable video"),
    ("/api/video", "big.mp4", b"\x00" * 6000, 413, "limit"),
]


@pytest.mark.parametrize(("endpoint", "name", "content", "status", "words"), BAD_UPLOADS)
def test_bad_uploads_are_refused_with_one_line_and_the_server_goes_on(
    tmp_path: Path, recognizer: Recognizer, endpoint: str, name: str, content: bytes | None, status: int, words: str
) -> None:
    http, out = served(tmp_path, recognizer, Limits(image=20_000, video=5000))
    small = cv2.resize(PHOTO, (48, 48))
    content = png(small)[:200] if content is None else content
    before = set(tmp_path.iterdir())
    reply = http.post(endpoint, files={"file": (name, content, "application/octet-stream")})
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert words in error and "\n" not in error and "Traceback" not in error
    assert written(out) == set(), "nothing written, the upload deleted"
    assert set(tmp_path.iterdir()) == before
    assert http.post("/api/photo", files={"file": ("ok.png", png(small), "image/png")}).status_code == 200


def test_malformed_requests_get_one_line(client: tuple[TestClient, Path]) -> None:
    http, _ = client
    cases = [
        (http.post("/api/photo", data={"other": "x"}), 400, "expected a multipart form with the file in a field named"),
        (http.post("/api/frame", content=png()), 400, "expected ?session=ID"),
        (http.post("/api/frame?session=../x", content=png()), 400, "session: expected letters and digits"),
        (http.post("/api/frame?session=s1", content=b"junk"), 415, "frame: expected a JPEG or PNG image"),
        (http.get("/api/jobs/nope"), 404, "no video job 'nope'"),
        (http.post("/api/sessions/nope/save"), 404, "no camera session 'nope'"),
        (http.get("/files/../README.md"), 404, "Not Found"),
        (http.get("/files/%2e%2e/%2e%2e/README.md"), 404, "Not Found"),
    ]
    for reply, status, words in cases:
        assert reply.status_code == status, reply.text
        assert words in reply.json()["error"]


def test_a_declared_oversized_body_is_refused_before_it_is_read(tmp_path: Path, recognizer: Recognizer) -> None:
    http, _ = served(tmp_path, recognizer, Limits(image=1 << 20))
    headers = {"content-length": str(50 << 20), "content-type": "multipart/form-data; boundary=x"}
    reply = http.post("/api/photo", content=b"--x--", headers=headers)
    assert reply.status_code == 413 and "limit of 1 MB" in reply.json()["error"]


def test_concurrent_requests_all_get_their_answers(client: tuple[TestClient, Path]) -> None:
    http, _ = client
    results: list[tuple[int, list[str]]] = []

    def photo() -> None:
        reply = http.post("/api/photo", files={"file": ("a.png", png(), "image/png")})
        results.append((reply.status_code, [f["label"] for f in reply.json().get("faces", [])]))

    def frames(session: str) -> None:
        for _ in range(3):
            reply = http.post(f"/api/frame?session={session}", content=png())
            results.append((reply.status_code, [f["label"] for f in reply.json().get("faces", [])]))

    threads = [threading.Thread(target=photo) for _ in range(4)]
    threads += [threading.Thread(target=frames, args=(f"s{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [(200, ["Happy"])] * 10


def test_a_video_is_labelled_in_the_background_with_a_summary(tmp_path: Path, client: tuple[TestClient, Path]) -> None:
    http, out = client
    clip = two_faces_clip(tmp_path / "two.avi")
    started = http.post("/api/video", files={"file": ("two.avi", clip.read_bytes(), "video/x-msvideo")})
    assert started.status_code == 200, started.text
    deadline = time.time() + 120
    while (job := http.get(started.json()["url"]).json())["state"] in ("queued", "running"):
        assert time.time() < deadline
        time.sleep(0.2)
    assert job["state"] == "done", job["error"]
    assert job["frames"] == job["total"] == 12
    assert [t["dominant"] for t in job["summary"]["tracks"]] == ["Happy", "Happy"]
    assert job["summary"]["source"] == "two.avi"
    video = out / job["files"]["video"].removeprefix("/files/")
    capture = cv2.VideoCapture(str(video))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 12 and capture.read()[0]
    capture.release()
    for key in ("json", "csv", "timeline"):
        assert http.get(job["files"][key]).status_code == 200
    assert not list((out / "uploads").iterdir())


def test_only_the_newest_finished_video_jobs_are_kept(
    tmp_path: Path, recognizer: Recognizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from predict import serve

    service = Service(lambda: recognizer, tmp_path / "out")
    http = TestClient(create_app(service))
    monkeypatch.setattr(serve, "MAX_FINISHED_JOBS", 2)
    monkeypatch.setattr(service.worker, "submit", lambda *args: None)  # the jobs stay queued
    clip = two_faces_clip(tmp_path / "two.avi").read_bytes()
    ids = [http.post("/api/video", files={"file": ("two.avi", clip)}).json()["job"] for _ in range(3)]
    service.jobs[ids[0]].state, service.jobs[ids[1]].state = "done", "failed"
    newest = http.post("/api/video", files={"file": ("two.avi", clip)}).json()["job"]
    assert http.get(f"/api/jobs/{ids[0]}").status_code == 404  # the oldest finished one went
    assert [http.get(f"/api/jobs/{i}").status_code for i in (*ids[1:], newest)] == [200, 200, 200]


def test_a_camera_session_keeps_track_ids_and_saves_its_summary(
    client: tuple[TestClient, Path], recognizer: Recognizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    http, out = client
    searched = []
    faces = recognizer.faces
    monkeypatch.setattr(recognizer, "faces", lambda image, near=None: searched.append(near) or faces(image, near))
    frames = [np.roll(PHOTO, shift, axis=1) for shift in (0, 4, 8)]
    replies = [http.post("/api/frame?session=cam1", content=png(frame)).json() for frame in frames]
    assert [[f["track"] for f in r["faces"]] for r in replies] == [[1], [1], [1]]
    assert searched == [None, [replies[0]["faces"][0]["box"]], [replies[1]["faces"][0]["box"]]]  # then near them
    assert [r["frame"] for r in replies] == [0, 1, 2]
    assert replies[-1]["faces"][0]["frame_probabilities"]  # smoothed, with this frame's own kept
    saved = http.post("/api/sessions/cam1/save").json()
    assert saved["summary"]["frames"] == 3 and saved["summary"]["tracks"][0]["dominant"] == "Happy"
    csv_text = http.get(saved["files"]["csv"]).text
    assert csv_text.splitlines()[0].startswith("track,first_s,last_s,frames,dominant,Angry")
    assert {Path(p).parent.name for p in written(out)} == {"sessions"}


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--port", "70000"], "argument --port"),
        (["--max-video-mb", "0"], "argument --max-video-mb"),
        (["--out", "FILE"], "--out"),
        (["--model", "MISSING"], "MISSING"),
    ],
)
def test_bad_options_get_one_line(tmp_path: Path, capsys: pytest.CaptureFixture, argv: list[str], words: str) -> None:
    (tmp_path / "FILE").write_text("a file, not a folder")
    argv = [str(tmp_path / a) if a in ("FILE", "MISSING") else a for a in argv]
    assert call(main, argv) == 2
    assert words in one_error_line(capsys.readouterr().err)
