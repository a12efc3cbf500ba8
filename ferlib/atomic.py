"""Outputs that appear whole or not at all.

Every file or folder the project writes is built under a temporary name in the same folder
as its destination and renamed into place only once complete, so that a kill, a full disk
or an exception leaves either the old output or the new one, never a half-written file
under the final name. Temporary names carry the writer's process id; `sweep` removes those
of processes that no longer run, and puts back an old folder that a killed swap left aside.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import errno
import json
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

_TEMP = re.compile(r"^\.fer-(tmp|old)-(\d+)-[0-9a-f]{6}(?:-(.*)|\.[^.]*)?$", re.DOTALL)
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def temp_name(dest: Path, kind: str = "tmp") -> Path:
    """A fresh name beside dest: ASCII (safe for OpenCV), with dest's suffix (codecs choose
    by it) for files, and dest's own name after it for an old folder set aside."""
    token = f".fer-{kind}-{os.getpid()}-{secrets.token_hex(3)}"
    return dest.with_name(f"{token}-{dest.name}" if kind == "old" else f"{token}{_ascii_suffix(dest)}")


def _ascii_suffix(path: Path) -> str:
    suffix = path.suffix
    return suffix if suffix.isascii() and suffix.isprintable() else ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def sweep(folder: Path) -> None:
    """Remove the temporary files and folders that dead processes left in folder; an old
    folder set aside by a swap that was killed half-way goes back to its name when that name
    is free again."""
    try:
        entries = list(folder.iterdir())
    except OSError:
        return
    for entry in entries:
        match = _TEMP.match(entry.name)
        if not match or _alive(int(match.group(2))):
            continue
        kind, original = match.group(1), match.group(3)
        if kind == "old" and original and not (folder / original).exists():
            with contextlib.suppress(OSError):
                entry.rename(folder / original)
                continue
        _remove(entry)


def _fsync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def replacing(dest: Path) -> Iterator[Path]:
    """Yield a temporary path beside dest to write the file to; when the block ends normally
    the file is flushed to disk and renamed over dest, otherwise it is removed."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    sweep(dest.parent)
    tmp = temp_name(dest)
    try:
        yield tmp
        if not tmp.is_file():
            raise OSError(errno.ENOENT, "nothing was written", str(dest))
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, dest)
        _fsync_folder(dest.parent)
    finally:
        _remove(tmp)


def write_bytes(dest: Path, data: bytes) -> None:
    """dest holds exactly data, or (on any failure) what it held before."""
    with replacing(dest) as tmp:
        tmp.write_bytes(data)


def write_text(dest: Path, text: str) -> None:
    write_bytes(dest, text.encode())


def write_json(dest: Path, value: object) -> None:
    write_text(dest, json.dumps(value, indent=1) + "\n")


def _exchange(a: Path, b: Path) -> bool:
    """Swap two names in one step (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def install_folder(built: Path, dest: Path) -> None:
    """Put the complete folder built (beside dest) in dest's place, replacing what was there.

    Where the filesystem can swap two names atomically, dest is always either the old or the
    new folder. Elsewhere the old folder is renamed aside first; a kill between the two renames
    leaves it under a temporary name that the next sweep() of the folder puts back."""
    if not dest.exists() and not dest.is_symlink():
        built.rename(dest)
    elif _exchange(built, dest):
        _remove(built)  # now the old folder
    else:
        old = temp_name(dest, "old")
        dest.rename(old)
        built.rename(dest)
        _remove(old)
    _fsync_folder(dest.parent)


@dataclasses.dataclass(frozen=True)
class Kind:
    """A kind of output folder: what it is called and how to tell one (replacing_folder
    replaces only a folder of its own kind)."""

    name: str  # says what such a folder holds, e.g. "a dataset folder (manifest.json)"
    holds: Callable[[Path], bool]  # True for a folder of this kind


def check_replaceable(dest: Path, kind: Kind) -> None:
    """Refuse (FileExistsError, which commands report in one line) a destination that a folder
    of this kind must not replace: a file or a link, or a folder with contents that is not of
    this kind; an absent or empty folder is fine."""
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        raise FileExistsError(
            errno.EEXIST, "an existing file or link; choose another name (nothing was changed)", str(dest)
        )
    if dest.is_dir() and any(dest.iterdir()) and not kind.holds(dest):
        raise FileExistsError(
            errno.EEXIST,
            f"a folder that is not {kind.name}; choose a new or empty one (nothing was changed)",
            str(dest),
        )


@contextlib.contextmanager
def replacing_folder(dest: Path, kind: Kind) -> Iterator[Path]:
    """Yield an empty temporary folder beside dest to build in; when the block ends normally it
    replaces dest (install_folder), otherwise it is removed. dest must be absent, empty or a
    folder of the same kind (check_replaceable): a folder of the user's is never replaced."""
    check_replaceable(dest, kind)
    dest.parent.mkdir(parents=True, exist_ok=True)
    sweep(dest.parent)
    tmp = temp_name(dest)
    tmp.mkdir()
    try:
        yield tmp
        install_folder(tmp, dest)
    finally:
        _remove(tmp)
