"""Shared pieces of the benchmarks: machine facts, timing, sample media, results files."""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from skimage import data

from ferlib import atomic

RESULTS = Path(__file__).resolve().parent / "results"


def vector_isa(cpuinfo: str | None = None) -> str:
    """The widest vector instruction set the CPU reports: the machines of these sessions differ by it (an
    AVX2-only EPYC trains about 3 times slower than one with AVX-512), so every result names it."""
    text = Path("/proc/cpuinfo").read_text() if cpuinfo is None else cpuinfo
    flags = set(re.search(r"^flags\s*:(.*)$", text, re.M).group(1).split())
    return next(
        (name for flag, name in (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("avx", "AVX")) if flag in flags), "SSE"
    )


def machine() -> dict:
    """What the numbers were measured on."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "vector_isa": vector_isa(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "date": time.strftime("%Y-%m-%d"),
    }


def median_seconds(work: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time of work() after warm-up runs."""
    for _ in range(warmup):
        work()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def photo_640x480() -> np.ndarray:
    """A 640x480 BGR photo with one face: scikit-image's astronaut on a gray canvas."""
    canvas = np.full((480, 640, 3), 110, np.uint8)
    canvas[:, 80:560] = cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), (480, 480))
    return canvas


def fer_faces(csv: Path, split: str = "train") -> np.ndarray | None:
    """All FER2013 faces of one split (train, val, test), or None without the data file."""
    if not csv.exists():
        return None
    from preprocess.fer_csv import Row, read_rows

    rows, _ = read_rows(csv)
    return np.stack([row.image for row in rows if isinstance(row, Row) and row.split == split])


def write_results(name: str, results: dict) -> Path:
    path = RESULTS / f"{name}.json"
    atomic.write_json(path, {"machine": machine(), **results})
    print(json.dumps(results, indent=1))
    print(f"wrote {path}")
    return path
