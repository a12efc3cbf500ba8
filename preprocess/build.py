"""FER2013 csv -> images -> aligned faces -> one LMDB per split -> training mean.

Everything is built in a temporary folder beside the destination and swapped into place
only when complete (ferlib.atomic), so training never sees a half-written dataset, and only
a folder this tool made (its manifest.json) is ever replaced.
"""

from __future__ import annotations

import multiprocessing
import platform
import shutil
import signal
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import lmdb
import numpy as np
from tqdm import tqdm

from ferlib import atomic, caffe_proto, ferplus
from ferlib.dataset import (
    DATASET_FOLDER,
    LMDB_KEY,
    DatasetError,
    complete,
    file_sha256,
    lmdb_key,
    read_manifest,
    write_manifest,
)
from ferlib.faces import DEFAULT_TEMPLATE, TEMPLATES, FaceDetector
from ferlib.lmdb_io import write_lmdb, write_vectors
from preprocess.fer_csv import CLASSES, SPLITS, BadRow, NotFer2013Error, read_rows

FORMAT_VERSION = 1
CHUNK = 64  # faces per detection batch: one MTCNN cascade run each


class DataError(Exception):
    """Input or output that preprocessing cannot use: bad rows under --strict, an --out that
    is not its to replace, a full disk."""


@dataclass(frozen=True)
class Settings:
    """Everything that determines the output; a rerun with equal settings and input is a no-op."""

    size: int = 48
    align: bool = True
    template: str = DEFAULT_TEMPLATE
    seed: int = 1
    images: bool = True
    min_face_size: float = 20.0
    raw_view: bool = False  # Training also holds each plain crop: nets that need no alignment

    def fingerprint(self) -> dict:
        """The settings that identify a dataset; raw_view only when on, so that datasets made
        before it existed stay up to date."""
        return {k: v for k, v in self.__dict__.items() if k != "raw_view" or v}


@dataclass
class Split:
    """One split's rows, in input order: csv rows (images are the 48x48 crops, aligned later)
    or a folder's files (images already aligned, found set)."""

    name: str
    rows: list[int] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    images: list[np.ndarray] = field(default_factory=list)
    found: list[bool] | None = None
    targets: list[np.ndarray] | None = None  # soft targets (FER+'s vote distributions), one per row


def read_csv(
    csv: Path, strict: bool, ferplus_csv: Path | None = None
) -> tuple[dict[str, Split], list[BadRow], str, Counter]:
    """All valid rows by split, the bad rows, the sha256 of the csv text, and (with FER+
    labels) how many rows were left without a label, by reason."""
    rows, reader = read_rows(csv)
    plus = ferplus.read_labels(ferplus_csv) if ferplus_csv else None
    splits = {name: Split(name, targets=[] if plus is not None else None) for name in SPLITS.values()}
    bad: list[BadRow] = []
    unlabelled: Counter = Counter()
    for row in tqdm(rows, desc="read csv", unit=" rows", total=None, file=sys.stderr):
        label = votes = None
        if plus is not None:  # one FER+ row per csv data row, valid or not
            usage, label, votes = next(plus, (None, None, None))
            if usage is None:
                raise NotFer2013Error(f"{ferplus_csv}: fewer rows than {csv}")
        if isinstance(row, BadRow):
            if strict:
                raise DataError(f"{csv}: line {row.line}: {row.reason}")
            bad.append(row)
            if len(bad) <= 20:
                tqdm.write(f"{csv}: line {row.line}: {row.reason} (row skipped)", file=sys.stderr)
            continue
        if plus is not None:
            if SPLITS.get(usage) != row.split:
                raise NotFer2013Error(f"{ferplus_csv}: line {row.index + 2}: Usage {usage!r} differs from {csv}")
            if isinstance(label, str):
                unlabelled[label] += 1
                continue
        split = splits[row.split]
        split.rows.append(row.index)
        split.labels.append(row.label if label is None else label)
        split.images.append(row.image)
        if split.targets is not None:
            split.targets.append(votes)
    if plus is not None and next(plus, None) is not None:
        raise NotFer2013Error(f"{ferplus_csv}: more rows than {csv}")
    if len(bad) > 20:
        tqdm.write(f"... {len(bad) - 20} more bad rows, all listed in manifest.json", file=sys.stderr)
    return splits, bad, reader.sha256.hexdigest(), unlabelled


