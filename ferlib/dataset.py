"""The dataset-folder format that `make preprocess` writes and training, evaluation and
ensembles read: the only code that reads or writes a dataset's manifest.json.

A dataset folder holds train_lmdb, val_lmdb (PublicTest) and test_lmdb (PrivateTest) of
Caffe Datum records, mean.binaryproto + mean.npy (the training mean), index.csv (split, LMDB
key, csv row, label, face found, copy of a training image, view) and manifest.json (the
fingerprint of input and settings, counts, classes, the size of each file it lists).
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import lmdb
import numpy as np

from ferlib import atomic
from ferlib.classes import FER2013
from ferlib.lmdb_io import lmdb_size, read_lmdb

SPLIT_NAMES = {"val": "PublicTest", "test": "PrivateTest"}
FOLDER_SPLIT_NAMES = {"val": "val", "test": "test"}
LMDB_KEY = "<position:08d>_<row:05d>"  # as the manifest describes lmdb_key()
MANIFEST = "manifest.json"  # every dataset folder holds one
DATASET_FOLDER = atomic.Kind("a dataset folder (manifest.json)", lambda folder: (folder / MANIFEST).is_file())


def lmdb_key(position: int, row: int) -> str:
    """Keys sort in write order and end with the csv row they came from."""
    return f"{position:08d}_{row:05d}"


def key_row(key: str) -> str:
    """The csv row (or file-list row) an LMDB key came from: the same for every record of one
    face (preprocess --raw-view writes two)."""
    return key.rsplit("_", 1)[-1]


def split_names(manifest: dict | None) -> dict[str, str]:
    """What reports call the val and test splits: FER2013's PublicTest and PrivateTest, or
    plain val and test for a folder dataset (preprocess --folder)."""
    return FOLDER_SPLIT_NAMES if "folder" in (manifest or {}).get("input", {}) else SPLIT_NAMES


class DatasetError(Exception):
    """A dataset folder that is missing, incomplete or not this tool's; the message says which."""


def file_sha256(path: Path) -> str:
    """sha256 of the file's bytes as stored (compressed if it is a .gz)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(folder: Path) -> dict | None:
    """A dataset folder's manifest; None when it has no manifest.json; DatasetError for one
    that cannot be read (the folder is then nobody's to replace)."""
    path = folder / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError, OSError) as error:
        raise DatasetError(f"{path}: unreadable ({error})") from error
    if not isinstance(manifest, dict) or not isinstance(manifest.get("fingerprint", {}), dict):
        raise DatasetError(f"{path}: not a manifest of this tool")
    return manifest


def write_manifest(folder: Path, manifest: dict, checked: list[str]) -> dict:
    """manifest.json, with the sizes of the checked files (relative paths) that complete()
    verifies later; returns the manifest written."""
    manifest = {**manifest, "files": {name: (folder / name).stat().st_size for name in checked}}
    atomic.write_json(folder / "manifest.json", manifest)
    return manifest


def complete(folder: Path, fingerprint: dict) -> bool:
    """Whether folder holds a whole, undamaged dataset made from the same input and settings:
    the fingerprint matches, every listed file has its recorded size, every LMDB its count."""
    try:
        manifest = read_manifest(folder)
    except DatasetError:
        return False
    if manifest is None or manifest.get("fingerprint") != fingerprint or not manifest.get("files"):
        return False
    for name, size in manifest["files"].items():
        path = folder / name
        if not path.is_file() or path.stat().st_size != size:
            return False
    try:
        return all(lmdb_size(folder / f"{split}_lmdb") == n["total"] for split, n in manifest.get("counts", {}).items())
    except lmdb.Error:
        return False


def training_manifest(folder: Path) -> dict:
    """The manifest of a dataset that training can use, or DatasetError saying what is missing."""
    needed = ("manifest.json", "train_lmdb", "val_lmdb", "mean.binaryproto")
    missing = [name for name in needed if not (folder / name).exists()]
    if missing:
        raise DatasetError(
            f"{folder} is not a complete preprocessed dataset (missing: {', '.join(missing)}); "
            "run 'make preprocess FER2013=path/to/fer2013.csv' first"
        )
    return read_manifest(folder)


def template(manifest: dict | None) -> str | None:
    """The template a dataset's faces were aligned with; None for unaligned crops. Manifests
    from before named templates say "preprocess.faces.TEMPLATE_48", which was arcface."""
    settings = (manifest or {}).get("settings", {})
    name = settings.get("template")
    return {"preprocess.faces.TEMPLATE_48": "arcface"}.get(name, name) if settings.get("align") else None


def dataset_template(folder: Path) -> str | None:
    """template() of a dataset folder's manifest (None without one)."""
    return template(read_manifest(folder))


def classes(folder: Path) -> tuple[str, ...]:
    """The class names the dataset was made with (FER2013's seven without a manifest)."""
    manifest = read_manifest(folder)
    return tuple((manifest or {}).get("classes") or FER2013)


def check_classes(labels: tuple[str, ...], folder: Path, model: Path) -> None:
    """Refuse to score a model on a dataset of other classes: each class index would name
    another class, and every figure would be wrong without an error."""
    expected = classes(folder)
    if tuple(labels) != expected:
        raise DatasetError(
            f"{model} has the classes {', '.join(labels)}, but {folder} holds {', '.join(expected)}: "
            "pass a dataset made with the model's classes"
        )


def load_split(folder: Path, split: str) -> dict:
    """Faces, labels and per-image facts (face found, copy of a training image) of one split."""
    if not (folder / f"{split}_lmdb").is_dir():
        raise DatasetError(f"{folder} lacks {split}_lmdb: run 'make preprocess' first")
    keys, images, labels = read_lmdb(folder / f"{split}_lmdb")
    facts = {}
    index = folder / "index.csv"
    if index.exists():
        with open(index) as handle:
            facts = {row["key"]: row for row in csv.DictReader(handle) if row["split"] == split}
    return {
        "keys": keys,
        "faces": images[:, 0],
        "labels": labels,
        "found": np.array([facts.get(k, {}).get("face_found") == "1" for k in keys]),
        "copies": np.array([facts.get(k, {}).get("copy_of_train") == "1" for k in keys]),
        "has_index": bool(facts),
    }


def load_splits(folder: Path) -> dict[str, dict]:
    """PublicTest and PrivateTest (by SPLIT_NAMES' keys): what every command that scores a model reads."""
    return {key: load_split(folder, key) for key in SPLIT_NAMES}
