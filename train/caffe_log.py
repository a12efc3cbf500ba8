"""Read Caffe's training log: loss, learning rate, test outputs and timing per iteration."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TypeVar

_TIME = re.compile(r"^[IWEF](\d{8} \d\d:\d\d:\d\d\.\d+)")
_TRAIN = re.compile(r"Iteration (\d+) \(.*?\), loss = ([-\d.e+naif]+)")
_LR = re.compile(r"Iteration (\d+), lr = ([-\d.e+]+)")
_TESTING = re.compile(r"Iteration (\d+), Testing net")
_TEST_OUT = re.compile(r"Test net output #\d+: (\w+) = ([-\d.e+naif]+)")
_SNAPSHOT = re.compile(r"Snapshotting solver state to binary proto file (\S+)")
T = TypeVar("T")


@dataclass
class CaffeLog:
    """What a Caffe log says so far; feed() it lines as they come."""

    train: list[tuple[int, float]] = field(default_factory=list)  # (iteration, loss)
    lr: list[tuple[int, float]] = field(default_factory=list)  # (iteration, learning rate)
    test: list[tuple[int, dict[str, float]]] = field(default_factory=list)  # (iteration, outputs)
    times: list[tuple[int, datetime]] = field(default_factory=list)  # (iteration, log time)
    snapshots: list[str] = field(default_factory=list)
    done: bool = False
    stopped_early: bool = False
    _testing: int | None = None

    def feed(self, line: str) -> None:
        """Take one log line."""
        if match := _TRAIN.search(line):
            iteration = int(match[1])
            self.train.append((iteration, float(match[2])))
            if stamp := _TIME.match(line):
                self.times.append((iteration, datetime.strptime(stamp[1], "%Y%m%d %H:%M:%S.%f")))
        elif match := _LR.search(line):
            self.lr.append((int(match[1]), float(match[2])))
        elif match := _TESTING.search(line):
            self._testing = int(match[1])
            self.test.append((self._testing, {}))
        elif (match := _TEST_OUT.search(line)) and self._testing is not None:
            self.test[-1][1][match[1]] = float(match[2])
        elif match := _SNAPSHOT.search(line):
            self.snapshots.append(match[1])
        elif "Optimization stopped early." in line:
            self.stopped_early = True
        elif "Optimization Done." in line:
            self.done = True

    def losses(self) -> list[tuple[int, float]]:
        """(iteration, training loss) in iteration order, one per iteration (see _latest)."""
        return _latest(self.train)

    def test_passes(self) -> list[tuple[int, dict[str, float]]]:
        """(iteration, outputs) of every test pass that printed outputs, one per iteration (see _latest)."""
        return _latest([(iteration, out) for iteration, out in self.test if out])

    def accuracies(self) -> list[tuple[int, float]]:
        """(iteration, PublicTest accuracy) of every finished test pass, one per iteration."""
        return [(iteration, out["accuracy"]) for iteration, out in self.test_passes() if "accuracy" in out]

    def last_iteration(self) -> int:
        """The furthest iteration the log shows, counting snapshots (which outlive displays)."""
        snapped = [snapshot_iteration(Path(path)) for path in self.snapshots]
        return max([i for i, _ in self.train] + snapped + [0])

    def iterations_per_second(self) -> float | None:
        """Training speed over the last few displays (test passes excluded as far as possible)."""
        if len(self.times) < 2:
            return None
        (i0, t0), (i1, t1) = self.times[max(0, len(self.times) - 5)], self.times[-1]
        seconds = (t1 - t0).total_seconds()
        return (i1 - i0) / seconds if seconds > 0 and i1 > i0 else None


def _latest(points: list[tuple[int, T]]) -> list[tuple[int, T]]:
    """Points in iteration order, the last logged value of each iteration. A run killed between
    snapshots resumes from the last one and logs those iterations again; the later values belong
    to the weights that training went on from, the earlier ones to a path no snapshot keeps."""
    return sorted(dict(points).items())


def snapshot_iteration(path: Path) -> int:
    """The iteration in a snapshot's name (<prefix>_iter_<N>.caffemodel or .solverstate); -1 if none."""
    match = re.search(r"_iter_(\d+)\.(caffemodel|solverstate)$", path.name)
    return int(match[1]) if match else -1


def parse(text: str) -> CaffeLog:
    """A whole log at once."""
    log = CaffeLog()
    for line in text.splitlines():
        log.feed(line)
    return log