_detector = None


def _init_worker(min_face_size: float) -> None:
    """Per worker process: one thread for OpenCV, one detector; Ctrl-C is the parent's to
    report (the pool is terminated), so workers ignore it."""
    global _detector
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    cv2.setNumThreads(1)
    _detector = FaceDetector(min_face_size=min_face_size)


def _align_chunk(args: tuple[np.ndarray, int, str]) -> list[np.ndarray | None]:
    crops, size, template = args
    return _detector.prepare_crops(crops, size, template)


def align_faces(images: np.ndarray, settings: Settings, workers: int, desc: str) -> tuple[np.ndarray, np.ndarray]:
    """Aligned faces (N, size, size) and whether a face was found, for (N, 48, 48) crops.

    A crop without a face becomes the plain crop resized to the output size."""
    chunks = [(images[i : i + CHUNK], settings.size, settings.template) for i in range(0, len(images), CHUNK)]
    bar = tqdm(total=len(images), desc=desc, unit=" faces", file=sys.stderr)
    global _detector
    detector = FaceDetector(min_face_size=settings.min_face_size)  # fails here, not in workers respawned forever
    if workers > 1:
        pool = multiprocessing.get_context("spawn").Pool(workers, _init_worker, (settings.min_face_size,))
        results = pool.imap(_align_chunk, chunks)
    else:
        pool = None
        _detector = detector
        results = map(_align_chunk, chunks)
    aligned, found = [], []
    try:
        for (crops, _, _), faces in zip(chunks, results):
            for crop, face in zip(crops, faces):
                found.append(face is not None)
                aligned.append(
                    face
                    if face is not None
                    else cv2.resize(crop, (settings.size, settings.size), interpolation=cv2.INTER_LINEAR)
                )
            bar.update(len(crops))
    finally:
        bar.close()
        if pool is not None:
            pool.terminate()
    return np.stack(aligned), np.array(found, dtype=bool)


def write_pngs(root: Path, split: str, rows: list[int], labels: list[int], images: np.ndarray) -> None:
    """images/<split>/<label>/<row>.png, the layout users browse."""
    for label in set(labels):
        (root / split / str(label)).mkdir(parents=True, exist_ok=True)
    for row, label, image in tqdm(
        list(zip(rows, labels, images)), desc=f"write {root.name}/{split}", unit=" png", file=sys.stderr, leave=False
    ):
        ok, png = cv2.imencode(".png", image)
        (root / split / str(label) / f"{row}.png").write_bytes(png.tobytes())


def with_raw_view(
    split: Split, faces: np.ndarray, found: np.ndarray, size: int
) -> tuple[Split, np.ndarray, np.ndarray]:
    """The split with a second record of every row: its plain crop resized, as
    `predict --no-detect --raw` sees a face, with the same label (and soft target).

    A net trained on both views learns faces that alignment never straightened; each row's
    raw record is marked not found, so index.csv tells the views apart."""
    plain = np.stack([cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR) for image in split.images])
    doubled = Split(
        split.name,
        rows=split.rows * 2,
        labels=split.labels * 2,
        images=split.images * 2,
        targets=split.targets * 2 if split.targets is not None else None,
    )
    return doubled, np.concatenate([faces, plain]), np.concatenate([found, np.zeros(len(plain), dtype=bool)])


def lmdb_order(split: Split, seed: int) -> np.ndarray:
    """Positions in which records are written: shuffled for train (fixed seed), csv order else."""
    order = np.arange(len(split.rows))
    if split.name == "train":
        np.random.default_rng(seed).shuffle(order)
    return order


def keyed(split: Split, order: np.ndarray) -> Iterator[tuple[str, int]]:
    """(LMDB key, index into the split) in write order."""
    for position, i in enumerate(order):
        yield lmdb_key(position, split.rows[i]), i


def records(split: Split, faces: np.ndarray, order: np.ndarray) -> Iterator[tuple[str, np.ndarray, int]]:
    """(key, image, label) in write order."""
    for key, i in keyed(split, order):
        yield key, faces[i], split.labels[i]


def training_mean(faces: np.ndarray) -> np.ndarray:
    """(1, H, W) float32 mean, computed as Caffe's compute_image_mean does (float sums)."""
    total = faces.astype(np.float32).sum(axis=0, dtype=np.float32)  # exact: sums stay below 2**24
    return (total / np.float32(len(faces)))[None].astype(np.float32)


