"""Prediction speed and memory: a 640x480 photo, batches of face crops, a 640x480 video (with the
model's own test-time augmentation and with each other of --tta mirror and ten).

    python bench/predict_speed.py [--model models/fer2013_vgg] [--against OTHER_MODEL]

Writes bench/results/predict_speed.json. The video figure and the peak memory come from a
real `python -m predict clip.avi` run in a subprocess (its own peak RSS, VmHWM), with face
tracking, smoothing and the summary (JSON, CSV, timeline) on, as a user runs it; the CLI
folder figures from `python -m predict FOLDER --no-detect --raw` (and without --raw: aligned
first) on 1,024 crops; the batch figures
from `python -m predict.batch` on 200 photos, on a process pool and on a local Ray cluster,
with 1 and 2 workers (start-up taken off: a job on the first 25 photos is timed too). With
--against, the video runs again for both models in turn (five rounds each), and their ratio
is recorded: machines here differ by 10-40%, a ratio measured side by side does not. So is
the video's rate as it runs (the whole frame searched every 5th frame, --rescan) against the
whole frame every frame (--rescan 1), three rounds each in turn.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from bench.common import median_seconds, photo_640x480, write_results  # noqa: E402
from predict.recognizer import DEFAULT_MODEL, Recognizer  # noqa: E402
from reference_images import lfw_face  # noqa: E402

# Runs python -m predict and, at exit, prints its own peak resident memory (VmHWM, which
# starts afresh at exec, unlike getrusage's, which counts the forked parent's pages).
PEAK_RSS_WRAPPER = """import atexit, runpy, sys
atexit.register(lambda: print("peak_rss_kb", open("/proc/self/status").read().split("VmHWM:")[1].split()[0],
                              file=sys.stderr))
