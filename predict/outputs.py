"""Where annotated copies go, and the rules that keep them from touching a user's files.

An input is only ever read. An output that is an input, or a folder that would mix outputs
with files this tool did not write, is refused. Folders this tool writes into carry a
marker file, OUTPUT_MARK: they are dedicated output folders, which may be written into again
and which `-r` never reads as input.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from predict.media import COLOUR_IMAGE_SUFFIXES, IMAGE_SUFFIXES, VIDEO_OUT_SUFFIXES, annotated_name, show

OUTPUT_MARK = ".fer-predict-output"


class UsageError(Exception):
    """An option that cannot be honoured; the message names it."""


def same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def inside(path: Path, folder: Path) -> bool:
    """Whether path is folder or lies under it (both resolved)."""
    return path.resolve().is_relative_to(folder.resolve())


def claim_folder(folder: Path, option: str = "--out") -> Path:
    """Make folder (new, empty, or written by this tool before) a dedicated output folder."""
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{option} {show(folder)}: a file, expected a folder")
    if folder.is_dir() and not (folder / OUTPUT_MARK).exists() and any(folder.iterdir()):
        raise UsageError(
            f"{option} {show(folder)}: a folder with files this tool did not write; "
            "choose a new or empty folder (nothing was written)"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / OUTPUT_MARK).touch()
    except OSError as error:
        raise UsageError(f"{option} {show(folder)}: cannot write there ({error.strerror})") from error
    return folder


def output_folder(target: Path) -> Path:
    """The folder of target, made as a dedicated output folder if it is missing; target."""
    if not target.parent.is_dir():
        claim_folder(target.parent, "output folder")
    return target


def single_output(path: Path, out: Path | None, what: str) -> Path:
    """The annotated copy of one image or video: --out as a file or an existing folder, or
    out/<input's full name> beside the input."""
    if out is None:
        return path.parent / "out" / annotated_name(path, what)  # made (and marked) by output_folder when written
    if out.is_dir():
        target = out / annotated_name(path, what)
    else:
        allowed = COLOUR_IMAGE_SUFFIXES if what == "image" else VIDEO_OUT_SUFFIXES
        if out.suffix.lower() not in allowed:
            raise UsageError(
                f"--out {show(out)}: expected a folder or a file ending in {', '.join(sorted(allowed))} "
                f"for an annotated {what}"
            )
        if not out.parent.is_dir():
            raise UsageError(f"--out {show(out)}: no such folder {show(out.parent)}")
        target = out
    if same_file(target, path):
        raise UsageError(f"--out {show(out)}: that is the input itself; choose another file (nothing was written)")
    return target


def image_files(folder: Path, recursive: bool, skip: Path | None) -> tuple[list[Path], list[str]]:
    """The images of a folder (sorted) and the entries with an image name that cannot be read
    as files (dangling links, pipes, ...), never opened. Dedicated output folders and skip
    are left out; links to folders are not followed."""
    files, unusable = [], []
    for root, dirs, names in os.walk(folder):
        here = Path(root)
        if recursive:
            dirs[:] = sorted(
                d for d in dirs if not (here / d / OUTPUT_MARK).exists() and not (skip and same_file(here / d, skip))
            )
        else:
            dirs[:] = []
        for name in names:
            path = here / name
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            if path.is_file():
                files.append(path)
            else:
                reason = "dangling link" if path.is_symlink() and not path.exists() else "not a regular file"
                unusable.append(f"{show(path)}: {reason}")
    return sorted(files), sorted(unusable)


def folder_outputs(folder: Path, files: list[Path], out: Path) -> Iterator[tuple[Path, Path | str]]:
    """(input, annotated copy path) for each image of a folder run with --out, or (input,
    reason) where the copy cannot have a name of its own."""
    taken: dict[Path, Path] = {}
    for path in files:
        target = out / path.relative_to(folder).parent / annotated_name(path, "image")
        if target in taken:
            yield path, f"{show(path)}: its annotated copy would overwrite that of {show(taken[target])}"
            continue
        taken[target] = path
        yield path, target


def check_folder_out(folder: Path, out: Path, recursive: bool) -> None:
    """Refuse an --out that is the input folder, or lies in the input tree of a -r run without
    being a dedicated output folder (claim_folder then checks the rest)."""
    if out.exists() and same_file(out, folder):
        raise UsageError(f"--out {show(out)}: that is the input folder; choose another folder (nothing was written)")
    if recursive and inside(out, folder) and out.exists() and not (out / OUTPUT_MARK).exists():
        raise UsageError(
            f"--out {show(out)}: inside the input folder of a -r run; choose a new folder (nothing was written)"
        )
    if inside(folder, out) and not (out / OUTPUT_MARK).exists():
        raise UsageError(f"--out {show(out)}: contains the input folder; choose another folder (nothing was written)")
