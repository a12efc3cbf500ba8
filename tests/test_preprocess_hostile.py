"""python -m preprocess against hostile input: bad files, options, outputs and rows. Every
kind ends with one `error:` line and status 2 (or, for a bad row, a report naming the line
that `sed -n Np` shows while every other row is processed), and no input file or foreign
folder changes by a single byte. No Caffe needed."""

from __future__ import annotations

import gzip
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ferlib.dataset import complete as up_to_date
from ferlib.ferplus import HEADER as FERPLUS_HEADER
from ferlib.lmdb_io import read_lmdb
from hostile import call, one_error_line, tree
from preprocess.__main__ import main
from preprocess.fer_csv import SIDE, BadRow, parse_line
from reference_images import lfw_face

USAGES = ["Training"] * 14 + ["PublicTest"] * 7 + ["PrivateTest"] * 7
PIXELS = " ".join(map(str, lfw_face(0, SIDE).reshape(-1)))
FAST = ["--workers", "1", "--no-images", "--no-align"]


def rows(count: int = len(USAGES)) -> list[str]:
    return [f"{i % 7},{' '.join(map(str, lfw_face(i, SIDE).reshape(-1)))},{USAGES[i]}" for i in range(count)]


def fer_csv(path: Path, lines: list[str] | None = None, head: str = "emotion,pixels,Usage") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([head, *(rows() if lines is None else lines)]) + "\n")
    return path


def ferplus_csv(path: Path, count: int) -> Path:
    lines = [",".join(FERPLUS_HEADER)] + [f"{USAGES[i]},fer{i:07d}.png,10,0,0,0,0,0,0,0,0,0" for i in range(count)]
    path.write_text("\n".join(lines) + "\n")
    return path


def dataset(inputs: Path) -> Path:
    """A dataset made by preprocess, to be damaged."""
    out = inputs / "data"
    assert call(main, [str(fer_csv(inputs / "fer.csv")), "--out", str(out), *FAST]) == 0
    return out


def damaged_manifest(inputs: Path, text: str) -> Path:
    out = dataset(inputs)
    (out / "manifest.json").write_text(text)
    return out


Builder = Callable[[Path, Path], list[str]]  # (inputs folder, scratch folder) -> argv

CASES: dict[str, tuple[str, Builder]] = {}


def case(name: str, words: str) -> Callable[[Builder], Builder]:
    """Register a hostile case: its builder makes the inputs and gives the argv; the run must
    end with status 2 and one error line containing words."""

    def register(build: Builder) -> Builder:
        CASES[name] = (words, build)
        return build

    return register


@case("missing csv", "no such file")
def _(i: Path, s: Path) -> list[str]:
    return [str(i / "nope.csv")]


@case("csv is a folder", "a folder")
def _(i: Path, s: Path) -> list[str]:
    return [str(i)]


@case("empty csv", "empty")
def _(i: Path, s: Path) -> list[str]:
    return [str(_write(i / "e.csv", b""))]


@case("binary csv", "not a text csv")
def _(i: Path, s: Path) -> list[str]:
    return [str(_write(i / "b.csv", bytes(range(256)) * 4))]


@case("wrong header", "expected the header")
def _(i: Path, s: Path) -> list[str]:
    return [str(fer_csv(i / "h.csv", head="label,pixels"))]


@case("truncated gzip", "cannot read")
def _(i: Path, s: Path) -> list[str]:
    return [str(_write(i / "t.csv.gz", gzip.compress(fer_csv(i / "x.csv").read_bytes())[:5000]))]


@case("gzip of binary", "not a text csv")
def _(i: Path, s: Path) -> list[str]:
    return [str(_write(i / "g.csv.gz", gzip.compress(bytes(range(256)))))]


@case("header only", "no valid Training rows")
def _(i: Path, s: Path) -> list[str]:
    return [str(fer_csv(i / "h.csv", []))]


@case("no Training rows", "no valid Training rows")
def _(i: Path, s: Path) -> list[str]:
    return [str(fer_csv(i / "p.csv", [r.replace("Training", "PublicTest") for r in rows()]))]


@case("every row bad", "no valid Training rows")
def _(i: Path, s: Path) -> list[str]:
    return [str(fer_csv(i / "b.csv", ["9,1 2,Training"] * 5))]


@case("--strict and a bad row", "line 30")
def _(i: Path, s: Path) -> list[str]:
    return [str(fer_csv(i / "s.csv", [*rows(), "7,1,Training"])), "--strict"]


@case("--out is the csv", "is or holds the input")
def _(i: Path, s: Path) -> list[str]:
    c = fer_csv(i / "fer.csv")
    return [str(c), "--out", str(c)]


@case("--out is a file", "an existing file")
def _(i: Path, s: Path) -> list[str]:
    return [str(fer_csv(i / "fer.csv")), "--out", str(_write(i / "notes.txt", b"mine"))]


