"""FER+ labels (Barsoum et al., ICMI 2016): 10 crowd votes per FER2013 image, joined by row.

fer2013new.csv has the same rows in the same order as fer2013.csv. A row's label is the
majority vote as FER+'s own "majority" mode takes it: single votes are dropped as outliers,
and the winning category must hold more than half of the remaining votes. Rows whose
winner is "unknown" or "not a face", rows without a majority, and the rows FER+ leaves out
(no image name) get no label. preprocess reads them for LABELS=ferplus datasets; train.teacher
reads the votes as soft targets for FER2013's own labels (as_fer2013).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ferlib.classes import FER2013, FERPLUS

HEADER = [
    "Usage",
    "Image name",
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
    "unknown",
    "NF",
]
CLASSES = FERPLUS


class NotFerPlusError(Exception):
    """The file is not a FER+ csv (wrong header, fields or vote counts, not text)."""


def majority(votes: np.ndarray) -> int | str:
    """The class index of a row's 10 vote counts, or why it has none."""
    kept = np.where(votes > 1, votes, 0)
    total = kept.sum()
    if total == 0 or kept.max() * 2 <= total:
        return "no majority"
    winner = int(np.argmax(kept))
    if winner == 8:
        return "majority unknown"
    if winner == 9:
        return "majority not a face"
    return winner


def distribution(votes: np.ndarray) -> np.ndarray:
    """The crowd's votes over the eight emotions as probabilities (unknown and not-a-face
    left out): the soft targets of FER+'s probability mode."""
    emotions = votes[: len(CLASSES)].astype(np.float32)
    return emotions / emotions.sum() if emotions.sum() else emotions


def read_labels(path: Path) -> Iterator[tuple[str, int | str, np.ndarray]]:
    """(Usage, label or reason, vote distribution) for each row of fer2013new.csv, in file
    order; NotFerPlusError naming the line for anything that is not such a file."""
    line = 1
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle, strict=True)
            header = next(reader, None)
            if header != HEADER:
                raise NotFerPlusError(f"{path}: line 1: expected the FER+ header {','.join(HEADER)!r}")
            for line, row in enumerate(reader, start=2):
                if len(row) != len(HEADER):
                    raise NotFerPlusError(f"{path}: line {line}: expected {len(HEADER)} fields, found {len(row)}")
                if not all(v.isascii() and v.isdigit() and len(v) <= 3 for v in row[2:]):
                    raise NotFerPlusError(f"{path}: line {line}: vote counts must be integers 0-999")
                votes = np.array([int(v) for v in row[2:]])
                yield row[0], (majority(votes) if row[1] else "left out by FER+"), distribution(votes)
    except (UnicodeDecodeError, csv.Error) as error:
        raise NotFerPlusError(f"{path}: line {line + 1}: not a FER+ csv ({error})") from error


def as_fer2013(distribution: np.ndarray) -> np.ndarray:
    """A vote distribution over FER2013's seven classes, in FER2013's order: contempt, which
    FER2013 has no class for, is left out and the rest renormalised; all zeros where no
    vote is left."""
    seven = distribution[[CLASSES.index(name) for name in FER2013]].astype(np.float32)
    return seven / seven.sum() if seven.sum() else seven