sys.argv[0] = "predict"
runpy.run_module("predict", run_name="__main__")
"""


def make_video(path: Path, frames: int) -> None:
    """A 640x480 MJPG clip of the photo panning slowly."""
    photo = photo_640x480()
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (640, 480))
    for i in range(frames):
        writer.write(np.roll(photo, 2 * i, axis=1))
    writer.release()


def predict_video(clip: Path, model: Path, out: Path, options: list[str]) -> tuple[float | None, float]:
    """Run python -m predict on a video with the options given (none: as a user runs it, the
    model's own TTA); frames/s, peak RSS MB."""
    command = [sys.executable, "-c", PEAK_RSS_WRAPPER, str(clip), "--model", str(model), "--out", str(out)]
    run = subprocess.run(command + options, cwd=ROOT, capture_output=True, text=True, check=True)
    fps = re.search(r"\(([\d.]+) frames/s\)", run.stderr)
    return (float(fps[1]) if fps else None), round(int(re.search(r"peak_rss_kb (\d+)", run.stderr)[1]) / 1024, 1)


def cli_crops_per_second(model: Path, crops: np.ndarray, folder: Path, raw: bool) -> float:
    """python -m predict FOLDER --no-detect [--raw] on face crops: crops/s of the run, its
    start-up (a run on one crop) taken off."""
    if not folder.exists():
        folder.mkdir()
        for i, crop in enumerate(crops):
            cv2.imwrite(str(folder / f"{i:05d}.png"), crop)
        (folder.parent / "one").mkdir()
        cv2.imwrite(str(folder.parent / "one" / "0.png"), crops[0])
    times = []
    for target in (folder.parent / "one", folder):
        command = [sys.executable, "-m", "predict", str(target), "--no-detect", "--model", str(model)]
        command += ["--raw"] if raw else []
        start = time.perf_counter()
        subprocess.run(command, cwd=ROOT, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return (len(crops) - 1) / (times[1] - times[0])


def batch_images_per_second(model: Path, photos: list[Path], out: Path, engine: str, workers: int) -> float:
    """python -m predict.batch on the photos: images/s once running, its start-up (a job on
    the first shard alone: starting Ray takes seconds) taken off."""
    times = []
    for count in (25, len(photos)):
        listing = out.with_suffix(f".{count}.txt")
        listing.write_text("\n".join(str(p) for p in photos[:count]) + "\n")
        command = [
            sys.executable,
            "-m",
            "predict.batch",
            str(listing),
            "--out",
            f"{out}-{count}",
            "--model",
            str(model),
        ]
        command += ["--engine", engine, "--workers", str(workers), "--shard-size", "25"]
        start = time.perf_counter()
        subprocess.run(command, cwd=ROOT, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return (len(photos) - 25) / (times[1] - times[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--against", type=Path, help="a model whose video rate is measured in turn with --model's")
    args = parser.parse_args()
    results = {"model": str(args.model)}
    photo = photo_640x480()
    for min_face in (40, 20):
        recognizer = Recognizer(args.model, min_face=min_face)
        assert len(recognizer.faces(photo)) == 1
        seconds = median_seconds(lambda r=recognizer: r.faces(photo), repeats=10)
        results[f"ms_per_640x480_photo_min_face_{min_face}"] = round(1000 * seconds, 1)
    crops = np.stack([lfw_face(i % 100, 48) for i in range(1024)])
    recognizer = Recognizer(args.model, detect=False)
    results["tta"] = recognizer.tta
    seconds = median_seconds(lambda: recognizer.average(lambda side, template: crops), repeats=3)
    results["crop_faces_per_second_batch_256"] = round(len(crops) / seconds)
    results["video_640x480_frames"] = args.frames
    with tempfile.TemporaryDirectory() as tmp:
        for raw, key in ((True, "cli_folder_crops_per_second"), (False, "cli_folder_aligned_crops_per_second")):
            results[key] = round(cli_crops_per_second(args.model, crops, Path(tmp) / "crops", raw))
        photos = [Path(tmp) / f"photo{i:03d}.jpg" for i in range(200)]
        for i, path in enumerate(photos):
            cv2.imwrite(str(path), np.roll(photo, 3 * i, axis=1))
        for engine in ("local", "ray"):
            for workers in (1, 2):
                out = Path(tmp) / f"batch-{engine}-{workers}"
                rate = batch_images_per_second(args.model, photos, out, engine, workers)
                results[f"batch_{engine}_{workers}_workers_640x480_photos_per_second"] = round(rate, 1)
        clip = Path(tmp) / "clip.avi"
        make_video(clip, args.frames)
        out = Path(tmp) / "out.mp4"
        others = [tta for tta in ("mirror", "ten") if tta != results["tta"]]
        for options, key in [([], "")] + [(["--tta", tta], f"_tta_{tta}") for tta in others]:
            fps, rss_mb = predict_video(clip, args.model, out, options)
            results[f"video_640x480_frames_per_second{key}"] = fps
            results[f"video_peak_rss_mb{key}"] = rss_mb
        rates, ratio = side_by_side(clip, out, (args.model, []), (args.model, ["--rescan", "1"]), rounds=3)
        results["video_rescan_side_by_side_frames_per_second"] = {"default": rates[0], "rescan_1": rates[1]}
        results["video_rescan_ratio"] = ratio
        if args.against:
            rates, ratio = side_by_side(clip, out, (args.model, []), (args.against, []))
            results["video_against"] = str(args.against)
            results["video_side_by_side_frames_per_second"] = {"model": rates[0], "against": rates[1]}
            results["video_side_by_side_ratio"] = ratio
    write_results("predict_speed", results)


def side_by_side(
    clip: Path, out: Path, first: tuple[Path, list[str]], second: tuple[Path, list[str]], rounds: int = 5
) -> tuple[tuple[list[float | None], list[float | None]], float]:
    """The video frames/s of two (model, options) runs, alternating, and the ratio of their
    medians (first over second)."""
    rates: tuple[list[float | None], list[float | None]] = ([], [])
    for _ in range(rounds):
        for rate, (model, options) in zip(rates, (first, second)):
            rate.append(predict_video(clip, model, out, options)[0])
    medians = [float(np.median([r for r in values if r])) for values in rates]
    return rates, round(medians[0] / medians[1], 3)


if __name__ == "__main__":
    main()