@case("--out a folder of someone's files", "not a dataset")
def _(i: Path, s: Path) -> list[str]:
    return [str(fer_csv(i / "fer.csv")), "--out", str(_write(i / "mine" / "thesis.tex", b"x").parent)]


@case("--out holds the csv", "holds the input")
def _(i: Path, s: Path) -> list[str]:
    return [str(fer_csv(i / "fer.csv")), "--out", str(i)]


@case("--out a dataset that holds the csv", "holds the input")
def _(i: Path, s: Path) -> list[str]:
    d = dataset(i)
    return [str(shutil.copy(i / "fer.csv", d / "fer.csv")), "--out", str(d)]


@case("--out under a file", "cannot write")
def _(i: Path, s: Path) -> list[str]:
    return [str(fer_csv(i / "fer.csv")), "--out", str(_write(i / "f", b"x") / "data")]


@case("corrupt manifest.json", "manifest.json: unreadable")
def _(i: Path, s: Path) -> list[str]:
    return [str(i / "fer.csv"), "--out", str(damaged_manifest(i, "{"))]


@case("manifest.json a list", "not a manifest")
def _(i: Path, s: Path) -> list[str]:
    return [str(i / "fer.csv"), "--out", str(damaged_manifest(i, "[1, 2]"))]


@case("--min-face 0", "--min-face")
def _(i: Path, s: Path) -> list[str]:
    return [str(fer_csv(i / "fer.csv")), "--min-face", "0"]


@case("--min-face -5", "--min-face")
def _(i: Path, s: Path) -> list[str]:
    return [str(fer_csv(i / "fer.csv")), "--min-face", "-5"]


@case("--min-face nan", "--min-face")
def _(i: Path, s: Path) -> list[str]:
    return [str(fer_csv(i / "fer.csv")), "--min-face", "nan"]


@case("--min-face 500", "--min-face")
def _(i: Path, s: Path) -> list[str]:
    return [str(fer_csv(i / "fer.csv")), "--min-face", "500"]


@case("--size 0", "--size")
def _(i: Path, s: Path) -> list[str]:
    return [str(fer_csv(i / "fer.csv")), "--size", "0"]


@case("--size 48.5", "--size")
def _(i: Path, s: Path) -> list[str]:
    return [str(fer_csv(i / "fer.csv")), "--size", "48.5"]


@case("--seed -1", "--seed")
def _(i: Path, s: Path) -> list[str]:
    return [str(fer_csv(i / "fer.csv")), "--seed", "-1"]


@case("--workers 0", "--workers")
def _(i: Path, s: Path) -> list[str]:
    return [str(fer_csv(i / "fer.csv")), "--workers", "0"]


@case("--template square", "--template")
def _(i: Path, s: Path) -> list[str]:
    return [str(fer_csv(i / "fer.csv")), "--template", "square"]


@case("--ferplus missing", "no such file")
def _(i: Path, s: Path) -> list[str]:
    return [str(fer_csv(i / "fer.csv")), "--ferplus", str(i / "none.csv")]


@case("--ferplus too short", "fewer rows")
def _(i: Path, s: Path) -> list[str]:
    return [str(fer_csv(i / "fer.csv")), "--ferplus", str(ferplus_csv(i / "new.csv", 10))]


@case("--ferplus binary", "not a FER+ csv")
def _(i: Path, s: Path) -> list[str]:
    return [str(fer_csv(i / "fer.csv")), "--ferplus", str(_write(i / "new.csv", b"\xff\xfe" * 99))]


@case("--ferplus bad votes", "vote counts")
def _(i: Path, s: Path) -> list[str]:
    return [
        str(fer_csv(i / "fer.csv")),
        "--ferplus",
        str(_write(i / "new.csv", (",".join(FERPLUS_HEADER) + "\nTraining,a.png,1,2,x,0,0,0,0,0,0,0\n").encode())),
    ]


