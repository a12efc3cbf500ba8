"""A folder of labelled face images -> the same dataset as the csv path (aligned LMDBs, mean,
index.csv, manifest.json), plus files.csv naming the file behind every row.

Layout: one subfolder per class (`ROOT/<class>/...`), split by this tool (stratified by
class, seeded, and grouped by subject when a regex finds the subject in file names, so that
frames of one person never land on both sides), or split by the user
(`ROOT/train/<class>/...`, `ROOT/val/...`, `ROOT/test/...`). A mapping file can map the folder
names onto FER2013's seven classes (or drop a folder); without one, folders named like
FER2013's classes keep FER2013's order, and other names become the classes, sorted.

A file that is not an image, or that OpenCV cannot read, is reported by name and skipped.
A face crop (no side over SMALL_SIDE pixels) is aligned as the csv's 48x48 crops are
(padded, MTCNN, five landmarks); a larger photo gets MTCNN on the whole picture and its most
central large face aligned; with no face found, the centre square is resized and counted.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from ferlib import atomic
from ferlib.classes import FER2013
from ferlib.cvio import IMAGE_SUFFIXES, decode_image
from ferlib.dataset import DATASET_FOLDER, complete, file_sha256
from ferlib.faces import FaceDetector, align, central_face
from preprocess.build import FORMAT_VERSION, DataError, Settings, Split, check_out, write_dataset

SPLIT_FOLDERS = ("train", "val", "test")
SMALL_SIDE = 128  # larger images are photos: the face is found in the whole picture
MAX_LISTED = 20  # bad files printed; all are in manifest.json


@dataclass(frozen=True)
class FolderOptions:
    """How a folder becomes a dataset, besides the image Settings."""

    mapping: Path | None = None  # JSON {folder name: FER2013 class or null}
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)  # train, val, test when the tool splits
    subject: str | None = None  # regex whose first group (or match) is the subject id in a file name


@dataclass
class Item:
    """One image file: where it is, its class folder, its split when the user gave one."""

    path: Path
    folder: str
    split: str | None
    subject: str = ""
    label: int = -1


def class_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def list_items(root: Path) -> tuple[list[Item], bool]:
    """Every file under the class folders (hidden ones left out), and whether the user split."""
    tops = {p.name for p in class_folders(root)}
    user_split = "train" in tops
    if user_split and not set(SPLIT_FOLDERS) <= tops:
        missing = ", ".join(f"{s}/" for s in SPLIT_FOLDERS if s not in tops)
        raise DataError(f"{root}: has train/ but not {missing}: give train/, val/ and test/, or class folders only")
    items = []
    for split in SPLIT_FOLDERS if user_split else (None,):
        base = root / split if split else root
        for folder in class_folders(base):
            files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
            items += [Item(path, folder.name, split) for path in files]
    if not items:
        raise DataError(f"{root}: no files in class folders (expected <class>/<image> or train/<class>/<image>)")
    return items, user_split


def read_mapping(path: Path) -> dict[str, str | None]:
    """{folder name: FER2013 class name or None (leave the folder out)}."""
    try:
        mapping = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"--map {path}: not a readable JSON file ({error})") from error
    if not isinstance(mapping, dict):
        raise DataError(f'--map {path}: expected an object {{"folder": "Happy" or null, ...}}')
    for folder, target in mapping.items():
        if target is not None and target not in FER2013:
            raise DataError(f"--map {path}: {folder!r} -> {target!r}: expected one of {', '.join(FER2013)} or null")
    return mapping


def class_names(folders: set[str], mapping: dict[str, str | None] | None, root: Path) -> tuple[str, ...]:
    """The dataset's classes: FER2013's with a mapping or when every folder is named after
    one of them (any case), else the folder names, sorted."""
    if mapping is not None:
        unmapped = sorted(folders - set(mapping))
        if unmapped:
            raise DataError(f"{root}: class folders {', '.join(unmapped)} are not in the --map file")
        return FER2013
    if {f.lower() for f in folders} <= {c.lower() for c in FER2013}:
        return FER2013
    if len(folders) < 2:
        raise DataError(f"{root}: one class folder ({', '.join(folders)}); a classifier needs two or more")
    return tuple(sorted(folders))


def label_items(items: list[Item], classes: tuple[str, ...], mapping: dict[str, str | None] | None) -> list[Item]:
    """Items with their label; those of a folder mapped to null are left out."""
    index = {c.lower(): i for i, c in enumerate(classes)}
    kept = []
    for item in items:
        name = mapping[item.folder] if mapping is not None else item.folder
        if name is not None:
            item.label = index[name.lower()]
            kept.append(item)
    return kept


def subjects(items: list[Item], pattern: str | None, root: Path) -> None:
    """Set each item's subject: the regex's first group (or whole match) in its file name;
    without a regex every file is its own subject."""
    if pattern is None:
        for item in items:
            item.subject = str(item.path.relative_to(root))
        return
    try:
        regex = re.compile(pattern)
    except re.error as error:
        raise DataError(f"--subject {pattern!r}: not a regular expression ({error})") from error
    unmatched = []
    for item in items:
        match = regex.search(item.path.name)
        if match is None:
            unmatched.append(item.path)
            continue
        item.subject = match.group(1) if regex.groups else match.group(0)
    if unmatched:
        raise DataError(
            f"--subject {pattern!r}: no subject in {len(unmatched)} of {len(items)} file names, "
            f"e.g. {unmatched[0].relative_to(root)}"
        )


def assign_splits(items: list[Item], fractions: tuple[float, float, float], seed: int) -> None:
    """Split by subject, stratified by each subject's most common class: within each class,
    the subjects are shuffled (seeded) and dealt out by the fractions, at least one to each
    split when there are three or more."""
    by_subject: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        by_subject[item.subject].append(item)
    strata: dict[int, list[str]] = defaultdict(list)
    for subject, members in sorted(by_subject.items()):
        labels = [m.label for m in members]
        strata[max(set(labels), key=lambda c: (labels.count(c), -c))].append(subject)
    rng = np.random.default_rng(seed)
    for _, group in sorted(strata.items()):
        order = [group[i] for i in rng.permutation(len(group))]
        n = len(order)
        n_val = max(1, round(n * fractions[1])) if n >= 3 else 0
        n_test = max(1, round(n * fractions[2])) if n >= 3 else 0
        for position, subject in enumerate(order):
            split = "val" if position < n_val else "test" if position < n_val + n_test else "train"
            for item in by_subject[subject]:
                item.split = split


def read_gray(path: Path) -> np.ndarray | str:
    """The image as 8-bit gray, upright as its EXIF says; or why it cannot be used."""
    try:
        image = decode_image(path, cv2.IMREAD_GRAYSCALE)
    except (cv2.error, MemoryError):
        return "too large to decode"
    except OSError as error:
        return f"cannot read ({error.strerror})"
    if image is None or image.size == 0:
        return "not a readable image (truncated, corrupt or not an image)"
    return image


def centre_square(image: np.ndarray, size: int) -> np.ndarray:
    height, width = image.shape
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return cv2.resize(image[top : top + side, left : left + side], (size, size), interpolation=cv2.INTER_AREA)


def aligned_face(detector: FaceDetector | None, image: np.ndarray, settings: Settings) -> tuple[np.ndarray, bool]:
    """The face aligned onto the template, and whether one was found (else the centre square)."""
    if detector is not None:
        if max(image.shape) <= SMALL_SIDE:  # a face crop: found as predict --no-detect finds it
            face = detector.faces_in_crops([image])[0]
        else:
            faces = detector.detect(image)
            face = central_face(faces, image.shape) if faces else None
        if face is not None:
            return align(image, face, settings.size, settings.template), True
    return centre_square(image, settings.size), False


def listing_sha256(items: list[Item], root: Path) -> str:
    """A checksum of the file list (names, sizes, modification times): a changed folder is
    rebuilt, an unchanged one is not read again."""
    digest = hashlib.sha256()
    for item in items:
        stat = item.path.stat()
        digest.update(f"{item.path.relative_to(root)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def build_folder(
    root: Path, out: Path, settings: Settings, options: FolderOptions = FolderOptions(), force: bool = False
) -> dict | None:
    """The dataset of a labelled folder in out; its manifest, or None when out is up to date."""
    started = time.time()
    if not root.is_dir():
        raise DataError(f"--folder {root}: {'not a folder' if root.exists() else 'no such folder'}")
    mapping = read_mapping(options.mapping) if options.mapping else None
    items, user_split = list_items(root)
    others = [item for item in items if item.path.suffix.lower() not in IMAGE_SUFFIXES]
    items = [item for item in items if item.path.suffix.lower() in IMAGE_SUFFIXES]
    classes = class_names({item.folder for item in items}, mapping, root)
    items = label_items(items, classes, mapping)
    subjects(items, options.subject, root)
    fingerprint = {
        "format": FORMAT_VERSION,
        "folder_listing_sha256": listing_sha256(items, root),
        "mapping_sha256": file_sha256(options.mapping) if options.mapping else None,
        "split": "user" if user_split else list(options.fractions),
        "subject": options.subject,
        **settings.fingerprint(),
    }
    atomic.sweep(out.parent)
    check_out(out, [root, *([options.mapping] if options.mapping else [])])
    if not force and complete(out, fingerprint):
        return None
    if not user_split:
        assign_splits(items, options.fractions, settings.seed)
    detector = FaceDetector(min_face_size=settings.min_face_size) if settings.align else None
    splits = {name: Split(name, found=[]) for name in SPLIT_FOLDERS}
    bad, rows = [], io.StringIO()
    for item in others:
        bad.append(
            {
                "file": str(item.path.relative_to(root)),
                "reason": f"not an image file ({item.path.suffix or 'no extension'})",
            }
        )
        if len(bad) <= MAX_LISTED:
            tqdm.write(f"{item.path}: {bad[-1]['reason']} (skipped)", file=sys.stderr)
    listing = csv.writer(rows)
    listing.writerow(["row", "split", "label", "class", "file", "subject"])
    for row, item in enumerate(tqdm(items, desc="read and align", unit=" files", file=sys.stderr)):
        image = read_gray(item.path)
        name = str(item.path.relative_to(root))
        if isinstance(image, str):
            bad.append({"file": name, "reason": image})
            if len(bad) <= MAX_LISTED:
                tqdm.write(f"{item.path}: {image} (skipped)", file=sys.stderr)
            continue
        face, found = aligned_face(detector, image, settings)
        split = splits[item.split]
        split.rows.append(row)
        split.labels.append(item.label)
        split.images.append(face)
        split.found.append(found)
        listing.writerow([row, item.split, item.label, classes[item.label], name, item.subject])
    empty = [name for name, split in splits.items() if not split.rows]
    if empty:
        raise DataError(
            f"{root}: no readable images in {', '.join(empty)} ({len({i.subject for i in items})} subjects): "
            "give each split images (three or more subjects per class when this tool splits)"
        )
    if len(bad) > MAX_LISTED:
        tqdm.write(f"... {len(bad) - MAX_LISTED} more bad files, all listed in manifest.json", file=sys.stderr)
    source = {
        "input": {
            "folder": str(root.resolve()),
            "listing_sha256": fingerprint["folder_listing_sha256"],
            "mapping": str(options.mapping.resolve()) if options.mapping else None,
            "mapping_sha256": fingerprint["mapping_sha256"],
        },
        "labels": "folder",
        "split": {
            "by": "user (train/, val/, test/)" if user_split else "preprocess",
            "fractions": None if user_split else list(options.fractions),
            "subject_regex": options.subject,
            "subjects": len({item.subject for item in items}),
            "seed": settings.seed,
        },
        "bad_files": {"count": len(bad), "files": bad},
    }
    timings = {"read_align_s": round(time.time() - started, 1)}
    try:
        with atomic.replacing_folder(out, DATASET_FOLDER) as tmp:
            (tmp / "files.csv").write_text(rows.getvalue())
            empty = f"{root}: no readable training images"
            return write_dataset(tmp, splits, classes, settings, 1, fingerprint, source, timings, started, empty)
    except OSError as error:
        raise DataError(f"{out}: cannot write the dataset ({error.strerror or error}); nothing was changed") from error
