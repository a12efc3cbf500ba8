"""python -m predict PATH: label the facial expression of every face in an image, a folder
of images or a video, with the trained Caffe model (OpenCV DNN by default: no Caffe build)."""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import cv2
from tqdm import tqdm

from predict.classifier import TTA_MODES, ModelError
from predict.media import IMAGE_SUFFIXES, InputError, annotate, kind, open_video, read_image
from predict.recognizer import DEFAULT_MODEL, Recognizer

EPILOG = """\
output:
  image   one JSON document on stdout: per face its box [x, y, width, height], landmarks,
          detection score, label, label_id, probability, top_k and all probabilities;
          an annotated copy in --out (default: out/<name>.png beside the input)
  folder  one JSON line (or CSV row per face with --format csv) per image on stdout;
          annotated copies only with --out DIR; failures are listed at the end
  video   one JSON line per frame (frame, time_s, faces); annotated video in --out
          (default: out/<name>.mp4 beside the input)
exit status: 0 done (no face found is not an error), 2 bad input or model.
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m predict",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("path", type=Path, help="an image, a folder of images, or a video file")
    parser.add_argument(
        "--model",
        type=Path,
        default=DEFAULT_MODEL,
        help="model folder: deploy.prototxt, .caffemodel, mean.npy (default: the shipped model)",
    )
    parser.add_argument(
        "--backend",
        choices=("opencv", "caffe"),
        default="opencv",
        help="opencv: OpenCV DNN, no Caffe build needed; caffe: pycaffe (default: %(default)s)",
    )
    parser.add_argument("--out", type=Path, help="annotated output file (image, video) or folder (folder mode)")
    parser.add_argument("--format", choices=("jsonl", "csv"), default="jsonl", help="folder mode output format")
    parser.add_argument("-r", "--recursive", action="store_true", help="folder mode: include subfolders")
    parser.add_argument(
        "--no-detect",
        action="store_true",
        help="the input is already a face crop (e.g. a 48x48 FER2013 image): classify it whole",
    )
    parser.add_argument(
        "--top-k", type=int, default=3, help="labels listed per face, best first (default: %(default)s)"
    )
    parser.add_argument(
        "--min-face",
        type=float,
        default=40,
        help="smallest face to detect, in pixels (default: %(default)s; the model reads 48x48 faces, so smaller "
        "ones carry little expression, and 40 detects about twice as fast as MTCNN's usual 20)",
    )
    parser.add_argument(
        "--threshold", type=float, default=0.8, help="MTCNN's final face score threshold, 0-1 (default: %(default)s)"
    )
    parser.add_argument(
        "--tta",
        choices=TTA_MODES,
        help="test-time augmentation: average over the mirrored face, or over ten crops (default: the "
        "model's own: an ensemble's ensemble.json names the one chosen on PublicTest; none for a single model)",
    )
    return parser.parse_args(argv)


def default_out(path: Path, suffix: str) -> Path:
    return path.parent / "out" / f"{path.stem}{suffix}"


def predict_image(recognizer: Recognizer, path: Path, args: argparse.Namespace, out: Path | None) -> dict:
    """One image's JSON document; writes the annotated copy when out is given."""
    image = read_image(path)
    height, width = image.shape[:2]
    if args.no_detect:
        return {"file": str(path), "width": width, "height": height, "faces": recognizer.crops([image])}
    faces = recognizer.faces(image)
    doc = {"file": str(path), "width": width, "height": height, "faces": faces}
    if not faces:
        print(f"{path}: no face found", file=sys.stderr)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(out), annotate(image, faces)):
            raise InputError(f"{out}: cannot write the annotated image")
        doc["annotated"] = str(out)
    return doc


def csv_rows(doc: dict, labels: tuple[str, ...]) -> list[list]:
    """One CSV row per face: file, face index, box, label, probability, every probability."""
    return [
        [
            doc["file"],
            i,
            *(round(v, 1) for v in face.get("box", [0, 0, doc["width"], doc["height"]])),
            face["label"],
            round(face["probability"], 4),
            *(round(face["probabilities"][n], 4) for n in labels),
        ]
        for i, face in enumerate(doc["faces"])
    ]


def run_folder(recognizer: Recognizer, folder: Path, args: argparse.Namespace) -> int:
    pattern = "**/*" if args.recursive else "*"
    files = sorted(p for p in folder.glob(pattern) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        hint = "" if args.recursive else "; -r for subfolders"
        print(f"{folder}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}){hint}", file=sys.stderr)
        return 2
    writer = csv.writer(sys.stdout) if args.format == "csv" else None
    if writer:
        writer.writerow(["file", "face", "x", "y", "width", "height", "label", "probability", *recognizer.labels])
    failures = []
    for path in tqdm(files, desc="images", unit=" images", file=sys.stderr):
        out = args.out / path.relative_to(folder).with_suffix(".png") if args.out else None
        try:
            doc = predict_image(recognizer, path, args, out)
        except InputError as error:
            failures.append(str(error))
            continue
        if writer:
            writer.writerows(csv_rows(doc, recognizer.labels))
        else:
            print(json.dumps(doc), flush=True)
    for failure in failures:
        print(f"failed: {failure}", file=sys.stderr)
    print(f"{len(files) - len(failures)} of {len(files)} images done", file=sys.stderr)
    return 2 if failures else 0


def run_video(recognizer: Recognizer, path: Path, args: argparse.Namespace) -> int:
    capture, fps, frames, size = open_video(path)
    out = args.out or default_out(path, ".mp4")
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    if not writer.isOpened():
        raise InputError(f"{out}: cannot write a video there")
    bar = tqdm(total=frames or None, desc="frames", unit=" frames", file=sys.stderr)
    index, started = 0, time.time()
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            faces = recognizer.faces(frame)
            writer.write(annotate(frame, faces))
            print(json.dumps({"frame": index, "time_s": round(index / fps, 3), "faces": faces}), flush=True)
            index += 1
            bar.update(1)
    finally:
        bar.close()
        writer.release()
        capture.release()
    elapsed = time.time() - started
    print(
        f"{index} frames in {elapsed:.1f} s ({index / max(elapsed, 1e-9):.1f} frames/s); wrote {out}", file=sys.stderr
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        what = kind(args.path)
        recognizer = Recognizer(
            args.model, args.backend, args.min_face, args.threshold, args.top_k, args.tta, not args.no_detect
        )
        if what == "folder":
            return run_folder(recognizer, args.path, args)
        if what == "video":
            return run_video(recognizer, args.path, args)
        out = args.out or (None if args.no_detect else default_out(args.path, ".png"))
        print(json.dumps(predict_image(recognizer, args.path, args, out), indent=1))
        return 0
    except (InputError, ModelError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
