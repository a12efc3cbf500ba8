"""ferlib.atomic: files and folders appear whole or not at all, and what killed writers left
behind is swept (an old folder set aside by a half-done swap goes back to its name)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ferlib import atomic

ANY_FOLDER = atomic.Kind("any folder", lambda folder: True)
MODEL_TXT = atomic.Kind("a folder with model.txt", lambda folder: (folder / "model.txt").is_file())


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path) -> None:
    target = tmp_path / "report.json"
    atomic.write_text(target, "old")
    with pytest.raises(RuntimeError), atomic.replacing(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["report.json"]


def test_a_folder_is_replaced_whole(tmp_path) -> None:
    target = tmp_path / "model"
    with atomic.replacing_folder(target, ANY_FOLDER) as folder:
        (folder / "a").write_text("1")
    with pytest.raises(RuntimeError), atomic.replacing_folder(target, ANY_FOLDER) as folder:
        (folder / "b").write_text("2")
        raise RuntimeError("killed")
    assert sorted(os.listdir(target)) == ["a"]
    with atomic.replacing_folder(target, ANY_FOLDER) as folder:
        (folder / "b").write_text("2")
    assert sorted(os.listdir(target)) == ["b"] and os.listdir(tmp_path) == ["model"]


def test_the_two_rename_swap_is_undone_by_the_next_sweep(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)  # a filesystem without RENAME_EXCHANGE
    target = tmp_path / "data"
    with atomic.replacing_folder(target, ANY_FOLDER) as folder:
        (folder / "manifest.json").write_text("old")
    # a writer killed between its two renames: the old dataset aside, nothing under the name
    (target).rename(tmp_path / f".fer-old-{dead_pid()}-abcdef-data")
    (tmp_path / f".fer-tmp-{dead_pid()}-123456").mkdir()
    atomic.sweep(tmp_path)
    assert os.listdir(tmp_path) == ["data"] and (target / "manifest.json").read_text() == "old"
    with atomic.replacing_folder(target, ANY_FOLDER) as folder:
        (folder / "manifest.json").write_text("new")
    assert (target / "manifest.json").read_text() == "new" and os.listdir(tmp_path) == ["data"]


def test_sweep_leaves_the_files_of_running_writers(tmp_path) -> None:
    mine = tmp_path / f".fer-tmp-{os.getpid()}-abcdef.png"
    mine.write_bytes(b"being written")
    stale = tmp_path / f".fer-tmp-{dead_pid()}-abcdef.png"
    stale.write_bytes(b"left by a killed run")
    atomic.sweep(tmp_path)
    assert mine.exists() and not stale.exists()


@pytest.mark.parametrize("kind", ["a user's folder", "a file", "a link"])
def test_a_folder_is_never_put_in_the_place_of_what_the_project_did_not_write(tmp_path, kind: str) -> None:
    target = tmp_path / "models" / "mine"
    target.parent.mkdir()
    if kind == "a user's folder":
        target.mkdir()
        (target / "notes.txt").write_text("precious")
    elif kind == "a file":
        target.write_text("precious")
    else:
        (tmp_path / "elsewhere").mkdir()
        target.symlink_to(tmp_path / "elsewhere")
    before = sorted(os.listdir(target.parent))
    with pytest.raises(FileExistsError, match="nothing was changed"), atomic.replacing_folder(target, MODEL_TXT):
        pytest.fail("the block must not run")
    assert sorted(os.listdir(target.parent)) == before
    assert kind == "a link" or (target / "notes.txt" if target.is_dir() else target).read_text() == "precious"


def test_an_empty_folder_or_one_of_the_same_kind_is_replaced(tmp_path) -> None:
    target = tmp_path / "model"
    target.mkdir()
    with atomic.replacing_folder(target, MODEL_TXT) as folder:
        (folder / "model.txt").write_text("1")
    with atomic.replacing_folder(target, MODEL_TXT) as folder:  # its own kind
        (folder / "model.txt").write_text("2")
    assert (target / "model.txt").read_text() == "2" and os.listdir(tmp_path) == ["model"]
