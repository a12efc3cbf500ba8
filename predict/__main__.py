"""python -m predict PATH: label the facial expression of every face in an image, a folder
of images or a video, with the trained Caffe model (OpenCV DNN by default: no Caffe build)."""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from ferlib import cli, cvio
from ferlib.model_folder import TTA_MODES, ModelError
from ferlib.nets import NetError
from predict.drawing import annotate
from predict.media import IMAGE_SUFFIXES, InputError, Video, kind, read_image, show
from predict.outputs import (
    UsageError,
    check_folder_out,
    claim_folder,
    folder_outputs,
    image_files,
    output_folder,
    single_output,
)
from predict.recognizer import DEFAULT_MODEL, DEFAULT_MODEL_HELP, SCHEMA, Recognizer
from predict.tracking import MAX_SMOOTHING
from predict.video import RESCAN, label_video

EPILOG = """\
output (schema "fer-caffe/1", docs/predict.md): every JSON document names the schema and
the model (name, sha256); per face its box [x, y, width, height] in input pixels, the
detection score, five landmarks (left_eye is the eye on the image's left), label, label_id,
probability, top_k and all probabilities (to 4 digits); --no-detect: the whole image is the box
  image   one JSON document on stdout (or CSV rows with --format csv); an annotated copy in
          --out (a file or a folder; default: out/<input's full name> beside the input), in
          the input's format
  folder  one JSON line (or CSV rows; a row with an empty label for an image without a
          face) per image on stdout; annotated copies only with
          --out DIR (a new or empty folder, or one this tool wrote before); failures are
          listed at the end and the other images are still labelled
  video   one JSON line (or CSV rows) per frame (frame, time_s, faces); an annotated video
          in --out (default: out/<input's full name>, .mp4 added unless the container is
          .mp4/.avi/.mov/.mkv/.m4v); frames that cannot be decoded are skipped and counted
Inputs are never written to. Every output file appears complete or not at all (it is
written under a temporary name beside its destination and renamed into place).
exit status: 0 done (no face found is not an error); 2 bad input, option or model, an
output that cannot be written, or (folder mode) some images failed; 130 interrupted (Ctrl-C
or SIGTERM; what was done is printed first). A closed standard output (| head) stops the
run quietly with status 0.
"""

MIN_FACE = 12  # MTCNN's smallest window: a smaller --min-face only upsamples the whole image
CROP_BATCH = 256  # --no-detect folder mode: face crops per net pass


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = cli.Parser(
        prog="python -m predict",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "path", nargs="?", help="an image, a folder of images, a video file, or a stream URL (rtsp://, http://...)"
    )
    parser.add_argument("--camera", type=cli.number(0, 99, int), help="read camera INDEX (Ctrl-C ends the session)")
    parser.add_argument(
        "--model",
        type=Path,
        default=DEFAULT_MODEL,
        help="model folder: deploy.prototxt, .caffemodel, mean.npy, or an ensemble.json (default: "
        f"{DEFAULT_MODEL_HELP}; models/fer2013_ensemble: the best ensemble)",
    )
    parser.add_argument(
        "--backend",
        choices=("opencv", "caffe"),
        default="opencv",
        help="opencv: OpenCV DNN, no Caffe build needed; caffe: pycaffe (default: %(default)s)",
    )
    parser.add_argument("--out", type=Path, help="annotated output: a file or folder (image, video), a folder (folder)")
    parser.add_argument("--format", choices=("jsonl", "csv"), default="jsonl", help="stdout format (default: jsonl)")
    parser.add_argument("-r", "--recursive", action="store_true", help="folder mode: include subfolders")
    parser.add_argument(
        "--no-landmarks", dest="landmarks", action="store_false", help="annotated copies without the landmark dots"
    )
    parser.add_argument(
        "--smooth",
        type=cli.number(0, MAX_SMOOTHING),
        default=0.7,
        help="video: each face track's probabilities are a moving average, smoothed = S * previous + (1 - S) "
        "* this frame's; 0 switches smoothing off (default: %(default)s)",
    )
    parser.add_argument(
        "--every",
        type=cli.number(1, 1000, int),
        default=1,
        metavar="N",
        help="video: label every Nth frame, carry labels between",
    )
    parser.add_argument(
        "--rescan",
        type=cli.number(1, 1000, int),
        default=RESCAN,
        metavar="N",
        help="video: search the whole frame for faces every Nth labelled frame (and after a frame without faces); "
        "between, only near the faces being tracked, about 4 times cheaper, so a new face shows within N "
        "labelled frames; 1: every frame whole (default: %(default)s)",
    )
    parser.add_argument("--threads", type=cli.number(1, 256, int), help="OpenCV's threads (default: all cores)")
    parser.add_argument(
        "--no-detect",
        action="store_true",
        help="images are already face crops (e.g. 48x48 FER2013 images): each is classified as the models were "
        "trained and evaluated (padded, MTCNN, aligned; the plain crop where no face is found; 'aligned' in the "
        "JSON says which); not for video",
    )
    parser.add_argument(
        "--raw",
        action="store_true",
        help="with --no-detect: resize each whole crop to the model's input, no alignment (the default model, "
        "trained on both views of each face, loses 0.2 points this way on FER2013's PrivateTest; models "
        "trained on aligned faces only lose up to 5; docs/predict.md)",
    )
    parser.add_argument(
        "--top-k", type=cli.number(1, kind=int), default=3, help="labels listed per face, best first (default: 3)"
    )
    parser.add_argument(
        "--min-face",
        type=cli.number(MIN_FACE, 100_000),
        default=40,
        help=f"smallest face to detect, in pixels, at least {MIN_FACE} (default: %(default)s; the model reads 48x48 "
        "faces, so smaller ones carry little expression, and 40 detects about twice as fast as MTCNN's usual 20)",
    )
    parser.add_argument(
        "--threshold",
        type=cli.number(0, 1),
        default=0.8,
        help="MTCNN's final face score threshold, 0-1 (default: %(default)s)",
    )
    parser.add_argument(
        "--tta",
        choices=TTA_MODES,
        help="test-time augmentation: average over the mirrored face, or over ten crops (default: the "
        "model's own: an ensemble's ensemble.json names the one chosen on PublicTest; none for a single model)",
    )
    return parser.parse_args(argv)


