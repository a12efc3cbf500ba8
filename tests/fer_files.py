"""FER2013 files for the tests: datasets of real faces made as preprocess lays them out, and
fer2013new.csv's format with votes the test chooses."""

from __future__ import annotations

import json
from pathlib import Path

from ferlib.classes import FER2013
from ferlib.ferplus import HEADER
from ferlib.lmdb_io import write_lmdb
from reference_images import lfw_face


def fer2013_dataset(folder: Path, count: int, splits: tuple[str, ...] = ("train", "val", "test")) -> Path:
    """count faces per split, from consecutive csv rows in the order of splits (so with 10,
    train rows 0-9, val 10-19, test 20-29); row i labelled i % 7, aligned with fer2013."""
    folder.mkdir()
    for index, split in enumerate(splits):
        first = index * count
        faces = ((f"{i - first:08d}_{i:05d}", lfw_face(i, 48), i % 7) for i in range(first, first + count))
        write_lmdb(folder / f"{split}_lmdb", faces)
    manifest = {"settings": {"align": True, "template": "fer2013"}, "classes": list(FER2013)}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def crowd_csv(path: Path, rows: list[tuple[str, list[int]]]) -> Path:
    """A fer2013new.csv: (Usage, ten vote counts in FER+'s column order) per FER2013 row."""
    lines = [",".join(HEADER)] + [
        f"{usage},fer{i:07d}.png,{','.join(map(str, v))}" for i, (usage, v) in enumerate(rows)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path
