"""python -m predict.batch SOURCE --out DIR: label a large collection of images as a batch
job, on this machine (--engine local, a process pool) or on a Ray cluster (--engine ray, Ray
Data with a pool of actors, each loading the model once).

SOURCE is a folder (searched recursively), a glob ('photos/**/*.jpg') or a text file with one
image path per line. The images are split into shards of --shard-size; each shard's results
are one JSON-lines file in DIR (shard-00000.jsonl ...: one document per image as `python -m
predict` prints it, or {"file": ..., "error": ...} for an image that failed), written whole
or not at all. job.json fixes the shard plan, so running the same command again after an
interruption (a killed worker, a stopped cluster, Ctrl-C) does only the missing shards.
summary.json counts images, faces, failures and labels over every shard.

On a cluster (`ray start --head` on one machine, `ray start --address=HEAD:6379` on the
others, then --address HEAD:6379 or RAY_ADDRESS), DIR and the images must be on a file system
every machine sees under the same paths.

Exit status: 0 done, 2 bad source, option or output folder, 130 interrupted (the finished
shards stay; run the command again to do the rest).
"""

from __future__ import annotations

import argparse
import ctypes
import glob
import json
import logging
import multiprocessing
import os
import signal
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from tqdm import tqdm

from ferlib import atomic, cli
from ferlib.model_folder import ModelError
from predict.media import IMAGE_SUFFIXES, InputError, read_image, show
from predict.recognizer import DEFAULT_MODEL, DEFAULT_MODEL_HELP, SCHEMA, Recognizer

JOB_VERSION = 1


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = cli.Parser(
        prog="python -m predict.batch", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("source", help="a folder, a glob in quotes, or a text file listing image paths")
    parser.add_argument("--out", type=Path, required=True, help="the job's folder (new, empty, or this job's)")
    parser.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local: a process pool on this machine; ray: Ray Data actors, here or on a cluster (default: %(default)s)",
    )
    parser.add_argument("--address", help="a Ray cluster's address (--engine ray; default: RAY_ADDRESS or a local one)")
    parser.add_argument(
        "--workers",
        type=cli.number(1, 4096, int),
        default=os.cpu_count() or 1,
        help="processes (local) or actors (ray), each loading the model once (default: this machine's cores, "
        "%(default)s)",
    )
    parser.add_argument(
        "--shard-size",
        type=cli.number(1, 10**6, int),
        default=1000,
        help="images per shard file; an interrupted job redoes only unfinished shards (default: %(default)s)",
    )
    parser.add_argument(
        "--model",
        type=Path,
        default=DEFAULT_MODEL,
        help=f"model folder (default: {DEFAULT_MODEL_HELP})",
    )
    parser.add_argument(
        "--no-detect", action="store_true", help="the images are face crops: aligned as in training, then classified"
    )
    parser.add_argument("--raw", action="store_true", help="with --no-detect: each whole crop, not aligned")
    parser.add_argument("--min-face", type=cli.number(12, 100_000), default=40, help="smallest face (default: 40)")
    return parser.parse_args(argv)


def list_images(source: str) -> list[str]:
    """The image paths of a folder (recursively), a glob, or a list file, sorted."""
    path = Path(source)
    if path.is_dir():
        found = [str(p) for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    elif path.is_file():
        try:
            lines = path.read_text().splitlines()
        except UnicodeDecodeError as error:
            raise InputError(f"{source}: not a text list of image paths") from error
        found = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    elif any(c in source for c in "*?["):
        found = [p for p in glob.glob(source, recursive=True) if Path(p).suffix.lower() in IMAGE_SUFFIXES]
    else:
        raise InputError(f"{source}: no such folder, list file or glob")
    if not found:
        raise InputError(f"{source}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return sorted(found)


def plan(out: Path, images: list[str], shard_size: int, settings: dict) -> dict:
    """The job: a new one in an empty folder, or the one out holds if it is the same job."""
    job = {"version": JOB_VERSION, "settings": settings, "shards": [
        images[i : i + shard_size] for i in range(0, len(images), shard_size)
    ]}  # fmt: skip
    job_file = out / "job.json"
    if job_file.is_file():
        try:
            previous = json.loads(job_file.read_text())
        except (ValueError, OSError) as error:
            raise InputError(f"{job_file}: unreadable ({error}); choose another --out") from error
        if previous != job:
            raise InputError(f"--out {out}: holds a job over other images or settings; choose another --out")
        return job
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"--out {out}: not empty and not a batch job's folder; choose a new or empty folder")
    atomic.write_json(job_file, job)
    return job


def shard_file(out: Path, shard: int) -> Path:
    return out / f"shard-{shard:05d}.jsonl"


class ShardLabeller:
    """Loads the model once; labels whole shards and writes each one's JSON lines atomically."""

    def __init__(self, settings: dict):
        self.settings = settings
        self.recognizer = Recognizer(
            Path(settings["model"]),
            min_face=settings["min_face"],
            detect=settings["detect"],
            align_crops=not settings.get("raw"),
        )

    def __call__(self, batch: dict) -> dict:
        """Ray Data's batch interface: {"shard": [...], "images": [...]} -> counts per shard."""
        done = [self.label(int(shard), list(images)) for shard, images in zip(batch["shard"], batch["images"])]
        return {"shard": [d[0] for d in done], "images": [d[1] for d in done]}

    def label(self, shard: int, images: list[str]) -> tuple[int, int]:
        docs, pictures = {}, {}
        for path in images:
            try:
                pictures[path] = read_image(Path(path))
            except (InputError, ValueError, OSError, MemoryError) as error:
                docs[path] = {"file": path, "error": str(error)}
        if self.settings["detect"]:
            found = {path: self.recognizer.faces(picture) for path, picture in pictures.items()}
        else:  # face crops: the whole shard through the net in one batch
            found = {path: [face] for path, face in zip(pictures, self.recognizer.crops(list(pictures.values())))}
        for path, picture in pictures.items():
            height, width = picture.shape[:2]
            docs[path] = {"schema": SCHEMA, "model": self.recognizer.model, "file": path}
            docs[path].update({"width": width, "height": height, "faces": found[path]})
        lines = [json.dumps(docs[path]) for path in images]
        atomic.write_text(shard_file(Path(self.settings["out"]), shard), "\n".join(lines) + "\n")
        return shard, len(images)


_labeller: ShardLabeller | None = None


PR_SET_PDEATHSIG = 1  # Linux prctl(2): a signal for this process when its parent dies


def _end_with_driver(driver: int) -> None:
    """A pool worker whose driver was killed would wait on its task pipe forever (it inherited
    the pipe's writing end, so it never reads end-of-file): on Linux the kernel kills it when
    the driver goes (SIGKILL: SIGTERM is Ctrl-C here, ferlib.cli, and can leave it hanging on
    its way out; its shards are written whole or not at all), and it ends now if the driver
    has already gone. Elsewhere, nothing."""
    try:
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError, TypeError):  # no prctl (not Linux), or no CDLL(None) (Windows)
        return
    if os.getppid() != driver:
        os._exit(1)