def document(recognizer: Recognizer, path: Path, image: np.ndarray) -> dict:
    """The fields every image's JSON document starts with."""
    height, width = image.shape[:2]
    return {"schema": SCHEMA, "model": recognizer.model, "file": show(path), "width": width, "height": height}


def labelled_crops(recognizer: Recognizer, paths: list[Path]) -> Iterator[dict | str]:
    """--no-detect in folder mode: the document of each face crop (or why it failed), the
    batch classified together, several times faster than one net pass per crop."""
    read = []
    for path in paths:
        try:
            read.append((path, read_image(path)))
        except InputError as error:
            yield str(error)
    faces = recognizer.crops([image for _, image in read]) if read else []
    for (path, image), face in zip(read, faces):
        yield {**document(recognizer, path, image), "faces": [face]}


def predict_image(recognizer: Recognizer, path: Path, args: argparse.Namespace, out: Path | None) -> dict:
    """One image's JSON document; writes the annotated copy when out is given."""
    image = read_image(path)
    if args.no_detect:
        return {**document(recognizer, path, image), "faces": recognizer.crops([image])}
    faces = recognizer.faces(image)
    doc = {**document(recognizer, path, image), "faces": faces}
    if not faces:
        print(f"{show(path)}: no face found", file=sys.stderr)
    if out is not None:
        try:
            cvio.write_image(output_folder(out), annotate(image, faces, args.landmarks))
        except (OSError, ValueError, cv2.error) as error:
            raise InputError(f"{show(out)}: cannot write the annotated image ({error})") from error
        doc["annotated"] = show(out)
    return doc


CSV_HEADER = ["track", "x", "y", "width", "height", "label", "probability"]


def csv_rows(keys: list, faces: list[dict], labels: tuple[str, ...]) -> list[list]:
    """One CSV row per face, led by keys (file, or frame and time), the face's index and its
    track (video); one row with empty fields when there is no face, so every input has a row."""
    if not faces:
        return [[*keys, *("" for _ in range(len(CSV_HEADER) + 1 + len(labels)))]]
    return [
        [
            *keys,
            i,
            face.get("track", ""),
            *face["box"],
            face["label"],
            face["probability"],
            *(face["probabilities"][n] for n in labels),
        ]
        for i, face in enumerate(faces)
    ]


class Printer:
    """Results on stdout as JSON (lines) or CSV rows, flushed as they come."""

    def __init__(self, fmt: str, keys: list[str], labels: tuple[str, ...], indent: int | None = None):
        self.labels, self.indent = labels, indent
        self.csv = csv.writer(sys.stdout) if fmt == "csv" else None
        if self.csv:
            self.csv.writerow([*keys, "face", *CSV_HEADER, *labels])

    def __call__(self, doc: dict, keys: list) -> None:
        if self.csv:
            self.csv.writerows(csv_rows(keys, doc["faces"], self.labels))
        else:
            print(json.dumps(doc, indent=self.indent))
        sys.stdout.flush()


def run_image(recognizer: Recognizer, path: Path, args: argparse.Namespace) -> int:
    out = None if args.no_detect and args.out is None else single_output(path, args.out, "image")
    doc = predict_image(recognizer, path, args, out)
    Printer(args.format, ["file"], recognizer.labels, indent=1)(doc, [doc["file"]])
    return 0


def one_image(recognizer: Recognizer, path: Path, args: argparse.Namespace, out: Path | None) -> dict | str:
    """predict_image, or why this one image failed (a folder run goes on past it)."""
    try:
        return predict_image(recognizer, path, args, out)
    except (InputError, cv2.error, ValueError, OSError, MemoryError) as error:
        return str(error) if isinstance(error, InputError) else f"{show(path)}: {error}"


