"""How every command of the project ends: one line and a documented exit status, never a
traceback, whatever the input, the options or the signals.

Exit status: 0 done; 2 bad input, option or model, or an output that cannot be written;
130 interrupted (Ctrl-C or SIGTERM), after saying what was done. A closed standard output
(`| head`) ends the run quietly with status 0. Set FER_DEBUG=1 to see the traceback of an
unexpected error.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import signal
import sys
import traceback
from collections.abc import Callable
from typing import NoReturn

INTERRUPTED = 130


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so that Python's own flush at exit cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def run(main: Callable[[], int]) -> NoReturn:
    """Run a command's main() and exit with its status; SIGTERM counts as Ctrl-C, and a
    file-size limit gives an error instead of killing the process (SIGXFSZ)."""
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    for stream in (sys.stdout, sys.stderr):  # a file name that is not UTF-8 prints as escapes, not a crash
        stream.reconfigure(errors="backslashreplace")
    try:
        code = main()
        sys.stdout.flush()
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        code = INTERRUPTED
    except BrokenPipeError:
        _quiet_stdout()
        code = 0
    except OSError as error:
        where = error.filename if error.filename is not None else "standard output"
        print(f"error: {os.fsdecode(where)}: {error.strerror or error}", file=sys.stderr)
        _quiet_stdout()
        code = 2
    except MemoryError:
        print("error: out of memory (is the input far larger than expected?)", file=sys.stderr)
        code = 2
    except Exception as error:  # the last line of defence: one line, never a traceback
        if os.environ.get("FER_DEBUG"):
            traceback.print_exc()
        print(f"error: unexpected {type(error).__name__}: {error} (FER_DEBUG=1 shows where)", file=sys.stderr)
        code = 1
    sys.exit(code)


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: `error: argument --x: why (--help: usage)`, status 2."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {message} (python -m {self.prog.removeprefix('python -m ')} --help: usage)", file=sys.stderr)
        sys.exit(2)


def number(low: float, high: float = math.inf, kind: type = float) -> Callable[[str], float]:
    """An argparse type: a finite number of the given kind in [low, high]."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {'an integer' if kind is int else 'a number'}, got {text!r}"
            ) from None
        if not math.isfinite(value) or not low <= value <= high:
            bound = f"at least {low:g}" if high == math.inf else f"between {low:g} and {high:g}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {text!r}")
        return value

    parse.__name__ = kind.__name__
    return parse


def model_name(text: str) -> str:
    """An argparse type: a model's name, which becomes one folder under --models and a word in
    make commands and model cards: letters, digits, '.', '_' and '-', not a path."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", text):
        raise argparse.ArgumentTypeError(
            f"expected a folder name of letters, digits, '.', '_' or '-' (at most 100), got {text!r}"
        )
    return text
