"""python -m predict.serve (make serve): a local web page that labels a photo, a video or the
browser's camera with the same Recognizer as the command line.

The server binds to 127.0.0.1 unless --host says otherwise, serves its page and scripts
itself (nothing is fetched from the internet), accepts only images and videos up to a size,
and writes only into its own output folder: annotated photos, annotated videos with their
summaries, and saved camera sessions. Uploads get names of the server's making and are
deleted once read.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import uvicorn
from fastapi import FastAPI, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from ferlib import atomic, cli, cvio
from ferlib.model_folder import ModelError
from ferlib.nets import NetError
from predict.drawing import annotate
from predict.media import IMAGE_SUFFIXES, VIDEO_SUFFIXES, InputError, Video, read_image
from predict.outputs import UsageError, claim_folder
from predict.recognizer import DEFAULT_MODEL, DEFAULT_MODEL_HELP, SCHEMA, Recognizer
from predict.summary import summarise, write_summary
from predict.tracking import MAX_SMOOTHING, Tracker
from predict.video import label_video, near_boxes

STATIC = Path(__file__).parent / "static"
MAX_SESSIONS = 16  # camera sessions kept in memory; the least recently used goes first
MAX_FINISHED_JOBS = 64  # finished video jobs kept in memory (their files stay in --out); the oldest go first
MAX_PIXELS = 50_000_000  # larger images are refused before they are decoded
CHUNK = 1 << 20
MULTIPART_SLACK = 64 << 10  # a multipart body's headers and boundaries around the file

EPILOG = """\
The page (http://HOST:PORT/) has three tabs: Photo (drop or choose an image: the annotated
picture and a bar chart per face), Video (upload: progress, the annotated video, the summary
per face track and the timeline) and Camera (the browser's camera: live boxes and labels,
bars per track, the last minute's timeline, and "Save session" for the summary as JSON and
CSV). Browsers allow the camera on http://127.0.0.1 and http://localhost; from another
machine the page needs HTTPS (e.g. behind a reverse proxy) for the camera.
Endpoints (JSON; errors are {"error": "..."} with status 400, 404, 413 or 415):
  GET  /api/info              model, classes and upload limits
  POST /api/photo             multipart "file": faces (schema fer-caffe/1) + annotated picture URL
  POST /api/video             multipart "file": a job id; GET /api/jobs/ID: progress, then files
  POST /api/frame?session=ID  body: one JPEG or PNG camera frame: faces with track ids
  POST /api/sessions/ID/save  the session's summary as JSON, CSV and timeline PNG URLs
  GET  /files/...             what the server wrote (under --out)
exit status: 0 stopped with Ctrl-C; 2 bad option, model or output folder.
"""


@dataclass(frozen=True)
class Limits:
    """Largest uploads accepted, in bytes."""

    image: int = 20 << 20
    video: int = 200 << 20
    frame: int = 4 << 20


class UploadError(Exception):
    """An upload refused; status is the HTTP status to answer with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class Job:
    """A video being labelled in the background."""

    id: str
    name: str
    state: str = "queued"  # queued, running, done, failed
    frames: int = 0
    total: int = 0
    error: str | None = None
    files: dict = field(default_factory=dict)
    summary: dict | None = None