def _start_worker(settings: dict, driver: int) -> None:
    global _labeller
    _end_with_driver(driver)
    _labeller = ShardLabeller(settings)


def _label_shard(shard: int, images: list[str]) -> tuple[int, int]:
    return _labeller.label(shard, images)


def run_local(job: dict, todo: list[int], workers: int, bar: tqdm) -> None:
    # spawned, not forked: a fork copies the locks other threads (OpenCV's, a progress bar's)
    # hold at that moment, and a worker that needs one waits forever
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        workers, mp_context=spawn, initializer=_start_worker, initargs=(job["settings"], os.getpid())
    ) as pool:
        for future in as_completed([pool.submit(_label_shard, i, job["shards"][i]) for i in todo]):
            bar.update(future.result()[1])


def run_ray(job: dict, todo: list[int], workers: int, address: str | None, bar: tqdm) -> None:
    import ray

    logging.getLogger("ray").setLevel(logging.WARNING)  # the progress bar here says how far it is
    ray.data.DataContext.get_current().enable_progress_bars = False
    if address or os.environ.get("RAY_ADDRESS"):
        ray.init(address=address, log_to_driver=False)
    else:
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    try:
        data = ray.data.from_items([{"shard": i, "images": job["shards"][i]} for i in todo])
        labelled = data.map_batches(
            ShardLabeller,
            fn_constructor_args=(job["settings"],),
            batch_size=1,
            concurrency=workers,
            num_cpus=1,
        )
        for row in labelled.iter_rows():
            bar.update(row["images"])
    finally:
        ray.shutdown()


def summarise(out: Path, job: dict, seconds: float, engine: str, workers: int) -> dict:
    """Counts over every shard file."""
    images = faces = failed = 0
    labels: Counter = Counter()
    for shard in range(len(job["shards"])):
        for line in shard_file(out, shard).read_text().splitlines():
            doc = json.loads(line)
            images += 1
            if "error" in doc:
                failed += 1
                continue
            faces += len(doc["faces"])
            labels.update(face["label"] for face in doc["faces"])
    summary = {
        "images": images,
        "failed": failed,
        "faces": faces,
        "labels": dict(labels.most_common()),
        "shards": len(job["shards"]),
        "engine": engine,
        "workers": workers,
        "seconds_this_run": round(seconds, 1),
    }
    atomic.write_json(out / "summary.json", summary)
    return summary


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.time()
    try:
        images = list_images(args.source)
        settings = {
            "model": str(args.model.resolve()),
            "min_face": args.min_face,
            "detect": not args.no_detect,
            "raw": args.raw,
            "out": str(args.out.resolve()),
        }
        if args.raw and not args.no_detect:
            raise InputError("--raw: only with --no-detect (face crops)")
        Recognizer(args.model, detect=not args.no_detect)  # a broken model fails here, once
        job = plan(args.out, images, args.shard_size, settings)
    except (InputError, ModelError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    todo = [i for i in range(len(job["shards"])) if not shard_file(args.out, i).is_file()]
    done_before = sum(len(job["shards"][i]) for i in range(len(job["shards"])) if i not in set(todo))
    bar = tqdm(total=len(images), initial=done_before, desc="images", unit=" images", file=sys.stderr)
    try:
        if todo:
            workers = min(args.workers, len(todo))
            if args.engine == "ray":
                run_ray(job, todo, workers, args.address, bar)
            else:
                run_local(job, todo, workers, bar)
    except KeyboardInterrupt:
        bar.close()
        left = sum(not shard_file(args.out, i).is_file() for i in range(len(job["shards"])))
        print(f"\ninterrupted: {left} shards left; the same command does them", file=sys.stderr)
        return cli.INTERRUPTED
    bar.close()
    summary = summarise(args.out, job, time.time() - started, args.engine, args.workers)
    done_now = len(images) - done_before
    rate = done_now / max(time.time() - started, 1e-9)
    print(
        f"{summary['images']} images ({summary['failed']} failed), {summary['faces']} faces in {summary['shards']} "
        f"shards; this run {done_now} images, {rate:.1f} images/s; wrote {show(args.out)}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    cli.run(main)