def train_duplicates(splits: dict[str, Split]) -> dict[str, np.ndarray]:
    """For val and test: whether each image is a pixel copy of a training image."""
    seen = {image.tobytes() for image in splits["train"].images}
    return {
        name: np.array([image.tobytes() in seen for image in split.images], dtype=bool)
        for name, split in splits.items()
        if name != "train"
    }


def check_out(out: Path, inputs: list[Path]) -> None:
    """Refuse an --out that is or holds an input, one that a dataset must not replace
    (atomic.check_replaceable: a file, a link, a folder of someone else's), or one whose
    manifest is unreadable."""
    for path in inputs:
        if path.resolve().is_relative_to(out.resolve()):
            raise DataError(f"--out {out}: is or holds the input {path}; choose another folder (nothing was changed)")
    try:
        atomic.check_replaceable(out, DATASET_FOLDER)
    except FileExistsError as error:
        raise DataError(f"--out {out}: {error.strerror}") from error
    try:
        read_manifest(out)
    except DatasetError as error:
        raise DataError(f"{error}; {out} was left as it is: remove it or choose another --out") from error


def required_bytes(rows: int, settings: Settings) -> int:
    """A generous estimate of the disk a dataset of rows faces takes: LMDB records with the
    B-tree's slack, and two PNGs per row in their own filesystem blocks."""
    face = settings.size * settings.size
    return rows * (2 * (face + 64) + (2 * max(4096, face + 512) if settings.images else 0)) + (16 << 20)


def build(
    csv: Path,
    out: Path,
    settings: Settings,
    workers: int = 2,
    strict: bool = False,
    force: bool = False,
    ferplus_csv: Path | None = None,
) -> dict | None:
    """Run the whole preprocessing; the manifest, or None when out is already up to date.
    With ferplus_csv, the labels are FER+'s majority votes (8 classes)."""
    started = time.time()
    fingerprint = {
        "format": FORMAT_VERSION,
        "input_file_sha256": file_sha256(csv),
        **settings.fingerprint(),
        "ferplus_sha256": file_sha256(ferplus_csv) if ferplus_csv else None,
        **({"targets": "ferplus vote distributions"} if ferplus_csv else {}),
    }
    atomic.sweep(out.parent)  # puts back a dataset that a killed run had moved aside
    check_out(out, [csv, *([ferplus_csv] if ferplus_csv else [])])
    if not force and complete(out, fingerprint):
        return None
    try:
        with atomic.replacing_folder(out, DATASET_FOLDER) as tmp:
            return _build_into(tmp, csv, settings, workers, strict, fingerprint, started, ferplus_csv)
    except (OSError, lmdb.Error) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise DataError(f"{out}: cannot write the dataset ({reason}); nothing was changed") from error


def _build_into(
    tmp: Path,
    csv: Path,
    settings: Settings,
    workers: int,
    strict: bool,
    fingerprint: dict,
    started: float,
    ferplus_csv: Path | None,
) -> dict:
    splits, bad, csv_sha256, unlabelled = read_csv(csv, strict, ferplus_csv)
    source = {
        "input": {
            "path": str(csv.resolve()),
            "file_sha256": fingerprint["input_file_sha256"],
            "csv_sha256": csv_sha256,
            "ferplus": str(ferplus_csv.resolve()) if ferplus_csv else None,
            "ferplus_sha256": fingerprint["ferplus_sha256"],
        },
        "labels": "ferplus (majority vote)" if ferplus_csv else "fer2013",
        "unlabelled_by_ferplus": dict(unlabelled),
        "bad_rows": {"count": len(bad), "rows": [{"line": b.line, "reason": b.reason} for b in bad]},
    }
    classes = ferplus.CLASSES if ferplus_csv else CLASSES
    timings = {"read_csv_s": round(time.time() - started, 1)}
    empty = f"{csv}: no valid Training rows"
    return write_dataset(tmp, splits, classes, settings, workers, fingerprint, source, timings, started, empty)


