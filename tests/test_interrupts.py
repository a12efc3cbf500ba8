"""Signals, closed pipes, full disks and kills at random moments, against the real commands
in their own processes: the visible output is always a complete old one or a complete new
one, the run ends with one line and a documented status, and leftovers of killed runs are
swept by the next run."""

from __future__ import annotations

import json
import random
import resource
import signal
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data

from ferlib.dataset import complete as up_to_date
from hostile import command, one_error_line, tree
from predict.outputs import OUTPUT_MARK
from reference_images import lfw_face

PHOTO = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
KILLS = 10


def photos(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True)
    for i in range(count):
        cv2.imwrite(str(folder / f"p{i:02d}.jpg"), np.roll(PHOTO, 8 * i, axis=1))
    return folder


def video(path: Path, frames: int) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240))
    small = cv2.resize(PHOTO, (320, 240))
    for i in range(frames):
        writer.write(np.roll(small, 3 * i, axis=1))
    writer.release()
    return path


def fer_csv(path: Path) -> Path:
    usages = ["Training"] * 42 + ["PublicTest"] * 14 + ["PrivateTest"] * 14
    rows = [f"{i % 7},{' '.join(map(str, lfw_face(i, 48).reshape(-1)))},{u}" for i, u in enumerate(usages)]
    path.write_text("\n".join(["emotion,pixels,Usage", *rows]) + "\n")
    return path


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".fer-*") if p.name != OUTPUT_MARK)


def wait_for_line(process: subprocess.Popen) -> None:
    """Block until the run has printed its first result line."""
    assert process.stdout.readline(), process.stderr.read().decode()


def test_a_closed_stdout_ends_quietly(tmp_path: Path) -> None:
    process = command("predict", str(photos(tmp_path / "in", 4)))
    wait_for_line(process)
    process.stdout.close()
    err = process.stderr.read().decode()
    assert process.wait(60) == 0
    assert "Traceback" not in err and "Exception ignored" not in err


def test_a_full_stdout_is_one_error_line(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), PHOTO)
    with open("/dev/full", "w") as full:
        process = command("predict", str(tmp_path / "a.png"), stdout=full)
        _, err = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "No space left" in one_error_line(err.decode())


def test_ctrl_c_in_a_folder_run_says_what_was_done(tmp_path: Path) -> None:
    process = command("predict", str(photos(tmp_path / "in", 120)), "--out", str(tmp_path / "ann"))
    wait_for_line(process)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "interrupted: " in err.decode() and "of 120 images done" in err.decode()
    assert "Traceback" not in err.decode()
    assert leftovers(tmp_path / "ann") == []


def test_sigterm_in_a_video_run_writes_no_video(tmp_path: Path) -> None:
    clip = video(tmp_path / "clip.avi", 80)
    process = command("predict", str(clip), "--out", str(tmp_path / "ann.mp4"))
    wait_for_line(process)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130 and "the annotated video was not written" in err.decode()
    assert not (tmp_path / "ann.mp4").exists() and leftovers(tmp_path) == []


def fsize_limit(limit: int) -> callable:
    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # as a shell's ulimit -f: writes fail with EFBIG

    return limited


def test_a_full_disk_leaves_no_broken_video(tmp_path: Path) -> None:
    clip = video(tmp_path / "clip.avi", 40)
    process = command("predict", str(clip), "--out", str(tmp_path / "ann.mp4"), setup=fsize_limit(200_000))
    _, err = process.communicate(timeout=120)
    assert process.returncode == 2, err.decode()
    assert "could not be written completely" in err.decode() and "Traceback" not in err.decode()
    assert not (tmp_path / "ann.mp4").exists() and leftovers(tmp_path) == []


def test_a_full_disk_leaves_the_old_dataset(tmp_path: Path) -> None:
    csv = fer_csv(tmp_path / "fer.csv")
    out = tmp_path / "data"
    assert command("preprocess", str(csv), "--out", str(out), "--workers", "1").wait(120) == 0
    before = tree(out)
    process = command("preprocess", str(csv), "--out", str(out), "--workers", "1", "--force", setup=fsize_limit(20_000))
    _, err = process.communicate(timeout=120)
    assert process.returncode == 2, err.decode()
    assert "cannot write the dataset" in err.decode() and "Traceback" not in err.decode()
    assert tree(out) == before and leftovers(tmp_path) == []


def kill_at_random(args: list[str], seconds: float, seed: int) -> None:
    """Start the command and SIGKILL it at a random moment within seconds."""
    process = command(*args, stdout=subprocess.DEVNULL)
    time.sleep(random.Random(seed).uniform(0.2, seconds))
    process.kill()
    process.wait(60)


@pytest.mark.slow
def test_killed_predict_runs_leave_only_complete_images(tmp_path: Path) -> None:
    folder = photos(tmp_path / "in", 12)
    args = ["predict", str(folder), "--out", str(tmp_path / "ann")]
    started = time.time()
    assert command(*args, stdout=subprocess.DEVNULL).wait(120) == 0
    duration = time.time() - started
    complete = tree(tmp_path / "ann")
    for seed in range(KILLS):
        kill_at_random(args, duration, seed)
        visible = {k: v for k, v in tree(tmp_path / "ann").items() if not Path(k).name.startswith(".fer-tmp-")}
        assert visible == complete  # every annotated copy is the whole old one (or the identical new one)
    assert command(*args, stdout=subprocess.DEVNULL).wait(120) == 0
    assert leftovers(tmp_path / "ann") == []  # the next run swept what killed runs left


@pytest.mark.slow
def test_killed_preprocess_runs_leave_a_complete_dataset(tmp_path: Path) -> None:
    csv = fer_csv(tmp_path / "fer.csv")
    out = tmp_path / "data"
    args = ["preprocess", str(csv), "--out", str(out), "--workers", "1", "--force"]
    started = time.time()
    assert command(*args).wait(120) == 0
    duration = time.time() - started
    fingerprint = json.loads((out / "manifest.json").read_text())["fingerprint"]
    for seed in range(KILLS):
        kill_at_random(args, duration, seed)
        restored = any(name.startswith(".fer-old-") for name in leftovers(tmp_path))
        assert up_to_date(out, fingerprint) or (restored and not out.exists())
    assert command("preprocess", str(csv), "--out", str(out), "--workers", "1").wait(120) == 0
    assert up_to_date(out, fingerprint) and leftovers(tmp_path) == []
