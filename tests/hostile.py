"""Helpers for the hostile-input tests: run a command as a user would, and prove that its
inputs were left byte for byte as they were."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def tree(folder: Path) -> dict[str, str]:
    """Every file under folder (links and special files included, never opened for writing)
    -> its sha256, or what it is."""
    found = {}
    for root, dirs, names in os.walk(folder):
        for name in names + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            path = Path(root) / name
            key = os.fsdecode(path.relative_to(folder))
            if path.is_symlink():
                found[key] = f"link -> {os.readlink(path)}"
            elif path.is_file():
                found[key] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                found[key] = "special"
    return found


def call(main: Callable[[list[str]], int], argv: list[str]) -> int:
    """main(argv) in this process, as the shell would see it: argparse's exits become codes,
    and any other exception fails the test (it would have been a traceback)."""
    try:
        return main(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)


def command(module: str, *args: str, setup: Callable[[], None] | None = None, **kwargs: object) -> subprocess.Popen:
    """python -m module args, started from the repository root with the same interpreter, as
    from a terminal: Ctrl-C (SIGINT) acts even when these tests run in the background, where
    the shell has the children ignore it; setup runs in the child before the command."""

    def terminal() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if setup is not None:
            setup()

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=kwargs.pop("cwd", ROOT),
        env=env,
        stdout=kwargs.pop("stdout", subprocess.PIPE),
        stderr=subprocess.PIPE,
        preexec_fn=terminal,
        **kwargs,
    )


def one_error_line(err: str) -> str:
    """The stderr of a refused run: exactly one line, 'error: ...', no traceback (progress
    bars, which redraw themselves after a carriage return, are not messages)."""
    lines = [line for line in err.split("\n") if line.strip() and not line.startswith("\r")]
    assert "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]