@dataclass
class Session:
    """A camera session: its tracker, when it started and the faces of its last frame (the next
    is searched near them, and whole now and then, as a video's frames are: near_boxes). Frames are
    labelled and sessions saved on the server's worker threads: lock guards the tracker, so that
    a save never reads it while a frame updates it."""

    tracker: Tracker
    started: float = field(default_factory=time.time)
    frames: int = 0
    faces: list[dict] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Service:
    """What the endpoints do, without HTTP: tested directly and through the app."""

    def __init__(self, load: Callable[[], Recognizer], out: Path, limits: Limits = Limits(), smooth: float = 0.7):
        self.load, self.out, self.limits, self.smooth = load, out, limits, smooth
        self.recognizer = load()
        self.lock = threading.Lock()  # one net pass at a time: OpenCV DNN nets are not thread-safe
        self.jobs: dict[str, Job] = {}
        self.sessions: OrderedDict[str, Session] = OrderedDict()
        self.sessions_lock = threading.Lock()
        self.video_model: Recognizer | None = None  # the video worker's own, loaded at its first job
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="video")
        for sub in ("uploads", "photos", "videos", "sessions"):
            (out / sub).mkdir(parents=True, exist_ok=True)
            atomic.sweep(out / sub)

    def info(self) -> dict:
        return {
            "schema": SCHEMA,
            "model": self.recognizer.model,
            "classes": list(self.recognizer.labels),
            "limits": {"image_bytes": self.limits.image, "video_bytes": self.limits.video},
            "image_types": sorted(IMAGE_SUFFIXES),
            "video_types": sorted(VIDEO_SUFFIXES),
        }

    def faces(self, image: np.ndarray, near: list[list[float]] | None = None) -> list[dict]:
        with self.lock:
            return self.recognizer.faces(image, near)

    def save_upload(self, name: str, chunks, limit: int, suffixes: set[str]) -> Path:
        """The upload written under uploads/ with a name of the server's making (the client's
        name gives only its extension); UploadError when it is empty, too large or of a type
        not accepted."""
        suffix = Path(name or "").suffix.lower()
        if suffix not in suffixes:
            raise UploadError(415, f"{name or 'the upload'}: expected one of {', '.join(sorted(suffixes))}")
        dest = self.out / "uploads" / f"{secrets.token_hex(8)}{suffix}"
        size = 0
        with atomic.replacing(dest) as tmp, open(tmp, "wb") as file:
            for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise UploadError(413, f"{name}: larger than the limit of {limit >> 20} MB")
                file.write(chunk)
            if size == 0:
                raise UploadError(400, f"{name}: empty file")
        return dest

    def photo(self, name: str, chunks) -> dict:
        """Label an uploaded image: the faces and the URL of the annotated picture."""
        upload = self.save_upload(name, chunks, self.limits.image, IMAGE_SUFFIXES)
        try:
            image = read_upload(upload, name)
        finally:
            upload.unlink(missing_ok=True)
        faces = self.faces(image)
        annotated = self.out / "photos" / f"{upload.stem}.png"
        cvio.write_image(annotated, annotate(image, faces))
        height, width = image.shape[:2]
        return {
            "schema": SCHEMA,
            "model": self.recognizer.model,
            "image": name,
            "width": width,
            "height": height,
            "faces": faces,
            "annotated": f"/files/photos/{annotated.name}",
        }

    def video(self, name: str, chunks) -> Job:
        """Start labelling an uploaded video in the background; the job says how far it got."""
        upload = self.save_upload(name, chunks, self.limits.video, VIDEO_SUFFIXES)
        try:
            with Video(upload) as video:
                total = video.frame_count
                if next(video.frames(), None) is None:
                    raise InputError(f"{name}: no readable frames")
        except InputError as error:
            upload.unlink(missing_ok=True)
            raise UploadError(415, str(error).replace(str(upload), name)) from error
        job = Job(upload.stem, name, total=total)
        finished = [key for key, old in self.jobs.items() if old.state in ("done", "failed")]
        for key in finished[: max(0, len(finished) - MAX_FINISHED_JOBS + 1)]:
            del self.jobs[key]
        self.jobs[job.id] = job
        self.worker.submit(self._label_video, job, upload)
        return job

    def _label_video(self, job: Job, upload: Path) -> None:
        job.state = "running"
        out = self.out / "videos" / f"{job.id}.webm"
        try:
            if self.video_model is None:  # its own copy: a long video never holds the lock photos and frames need
                self.video_model = self.load()
            recognizer = self.video_model

            def on_frame(doc: dict) -> None:
                job.frames += 1

            done = label_video(recognizer, Video(upload), out, smooth=self.smooth, on_frame=on_frame)
            names = ("video", "json", "csv", "timeline")
            job.files = {key: f"/files/videos/{path.name}" for key, path in zip(names, done.written)}
            job.summary = {**done.summary, "source": job.name}
            job.state = "done"
        except Exception as error:  # a job's failure is reported to the page, never raised
            job.error = str(error).replace(str(upload), job.name)
            job.state = "failed"
        finally:
            upload.unlink(missing_ok=True)

    def job(self, job_id: str) -> Job:
        if job_id not in self.jobs:
            raise UploadError(404, f"no video job {job_id!r}")
        return self.jobs[job_id]

    def frame(self, session_id: str, data: bytes) -> dict:
        """Label one camera frame of a session: faces with track ids and smoothed probabilities."""
        if not session_id.isalnum() or len(session_id) > 64:
            raise UploadError(400, "session: expected letters and digits (up to 64)")
        if len(data) > self.limits.frame:
            raise UploadError(413, f"frame: larger than the limit of {self.limits.frame >> 20} MB")
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
        if image is None:
            raise UploadError(415, "frame: expected a JPEG or PNG image")
        with self.sessions_lock:  # the least recently used session goes when there are too many
            session = self.sessions.pop(session_id, None) or Session(Tracker(self.recognizer.labels, self.smooth))
            self.sessions[session_id] = session
            while len(self.sessions) > MAX_SESSIONS:
                self.sessions.popitem(last=False)
        time_s = round(time.time() - session.started, 3)
        with session.lock:
            near = near_boxes(session.faces, session.frames)
        found = self.faces(image, near)
        with session.lock:
            frame = session.frames
            faces = session.faces = session.tracker.update(frame, time_s, found)
            session.frames += 1
        return {"schema": SCHEMA, "frame": frame, "time_s": time_s, "faces": faces}

    def save_session(self, session_id: str) -> dict:
        """Write the session's summary (JSON, CSV, timeline) under sessions/; their URLs."""
        session = self.sessions.get(session_id)
        if session is None:
            raise UploadError(404, f"no camera session {session_id!r} (no frame was labelled, or it expired)")
        base = self.out / "sessions" / f"camera-{time.strftime('%Y%m%d-%H%M%S')}-{session_id[:8]}"
        with session.lock:
            header = {
                "schema": SCHEMA,
                "model": self.recognizer.model,
                "source": "browser camera",
                "frames": session.frames,
            }
            summary = summarise(session.tracker, header)
            json_path, csv_path, timeline = write_summary(base, summary, session.tracker)
        return {
            "summary": summary,
            "files": {
                k: f"/files/sessions/{p.name}"
                for k, p in (("json", json_path), ("csv", csv_path), ("timeline", timeline))
            },
        }


