"""python -m predict.batch: a collection in shards, on a process pool or a local Ray cluster
(2 CPUs, loopback only); the job resumes after a kill, doing only the missing shards, and a
killed Ray worker is replaced within the run. No Caffe needed."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from hostile import call, command, one_error_line
from predict.batch import main
from reference_images import lfw_face


def crops(folder: Path, count: int) -> Path:
    folder.mkdir()
    for i in range(count):
        cv2.imwrite(str(folder / f"{i:03d}.png"), np.roll(lfw_face(i % 100, 48), i // 100, axis=1))
    return folder


def shards(out: Path) -> str:
    return "".join(p.read_text() for p in sorted(out.glob("shard-*.jsonl")))


def wait_for(path_glob: Path, pattern: str, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not list(path_glob.glob(pattern)):
        assert time.time() < deadline, f"no {pattern} in {path_glob} after {timeout} s"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A folder of 60 face crops (and a broken file) labelled by one uninterrupted local job."""
    root = tmp_path_factory.mktemp("batch")
    folder = crops(root / "crops", 60)
    (folder / "broken.png").write_bytes(b"not a png")
    out = root / "reference"
    argv = [str(folder), "--out", str(out), "--no-detect", "--shard-size", "10", "--workers", "2"]
    assert call(main, argv) == 0
    return folder, shards(out)


def test_a_local_job_writes_shards_and_a_summary(reference: tuple[Path, str], tmp_path: Path) -> None:
    folder, text = reference
    docs = [json.loads(line) for line in text.splitlines()]
    assert len(docs) == 61 and sum("error" in d for d in docs) == 1
    assert all(len(d["faces"]) == 1 and d["schema"] == "fer-caffe/1" for d in docs if "error" not in d)
    out = tmp_path / "job"
    argv = [str(folder / "*.png"), "--out", str(out), "--no-detect", "--shard-size", "10"]
    assert call(main, argv) == 0  # a glob gives the same images
    summary = json.loads((out / "summary.json").read_text())
    assert summary["images"] == 61 and summary["failed"] == 1 and summary["faces"] == 60 and summary["shards"] == 7
    assert sum(summary["labels"].values()) == 60
    assert shards(out) == text


def test_refusals(reference: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder, _ = reference
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    assert call(main, [str(folder), "--out", str(tmp_path / "mine")]) == 2
    assert "not empty" in one_error_line(capsys.readouterr().err)
    assert call(main, [str(folder), "--out", str(tmp_path / "a"), "--no-detect", "--shard-size", "30"]) == 0
    capsys.readouterr()
    assert call(main, [str(folder), "--out", str(tmp_path / "a"), "--no-detect", "--shard-size", "20"]) == 2
    assert "other images or settings" in one_error_line(capsys.readouterr().err)
    assert call(main, [str(tmp_path / "nothing"), "--out", str(tmp_path / "b")]) == 2
    assert call(main, [str(folder), "--out", str(tmp_path / "c"), "--shard-size", "0"]) == 2


def test_a_killed_local_job_resumes_where_it_stopped(reference: tuple[Path, str], tmp_path: Path) -> None:
    folder, text = reference
    argv = [str(folder), "--out", str(tmp_path / "job"), "--no-detect", "--shard-size", "10", "--workers", "1"]
    process = command("predict.batch", *argv)
    wait_for(tmp_path / "job", "shard-*.jsonl")
    process.kill()
    process.wait(60)
    assert len(list((tmp_path / "job").glob("shard-*.jsonl"))) < 7
    # its pool worker goes with it instead of waiting on the dead driver forever
    job = str(tmp_path / "job")
    deadline = time.time() + 30
    while any(job in cmdline(pid) for pid in os.listdir("/proc") if pid.isdigit()):
        assert time.time() < deadline, "a worker of the killed job is still running"
        time.sleep(0.2)
    assert call(main, argv) == 0
    assert shards(tmp_path / "job") == text


@pytest.mark.slow
def test_ray_replaces_a_killed_worker_and_resumes_a_killed_job(reference: tuple[Path, str], tmp_path: Path) -> None:
    folder, text = reference
    out = tmp_path / "ray"
    argv = [str(folder), "--out", str(out), "--no-detect", "--shard-size", "10", "--workers", "2", "--engine", "ray"]
    process = command("predict.batch", *argv)
    wait_for(out, "shard-*.jsonl", timeout=180)
    workers = [pid for pid in os.listdir("/proc") if pid.isdigit() and "ShardLabeller" in cmdline(pid)]
    assert workers, "no Ray worker running the labeller"
    os.kill(int(workers[0]), signal.SIGKILL)  # one worker dies mid-run: Ray Data starts another
    _, err = process.communicate(timeout=300)
    if process.returncode != 0:  # the driver gave up on the lost worker: the job resumes
        assert call(main, argv) == 0, err.decode()
    assert shards(out) == text
    assert json.loads((out / "summary.json").read_text())["engine"] == "ray"


def cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""
