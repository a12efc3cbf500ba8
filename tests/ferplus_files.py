"""FER+ vote files for the tests: fer2013new.csv's format with votes the test chooses."""

from __future__ import annotations

from pathlib import Path

from ferlib.ferplus import HEADER


def crowd_csv(path: Path, rows: list[tuple[str, list[int]]]) -> Path:
    """A fer2013new.csv: (Usage, ten vote counts in FER+'s column order) per FER2013 row."""
    lines = [",".join(HEADER)] + [
        f"{usage},fer{i:07d}.png,{','.join(map(str, v))}" for i, (usage, v) in enumerate(rows)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path