def read_upload(path: Path, name: str) -> np.ndarray:
    """The uploaded image, upright; UploadError naming the client's file when it is not one
    (or has more pixels than OPENCV_IO_MAX_IMAGE_PIXELS, which main sets to MAX_PIXELS)."""
    try:
        return read_image(path)
    except InputError as error:
        status = 413 if "too large" in str(error) else 415
        raise UploadError(status, str(error).replace(str(path), name)) from error


def create_app(service: Service) -> FastAPI:
    """The FastAPI application: the page, the endpoints and the output files."""
    app = FastAPI(title="fer-caffe", docs_url=None, redoc_url=None)

    upload_limits = {"/api/photo": service.limits.image, "/api/video": service.limits.video}

    @app.middleware("http")
    async def refuse_large_bodies(request: Request, call_next):
        """An upload whose declared size is over the limit is refused before it is read."""
        limit = upload_limits.get(request.url.path)
        declared = request.headers.get("content-length", "")
        if limit is not None and declared.isdigit() and int(declared) > limit + MULTIPART_SLACK:
            return JSONResponse({"error": f"upload larger than the limit of {limit >> 20} MB"}, status_code=413)
        return await call_next(request)

    @app.exception_handler(UploadError)
    def refused(request: Request, error: UploadError) -> JSONResponse:
        return JSONResponse({"error": str(error)}, status_code=error.status)

    @app.exception_handler(HTTPException)
    def http_error(request: Request, error: HTTPException) -> JSONResponse:
        return JSONResponse({"error": f"{request.url.path}: {error.detail}"}, status_code=error.status_code)

    @app.exception_handler(RequestValidationError)
    def malformed(request: Request, error: RequestValidationError) -> JSONResponse:
        wanted = {"file": "a multipart form with the file in a field named 'file'", "session": "?session=ID"}
        missing = [wanted.get(str(e["loc"][-1]), str(e["loc"][-1])) for e in error.errors()]
        return JSONResponse({"error": f"{request.url.path}: expected {', '.join(missing)}"}, status_code=400)

    @app.get("/")
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/api/info")
    def info() -> dict:
        return service.info()

    @app.post("/api/photo")
    def photo(file: UploadFile) -> dict:
        return service.photo(file.filename or "", iter(lambda: file.file.read(CHUNK), b""))

    @app.post("/api/video")
    def video(file: UploadFile) -> dict:
        job = service.video(file.filename or "", iter(lambda: file.file.read(CHUNK), b""))
        return {"job": job.id, "url": f"/api/jobs/{job.id}"}

    @app.get("/api/jobs/{job_id}")
    def job(job_id: str) -> dict:
        return vars(service.job(job_id))

    @app.post("/api/frame")
    async def frame(request: Request, session: str) -> dict:
        data = bytearray()
        async for chunk in request.stream():
            data += chunk
            if len(data) > service.limits.frame:
                raise UploadError(413, f"frame: larger than the limit of {service.limits.frame >> 20} MB")
        return await run_in_threadpool(service.frame, session, bytes(data))

    @app.post("/api/sessions/{session_id}/save")
    def save(session_id: str) -> dict:
        return service.save_session(session_id)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.mount("/files", StaticFiles(directory=service.out), name="files")
    return app


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = cli.Parser(
        prog="python -m predict.serve",
        description=__doc__.split("\n\n")[0],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: %(default)s, this machine only; 0.0.0.0: every network)",
    )
    parser.add_argument("--port", type=cli.number(1, 65535, int), default=8000, help="port (default: %(default)s)")
    parser.add_argument(
        "--model",
        type=Path,
        default=DEFAULT_MODEL,
        help=f"model or ensemble folder (default: {DEFAULT_MODEL_HELP})",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("out/serve"),
        help="the only folder the server writes to (default: %(default)s)",
    )
    parser.add_argument(
        "--smooth",
        type=cli.number(0, MAX_SMOOTHING),
        default=0.7,
        help="smoothing of each face track's probabilities in videos and camera sessions (default: %(default)s)",
    )
    parser.add_argument(
        "--max-image-mb",
        type=cli.number(1, 1000, int),
        default=20,
        help="largest image upload (default: %(default)s MB)",
    )
    parser.add_argument(
        "--max-video-mb",
        type=cli.number(1, 10000, int),
        default=200,
        help="largest video upload (default: %(default)s MB)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(MAX_PIXELS))  # read by OpenCV at its first decode
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # not "tag VP80 is not supported" per video
    try:
        out = claim_folder(args.out, "--out")
        limits = Limits(image=args.max_image_mb << 20, video=args.max_video_mb << 20)
        service = Service(lambda: Recognizer(args.model), out, limits, args.smooth)
    except (ModelError, NetError, UsageError, InputError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"fer-caffe: open http://{args.host}:{args.port}/ (Ctrl-C stops); writing into {out}", file=sys.stderr)
    uvicorn.run(create_app(service), host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    cli.run(main)