def run_folder(recognizer: Recognizer, folder: Path, args: argparse.Namespace) -> int:
    if args.out is not None:
        check_folder_out(folder, args.out, args.recursive)
    files, failures = image_files(folder, args.recursive, args.out)
    total = len(files) + len(failures)
    if not files:
        hint = "" if args.recursive else "; -r for subfolders"
        raise InputError(f"{show(folder)}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}){hint}")
    if args.out is not None:
        claim_folder(args.out)
        plan = list(folder_outputs(folder, files, args.out))
    else:
        plan = [(path, None) for path in files]
    printer = Printer(args.format, ["file"], recognizer.labels)
    done = 0
    step = CROP_BATCH if args.no_detect else 1
    bar = tqdm(total=len(plan), desc="images", unit=" images", file=sys.stderr)
    try:
        for start in range(0, len(plan), step):
            chunk = plan[start : start + step]
            failures += [out for _, out in chunk if isinstance(out, str)]
            todo = [(path, out) for path, out in chunk if not isinstance(out, str)]
            results = (
                labelled_crops(recognizer, [path for path, _ in todo])
                if args.no_detect
                else (one_image(recognizer, path, args, out) for path, out in todo)
            )
            for result in results:
                if isinstance(result, str):
                    failures.append(result)
                    continue
                printer(result, [result["file"]])
                done += 1
            bar.update(len(chunk))
    except KeyboardInterrupt:
        print(f"\ninterrupted: {done} of {total} images done", file=sys.stderr)
        return cli.INTERRUPTED
    finally:
        bar.close()
        for failure in failures:
            print(f"failed: {failure}", file=sys.stderr)
    print(f"{done} of {total} images done", file=sys.stderr)
    return 2 if failures else 0


def video_output(video: Video, args: argparse.Namespace) -> Path:
    """The annotated video's path: beside a video file (single_output), and for a stream or
    camera as if it were a file camera<N>.mp4 or <the URL's last part>.mp4 in this folder."""
    if not video.live:
        return single_output(video.source, args.out, "video")
    if isinstance(video.source, int):
        name = f"camera{video.source}"
    else:
        name = Path(urllib.parse.urlparse(video.source).path).stem or "stream"
    return single_output(Path(f"{name}.mp4"), args.out, "video")


def run_video(recognizer: Recognizer, video: Video, args: argparse.Namespace) -> int:
    """Label every frame (or every --every'th), print one document per frame, write the
    annotated video and the summary beside it (predict.video.label_video)."""
    if args.no_detect:
        raise UsageError("--no-detect: classifies face crops in images; a video's frames are not face crops")
    out = video_output(video, args)
    printer = Printer(args.format, ["frame", "time_s"], recognizer.labels)
    started = time.time()
    bar = tqdm(desc="frames", unit=" frames", file=sys.stderr)

    def on_frame(doc: dict) -> None:
        if bar.total is None and video.frame_count:
            bar.total = video.frame_count
        printer(doc, [doc["frame"], doc["time_s"]])
        bar.update(1)

    try:
        done = label_video(recognizer, video, out, args.every, args.smooth, args.landmarks, on_frame, args.rescan)
    except KeyboardInterrupt:
        bar.close()
        print(f"\ninterrupted after {bar.n} frames: the annotated video was not written", file=sys.stderr)
        return cli.INTERRUPTED
    finally:
        bar.close()
    skipped = f"; {video.skipped} undecodable frames skipped" if video.skipped else ""
    stopped = " (stopped with Ctrl-C)" if done.interrupted else ""
    print(
        f"{done.frames} frames in {done.seconds:.1f} s ({done.frames / max(done.seconds, 1e-9):.1f} frames/s)"
        f"{skipped}{stopped}; summary in {time.time() - started - done.seconds:.1f} s; "
        f"wrote {', '.join(show(p) for p in done.written)}",
        file=sys.stderr,
    )
    return 0


def source(args: argparse.Namespace) -> tuple[str, Path | Video]:
    """What to read: ("video", Video) for --camera or a URL, else kind() of the path."""
    if args.camera is not None:
        if args.path is not None:
            raise UsageError("--camera: give a camera or a path, not both")
        return "video", Video(args.camera)
    if args.path is None:
        raise UsageError("give an image, a folder, a video or a stream URL (or --camera N)")
    if "://" in args.path:
        return "video", Video(args.path)
    path = Path(args.path)
    what = kind(path)
    return what, Video(path) if what == "video" else path


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        what, target = source(args)
        if args.out is not None and what == "folder" and args.out.is_file():
            raise UsageError(f"--out {show(args.out)}: a file; folder mode writes annotated copies into a folder")
        if args.threads:
            cv2.setNumThreads(args.threads)
        if args.raw and not args.no_detect:
            raise UsageError("--raw: only with --no-detect (face crops)")
        recognizer = Recognizer(
            args.model,
            args.backend,
            args.min_face,
            args.threshold,
            args.top_k,
            args.tta,
            not args.no_detect,
            not args.raw,
        )
        run = {"folder": run_folder, "video": run_video, "image": run_image}[what]
        return run(recognizer, target, args)
    except (InputError, ModelError, NetError, UsageError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    cli.run(main)