def write_dataset(
    tmp: Path,
    splits: dict[str, Split],
    classes: tuple[str, ...],
    settings: Settings,
    workers: int,
    fingerprint: dict,
    source: dict,
    timings: dict,
    started: float,
    no_train: str,
) -> dict:
    """Align (csv crops), write the LMDBs, mean, index.csv and the manifest (source gives its
    input-specific fields) into tmp; returns the manifest. no_train says what is missing
    when there is no training image."""
    rows = sum(len(split.rows) for split in splits.values())
    need, free = required_bytes(rows, settings), shutil.disk_usage(tmp).free
    if need > free:
        raise DataError(
            f"{tmp.parent}: {free / 2**20:.0f} MiB free, about {need / 2**20:.0f} MiB needed for {rows} faces"
            + (" (--no-images needs less)" if settings.images else "")
            + "; nothing was changed"
        )
    duplicates = train_duplicates(splits)
    counts, found_counts, index_lines = {}, {}, ["split,key,row,label,face_found,copy_of_train,view"]
    for name, split in splits.items():
        if not split.rows:
            continue
        images = np.stack(split.images)
        if settings.images and split.found is None:
            write_pngs(tmp / "images", name, split.rows, split.labels, images)
        start = time.time()
        if split.found is not None:
            faces, found = images, np.array(split.found, dtype=bool)
        elif settings.align:
            faces, found = align_faces(images, settings, workers, desc=f"align {name}")
        else:
            faces = np.stack([cv2.resize(im, (settings.size, settings.size)) for im in images])
            found = np.zeros(len(images), dtype=bool)
        timings[f"align_{name}_s"] = round(time.time() - start, 1)
        if settings.images:
            write_pngs(tmp / "aligned", name, split.rows, split.labels, faces)
        views = ["aligned" if settings.align else "raw"] * len(split.rows)
        if name == "train" and settings.raw_view and settings.align and split.found is None:
            split, faces, found = with_raw_view(split, faces, found, settings.size)
            views += ["raw"] * len(views)
        order = lmdb_order(split, settings.seed)
        start = time.time()
        write_lmdb(
            tmp / f"{name}_lmdb",
            tqdm(records(split, faces, order), total=len(order), desc=f"lmdb {name}", unit=" records", file=sys.stderr),
        )
        if name == "train" and split.targets is not None:  # soft targets in the same order, for python -m train --soft
            write_vectors(tmp / "train_targets_lmdb", ((k, split.targets[i]) for k, i in keyed(split, order)))
        timings[f"lmdb_{name}_s"] = round(time.time() - start, 1)
        copies = duplicates.get(name, np.zeros(len(order), dtype=bool))
        for key, i in keyed(split, order):
            row = f"{name},{key},{split.rows[i]},{split.labels[i]},{int(found[i])},{int(copies[i])}"
            index_lines.append(f"{row},{views[i]}")
        if name == "train":
            mean = training_mean(faces)
            (tmp / "mean.binaryproto").write_bytes(caffe_proto.blob_proto(mean))
            np.save(tmp / "mean.npy", mean)
        label_counts = Counter(split.labels)
        counts[name] = {"total": len(split.rows), **{classes[c]: label_counts.get(c, 0) for c in range(len(classes))}}
        found_counts[name] = {
            "found": int(found.sum()),
            "not_found": int((~found).sum()),
            "copies_of_train": int(copies.sum()),
        }
    if "train" not in counts:
        raise DataError(f"{no_train}, so there is nothing to train on or take a mean of")
    (tmp / "index.csv").write_text("\n".join(index_lines) + "\n")
    checked = ["index.csv", "mean.binaryproto", "mean.npy", *(f"{name}_lmdb/data.mdb" for name in counts)]
    checked += [name for name in ("files.csv", "train_targets_lmdb/data.mdb") if (tmp / name).exists()]
    manifest = {
        "fingerprint": fingerprint,
        **source,
        "settings": {
            **settings.__dict__,
            "workers": workers,
            "template_points_48": TEMPLATES[settings.template].tolist() if settings.align else None,
            "lmdb_key": LMDB_KEY,
            "train_shuffle_seed": settings.seed,
        },
        "classes": list(classes),
        "counts": counts,
        "faces": found_counts,
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "opencv": cv2.__version__,
            "format": FORMAT_VERSION,
        },
        "outputs": {p.name: _size(p) for p in sorted(tmp.iterdir())},
        "timings": {**timings, "total_s": round(time.time() - started, 1)},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    return write_manifest(tmp, manifest, checked)


def _size(path: Path) -> int:
    """Bytes in a file or folder."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
