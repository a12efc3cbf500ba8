"""Labelling a video: every frame (or every n-th, the labels carried between), faces tracked
and their probabilities smoothed, the annotated video written whole or not at all, and the
summary (JSON, CSV, timeline) beside it. The command line and the web page both call
label_video; each shows progress its own way through on_frame."""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ferlib import atomic, cvio
from predict.drawing import annotate
from predict.media import InputError, Video, show
from predict.outputs import output_folder
from predict.recognizer import SCHEMA, Recognizer
from predict.summary import summarise, write_summary
from predict.tracking import Tracker

STOPS = {signal.SIGINT, signal.SIGTERM}


@dataclass
class LabelledVideo:
    """What label_video did: frames labelled, whether Ctrl-C ended a live source, the files
    written (annotated video first, then the summary's) and the seconds spent labelling."""

    frames: int
    interrupted: bool
    seconds: float
    written: list[Path] = field(default_factory=list)
    summary: dict = field(default_factory=dict)


@contextlib.contextmanager
def annotated_video(dest: Path, fps: float, size: tuple[int, int]) -> Iterator[Callable[[np.ndarray], None]]:
    """A function that adds a frame to the annotated video (MPEG-4, or VP8 for a .webm dest).
    The video is written under a temporary name and opened again before it is renamed into
    place: a full disk or a kill never leaves a broken video under the final name."""
    written = 0
    with atomic.replacing(output_folder(dest)) as tmp:
        with cvio.writable(tmp) as name:
            codec = "VP80" if dest.suffix.lower() == ".webm" else "mp4v"  # WebM/VP8 plays in browsers
            writer = cv2.VideoWriter(name, cv2.VideoWriter_fourcc(*codec), fps, size)
        if not writer.isOpened():
            raise InputError(f"{show(dest)}: cannot write a video there")

        def write(frame: np.ndarray) -> None:
            nonlocal written
            signal.pthread_sigmask(signal.SIG_BLOCK, STOPS)  # Ctrl-C between the two would miscount
            try:
                writer.write(frame)
                written += 1
            finally:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, STOPS)

        try:
            yield write
        finally:
            writer.release()
        with cvio.readable(tmp) as name:
            capture = cv2.VideoCapture(name)
            frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else 0
            capture.release()
        if frames != written:
            raise InputError(
                f"{show(dest)}: the annotated video could not be written completely ({frames} of {written} "
                "frames readable; is the disk full?); nothing was written"
            )


RESCAN = 5  # video: the whole frame is searched for faces every RESCAN-th labelled frame


def near_boxes(faces: list[dict], labelled: int, rescan: int = RESCAN) -> list[list[float]] | None:
    """Where to search the next labelled frame, given the faces of the last one and the frames
    labelled so far: None (the whole frame) every rescan-th and after a frame without faces,
    else the boxes of those faces (Recognizer.faces' near). Videos and camera sessions alike."""
    return [face["box"] for face in faces] if faces and labelled % rescan != 0 else None


def tracked_frames(
    recognizer: Recognizer, video: Video, tracker: Tracker, every: int = 1, rescan: int = RESCAN
) -> Iterator[tuple[np.ndarray, dict]]:
    """Each decodable frame of the open video (at the video's size, BGR) and its document:
    schema, model, frame, time_s and the faces with their track ids. Only every n-th frame
    goes through the nets; the frames between carry its faces, as the annotated video shows.
    Of the frames labelled, every rescan-th, and every one after a frame without faces, is
    searched whole; the others only near the faces of the frame before (a new face shows
    within rescan labelled frames): MTCNN over a whole frame is most of a frame's time."""
    faces: list[dict] = []
    labelled = 0
    for count, (index, frame) in enumerate(video.frames()):
        if (frame.shape[1], frame.shape[0]) != video.size:
            frame = cv2.resize(frame, video.size)
        time_s = round(index / video.fps, 3)
        if count % every == 0:
            faces = tracker.update(index, time_s, recognizer.faces(frame, near_boxes(faces, labelled, rescan)))
            labelled += 1
        yield frame, {"schema": SCHEMA, "model": recognizer.model, "frame": index, "time_s": time_s, "faces": faces}


def track(
    source: str | Path | int,
    recognizer: Recognizer | None = None,
    every: int = 1,
    smooth: float = 0.7,
    rescan: int = RESCAN,
) -> Iterator[dict]:
    """The Python API's video: each frame of a video file, a stream URL (rtsp://, http://...)
    or a camera (an index) as the CLI's JSON line gives it (frame, time_s, faces), each face
    with its track id and its probabilities smoothed along the track (smooth as --smooth;
    0 switches smoothing off; every and rescan as --every and --rescan). Reads frames only
    as the caller asks for them, writes nothing, and ends with the video, or (a stream or
    camera) when the caller stops iterating. Bad arguments raise ValueError at once; a
    source that cannot be opened raises InputError when the first frame is asked for."""
    for name, value in (("every", every), ("rescan", rescan)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a whole number of frames, 1 or more, got {value!r}")
    recognizer = recognizer or Recognizer()
    tracker = Tracker(recognizer.labels, smooth)  # ValueError for a smooth out of its bounds

    def documents(video: Video) -> Iterator[dict]:
        with video:
            for _, doc in tracked_frames(recognizer, video, tracker, every, rescan):
                yield doc

    return documents(Video(source))


def label_video(
    recognizer: Recognizer,
    video: Video,
    out: Path,
    every: int = 1,
    smooth: float = 0.7,
    landmarks: bool = True,
    on_frame: Callable[[dict], None] | None = None,
    rescan: int = RESCAN,
) -> LabelledVideo:
    """Label video into the annotated video out and its summary beside it. on_frame gets each
    frame's document (schema, model, frame, time_s, faces). A file interrupted (Ctrl-C)
    raises KeyboardInterrupt and writes nothing; a stream or camera ends with Ctrl-C, keeping
    what it recorded."""
    tracker = Tracker(recognizer.labels, smoothing=smooth)
    count, started, interrupted = 0, time.time(), False
    with video:
        with annotated_video(out, video.fps, video.size) as write:
            try:
                for frame, doc in tracked_frames(recognizer, video, tracker, every, rescan):
                    write(annotate(frame, doc["faces"], landmarks))
                    count += 1
                    if on_frame:
                        on_frame(doc)
            except KeyboardInterrupt:
                if not video.live:
                    raise
                interrupted = True  # the usual end of a stream or camera session
            if count == 0:
                raise InputError(f"{video.name}: no readable frames (truncated or corrupt video)")
    seconds = time.time() - started
    header = {"schema": SCHEMA, "model": recognizer.model, "source": video.name, "fps": video.fps, "frames": count}
    summary = summarise(tracker, header)
    written = [out, *write_summary(out, summary, tracker)]
    return LabelledVideo(count, interrupted, seconds, written, summary)
