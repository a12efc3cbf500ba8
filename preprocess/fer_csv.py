"""Stream and validate the Kaggle FER2013 csv (plain or gzip), row by row."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ferlib.classes import FER2013

HEADER = "emotion,pixels,Usage"
SIDE = 48
CLASSES = FER2013
SPLITS = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}


class NotFer2013Error(Exception):
    """The file is not a FER2013 csv at all (wrong header, binary, empty, unreadable)."""


@dataclass(frozen=True)
class Row:
    """One valid csv row: its data-row index (0-based, header excluded), label, split, image."""

    index: int
    label: int
    split: str
    image: np.ndarray  # (48, 48) uint8


@dataclass(frozen=True)
class BadRow:
    """A row that failed validation: its line number in the file (header = line 1) and why."""

    line: int
    reason: str


class HashingReader(io.RawIOBase):
    """A readable stream that hashes every byte passing through it."""

    def __init__(self, raw: io.BufferedIOBase):
        self.raw, self.sha256 = raw, hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:
        data = self.raw.read(len(buffer))
        self.sha256.update(data)
        buffer[: len(data)] = data
        return len(data)


def open_binary(path: Path) -> io.BufferedIOBase:
    """The file's bytes, decompressed when it starts with gzip's magic number."""
    with open(path, "rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gzipped else open(path, "rb")


LABEL = re.compile(r"\s*[0-6]\s*", re.ASCII)
PIXELS = re.compile(r"\s*\d{1,3}(?:\s+\d{1,3})*\s*", re.ASCII)


def parse_row(fields: list[str], line: int) -> tuple[int, str, np.ndarray] | BadRow:
    """Validate one row's fields; the parsed (label, split, image) or a BadRow."""
    if len(fields) != 3:
        return BadRow(line, f"expected 3 comma-separated fields, found {len(fields)}")
    label_text, pixel_text, usage = fields
    if not LABEL.fullmatch(label_text):
        return BadRow(line, f"emotion must be an integer 0-6, found {label_text[:20]!r}")
    if usage.strip() not in SPLITS:
        return BadRow(line, f"Usage must be one of {', '.join(SPLITS)}, found {usage[:20]!r}")
    if not PIXELS.fullmatch(pixel_text):
        return BadRow(line, "pixels must be space-separated integers 0-255, found other characters")
    values = np.array(pixel_text.split(), dtype=np.int32)
    if len(values) != SIDE * SIDE:
        return BadRow(line, f"pixels must be {SIDE * SIDE} integers, found {len(values)} values")
    if values.max() > 255:
        return BadRow(line, f"pixels must be integers 0-255, found {values.max()}")
    return int(label_text), SPLITS[usage.strip()], values.astype(np.uint8).reshape(SIDE, SIDE)


def parse_line(raw: bytes, line: int) -> tuple[int, str, np.ndarray] | BadRow | None:
    """One physical line of the file (as `sed -n {line}p` shows it): the parsed row, a BadRow
    saying why not, or None for a blank line. Never raises."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return BadRow(line, f"not UTF-8 text (byte {error.start + 1} of the line)")
    text = text.removesuffix("\n").removesuffix("\r")
    if not text.strip():
        return None
    try:
        fields = next(csv.reader([text], strict=True))
    except csv.Error as error:
        return BadRow(line, f"not a valid csv line ({error})")
    return parse_row(fields, line)


def read_rows(path: Path) -> tuple[Iterator[Row | BadRow], HashingReader]:
    """Rows of a FER2013 csv, validated one at a time, and the reader whose sha256 covers the
    csv text (uncompressed) once the rows are consumed. Raises NotFer2013Error at once for
    a file that is not a FER2013 csv. Lines are split at line feeds only, so a stray carriage
    return or a byte that is not UTF-8 spoils one row, not the numbering of the rest."""
    try:
        reader = HashingReader(open_binary(path))
        stream = io.BufferedReader(reader)
        header = stream.readline()
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise NotFer2013Error(f"{path}: cannot read: {error}") from error
    if not header:
        raise NotFer2013Error(f"{path}: the file is empty; expected a FER2013 csv with header {HEADER!r}")
    try:
        header_text = header.decode("utf-8-sig").strip()
    except UnicodeDecodeError:
        header_text = "\0"
    if not header_text.isprintable():
        raise NotFer2013Error(f"{path}: line 1: not a text csv (binary data)")
    if header_text != HEADER:
        raise NotFer2013Error(f"{path}: line 1: expected the header {HEADER!r}, found {header_text[:60]!r}")

    def rows() -> Iterator[Row | BadRow]:
        index, line_number = 0, 1
        try:
            for line_number, raw in enumerate(stream, start=2):
                parsed = parse_line(raw, line_number)
                if parsed is None:
                    continue
                yield parsed if isinstance(parsed, BadRow) else Row(index, *parsed)
                index += 1
        except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as error:
            raise NotFer2013Error(f"{path}: cannot read past line {line_number}: {error}") from error

    return rows(), reader