def _write(path: Path, content: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def test_the_suite_has_twenty_five_kinds() -> None:
    assert len(CASES) >= 25


@pytest.mark.parametrize("name", CASES)
def test_hostile_input(name: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    inputs, scratch = tmp_path / "in", tmp_path / "scratch"
    inputs.mkdir()
    scratch.mkdir()
    words, build = CASES[name]
    argv = build(inputs, scratch)
    argv += [a for a in FAST if a not in argv] if "--out" in argv else ["--out", str(scratch / "data"), *FAST]
    capsys.readouterr()
    before = tree(inputs)
    assert call(main, argv) == 2
    assert words in one_error_line(capsys.readouterr().err)
    assert tree(inputs) == before
    assert tree(scratch) == {}


BAD_ROWS = {
    "pixel 99999999999": (f"1,{PIXELS.replace(' ', ' 99999999999 ', 1)[:-4]},Training", "pixels must be"),
    "pixel 256": (f"1,{PIXELS.replace(PIXELS.split()[0], '256', 1)},Training", "found 256"),
    "negative pixel": (f"1,{PIXELS.replace(' ', ' -3 ', 1)[:-4]},Training", "pixels must be"),
    "emotion superscript two": (f"²,{PIXELS},Training", "emotion must be"),
    "emotion Arabic-Indic three": (f"٣,{PIXELS},Training", "emotion must be"),
    "emotion 7": (f"7,{PIXELS},Training", "emotion must be"),
    "Usage Validation": (f"1,{PIXELS},Validation", "Usage must be"),
    "two fields": ("1,2", "expected 3"),
    "unclosed quote": (f'1,"{PIXELS},Training', "csv line"),
    "stray carriage return": (f"1,{PIXELS[:100]}\r{PIXELS[100:]},Training", "csv line"),
}


def test_bad_rows_name_the_line_sed_shows_and_the_rest_is_processed(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    good = rows()
    body, expected = [], {}
    for (line, words), row in zip(BAD_ROWS.values(), good):
        body += [row, line]
        expected[len(body) + 1] = (line.encode()[:12], words)  # + 1: the header is line 1
    body += good[len(BAD_ROWS) :]
    raw = ("\n".join(["emotion,pixels,Usage", *body]) + "\n").encode()
    raw += b"3,\xff" + PIXELS.encode() + b",Training\n"  # one byte that is not UTF-8
    expected[len(body) + 2] = (b"3,\xff", "not UTF-8")
    raw += f'"4","{PIXELS}","Training"\n'.encode()  # quoted fields are valid csv
    csv = _write(tmp_path / "fer.csv", raw)
    assert call(main, [str(csv), "--out", str(tmp_path / "data"), *FAST]) == 0
    assert "Traceback" not in capsys.readouterr().err
    manifest = json.loads((tmp_path / "data" / "manifest.json").read_text())
    reported = {row["line"]: row["reason"] for row in manifest["bad_rows"]["rows"]}
    physical = raw.split(b"\n")  # what sed -n Np counts
    assert set(reported) == set(expected)
    for line, (start, words) in expected.items():
        assert words in reported[line] and physical[line - 1].startswith(start), (line, reported[line])
    processed = sum(manifest["counts"][split]["total"] for split in ("train", "val", "test"))
    assert processed == len(good) + 1  # every good row, the quoted one included


@pytest.mark.parametrize("damage", ["delete train_lmdb", "truncate data.mdb", "delete mean.npy", "empty index.csv"])
def test_a_damaged_dataset_is_rebuilt_not_called_up_to_date(
    damage: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    csv = fer_csv(tmp_path / "fer.csv")
    argv = [str(csv), "--out", str(tmp_path / "data"), *FAST]
    assert call(main, argv) == 0
    complete = tree(tmp_path / "data")
    assert call(main, argv) == 0 and "up to date" in capsys.readouterr().out
    data = tmp_path / "data"
    if damage == "delete train_lmdb":
        shutil.rmtree(data / "train_lmdb")
    elif damage == "truncate data.mdb":
        with open(data / "val_lmdb" / "data.mdb", "r+b") as handle:
            handle.truncate(4096)
    elif damage == "delete mean.npy":
        (data / "mean.npy").unlink()
    else:
        (data / "index.csv").write_text("")
    assert call(main, argv) == 0
    assert "up to date" not in capsys.readouterr().out
    assert tree(data).keys() == complete.keys()
    assert up_to_date(data, json.loads((data / "manifest.json").read_text())["fingerprint"])
    keys, images, labels = read_lmdb(data / "val_lmdb")
    assert len(keys) == 7 and images.shape == (7, 1, SIDE, SIDE)


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=64) | st.text(max_size=64).map(str.encode), line=st.integers(2, 10**6))
def test_any_bytes_are_a_row_or_a_bad_row_of_that_line(raw: bytes, line: int) -> None:
    parsed = parse_line(raw.replace(b"\n", b""), line)
    assert parsed is None or isinstance(parsed, tuple) or (isinstance(parsed, BadRow) and parsed.line == line)


@settings(max_examples=100, deadline=None)
@given(
    label=st.integers(0, 6),
    seed=st.integers(0, 2**32 - 1),
    usage=st.sampled_from(["Training", "PublicTest", "PrivateTest"]),
    noise=st.binary(max_size=8),
)
def test_valid_rows_parse_and_damaged_ones_never_raise(label: int, seed: int, usage: str, noise: bytes) -> None:
    pixels = np.random.default_rng(seed).integers(0, 256, SIDE * SIDE).tolist()
    raw = f"{label},{' '.join(map(str, pixels))},{usage}".encode()
    parsed = parse_line(raw + b"\r\n", 7)
    assert isinstance(parsed, tuple) and parsed[0] == label and parsed[2].reshape(-1).tolist() == pixels
    cut = len(noise) * 97 % len(raw)
    damaged = parse_line(raw[:cut] + noise + raw[cut:], 7)
    assert damaged is None or isinstance(damaged, tuple) or damaged.line == 7
