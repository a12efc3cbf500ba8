"""The FER+ crowd's votes (fer2013new.csv) on a dataset's faces, joined by the FER2013 csv row
each LMDB key names: soft targets for train.teacher --votes, the crowd's verdict on each test
face for train.crowd."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ferlib import ferplus
from ferlib.classes import FER2013
from ferlib.dataset import DatasetError, classes, key_row, read_manifest


def read_crowd(votes: Path, data: Path) -> list[tuple[str, np.ndarray]]:
    """(Usage, votes over FER2013's seven classes) per FER2013 csv row, for a dataset made from
    that csv with its own labels; DatasetError or NotFerPlusError saying why not."""
    manifest = read_manifest(data) or {}
    if "folder" in manifest.get("input", {}) or classes(data) != FER2013:
        raise DatasetError(f"{data}: the FER+ votes need a dataset made from the FER2013 csv with its own labels")
    return [(usage, ferplus.as_fer2013(distribution)) for usage, _, distribution in ferplus.read_labels(votes)]


def face_votes(crowd: list[tuple[str, np.ndarray]], keys: list[str], usage: str, votes: Path, data: Path) -> np.ndarray:
    """Each face's votes over FER2013's seven classes (all zeros where the crowd gave them
    none), by the csv row its LMDB key names; DatasetError naming the line of a row that is
    not in the face's split (the votes of another file)."""
    rows = []
    for key in keys:
        row = int(key_row(key))
        found, seven = crowd[row] if row < len(crowd) else ("no such row", None)
        if found != usage:
            raise DatasetError(f"{votes}: line {row + 2}: {found!r} where {data}'s face {key} expects {usage}")
        rows.append(seven)
    return np.array(rows, np.float32).reshape(len(keys), len(FER2013))
