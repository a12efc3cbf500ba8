"""make preprocess on a synthetic FER2013 csv: validation, outputs, safety, reruns."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from ferlib.lmdb_io import read_lmdb, read_vectors
from preprocess import build as build_module
from preprocess.__main__ import main
from preprocess.build import Settings, build, lmdb_order
from reference_images import lfw_face

USAGES = ["Training"] * 21 + ["PublicTest"] * 7 + ["PrivateTest"] * 7


def pixels(image: np.ndarray) -> str:
    return " ".join(str(v) for v in image.reshape(-1))


def good_rows() -> list[tuple[int, np.ndarray, str]]:
    """35 rows: lfw faces 48x48, labels 0-6 in turn, 21 train / 7 val / 7 test."""
    return [(i % 7, lfw_face(i, 48), usage) for i, usage in enumerate(USAGES)]


BAD_LINES = [
    ("1,2", "expected 3 comma-separated fields"),
    ("7,{p},Training", "emotion must be an integer 0-6"),
    ("x,{p},Training", "emotion must be an integer 0-6"),
    ("1,{short},Training", "pixels must be 2304 integers, found 2303"),
    ("1,{big},Training", "pixels must be integers 0-255"),
    ("1,{frac},Training", "found other characters"),
    ("1,{p},Validation", "Usage must be one of"),
]


def write_csv(path: Path, with_bad: bool = True) -> dict[int, str]:
    """A FER2013-style csv; returns {line number: expected reason} of the bad rows."""
    face = lfw_face(99, 48)
    values = {
        "p": pixels(face),
        "short": pixels(face)[: pixels(face).rindex(" ")],
        "big": pixels(face).replace(str(face.reshape(-1)[0]), "256", 1),
        "frac": pixels(face).replace(" ", " 1.5 ", 1)[: -len(str(face.reshape(-1)[-1])) - 1],
    }
    lines, bad = ["emotion,pixels,Usage"], {}
    rows = good_rows()
    for i, (label, image, usage) in enumerate(rows):
        lines.append(f"{label},{pixels(image)},{usage}")
        if with_bad and i % 5 == 2 and len(bad) < len(BAD_LINES):
            template, reason = BAD_LINES[len(bad)]
            lines.append(template.format(**values))
            bad[len(lines)] = reason
    path.write_text("\n".join(lines) + "\n")
    return bad


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict, dict]:
    """One aligned build of the synthetic csv (with bad rows): (csv, out, manifest, bad rows)."""
    root = tmp_path_factory.mktemp("pre")
    csv = root / "fer.csv"
    bad = write_csv(csv)
    manifest = build(csv, root / "out", Settings(), workers=1)
    return csv, root / "out", manifest, bad


def test_counts_per_split_and_class(built: tuple) -> None:
    _, _, manifest, _ = built
    counts = manifest["counts"]
    assert {s: c["total"] for s, c in counts.items()} == {"train": 21, "val": 7, "test": 7}
    assert [counts["train"][name] for name in manifest["classes"]] == [3] * 7
    assert [counts["val"][name] for name in manifest["classes"]] == [1] * 7
    faces = manifest["faces"]
    assert sum(f["found"] + f["not_found"] for f in faces.values()) == 35
    assert sum(f["found"] for f in faces.values()) >= 30  # lfw faces are easy


def test_bad_rows_are_reported_with_line_and_reason(built: tuple) -> None:
    _, _, manifest, bad = built
    reported = {row["line"]: row["reason"] for row in manifest["bad_rows"]["rows"]}
    assert manifest["bad_rows"]["count"] == len(BAD_LINES)
    assert sorted(reported) == sorted(bad)
    for line, reason in bad.items():
        assert reason in reported[line]


def test_lmdb_contents_equal_the_aligned_faces_and_inputs(built: tuple) -> None:
    _, out, _, _ = built
    rows = good_rows()
    csv_rows = [i for i in range(len(rows) + len(BAD_LINES))]  # row indices count bad rows too
    for split in ("train", "val", "test"):
        keys, images, labels = read_lmdb(out / f"{split}_lmdb")
        for key, image, label in zip(keys, images, labels):
            row = int(key.split("_")[1])
            assert row in csv_rows
            png = cv2.imread(str(out / "aligned" / split / str(label) / f"{row}.png"), cv2.IMREAD_GRAYSCALE)
            assert np.array_equal(png, image[0])
            original = cv2.imread(str(out / "images" / split / str(label) / f"{row}.png"), cv2.IMREAD_GRAYSCALE)
            assert any(np.array_equal(original, im) and lab == label for lab, im, _ in rows)
        if split != "train":
            assert [int(k.split("_")[1]) for k in keys] == sorted(int(k.split("_")[1]) for k in keys)


def test_unaligned_lmdb_holds_the_csv_pixels_and_train_is_shuffled_by_seed(tmp_path: Path) -> None:
    csv = tmp_path / "fer.csv"
    write_csv(csv, with_bad=False)
    build(csv, tmp_path / "out", Settings(align=False, images=False, seed=7), workers=1)
    rows = good_rows()
    keys, images, labels = read_lmdb(tmp_path / "out" / "test_lmdb")
    assert [int(k.split("_")[1]) for k in keys] == list(range(28, 35))
    for key, image, label in zip(keys, images, labels):
        expected_label, expected_image, _ = rows[int(key.split("_")[1])]
        assert label == expected_label and np.array_equal(image[0], expected_image)
    train_keys, _, _ = read_lmdb(tmp_path / "out" / "train_lmdb")
    split = build_module.Split("train", rows=list(range(21)))
    assert [int(k.split("_")[1]) for k in train_keys] == list(lmdb_order(split, 7))
    assert [int(k.split("_")[1]) for k in train_keys] != list(range(21))


def test_gz_input_gives_the_same_output(tmp_path: Path, built: tuple) -> None:
    csv, out, manifest, _ = built
    gz = tmp_path / "fer.csv.gz"
    gz.write_bytes(gzip.compress(csv.read_bytes()))
    other = build(gz, tmp_path / "out", Settings(), workers=1)
    assert other["input"]["csv_sha256"] == manifest["input"]["csv_sha256"]
    for split in ("train", "val", "test"):
        a, b = read_lmdb(out / f"{split}_lmdb"), read_lmdb(tmp_path / "out" / f"{split}_lmdb")
        assert a[0] == b[0] and np.array_equal(a[1], b[1]) and np.array_equal(a[2], b[2])
        # byte for byte, so that a sha256 of an LMDB (a model card's soft targets) can be checked
        assert (out / f"{split}_lmdb/data.mdb").read_bytes() == (tmp_path / f"out/{split}_lmdb/data.mdb").read_bytes()


def test_mean_matches_numpy_and_caffes_compute_image_mean(built: tuple, caffe_tool: str, tmp_path: Path) -> None:
    from caffe.proto import caffe_pb2

    _, out, _, _ = built
    _, images, _ = read_lmdb(out / "train_lmdb")
    mean = np.load(out / "mean.npy")
    assert mean.shape == (1, 48, 48) and mean.dtype == np.float32
    assert np.allclose(mean, images.astype(np.float64).mean(axis=0), atol=1e-4)
    blob = caffe_pb2.BlobProto()
    blob.ParseFromString((out / "mean.binaryproto").read_bytes())
    assert np.array_equal(np.array(blob.data, dtype=np.float32).reshape(1, 48, 48), mean)
    tool = Path(caffe_tool).parent / "compute_image_mean"
    subprocess.run(
        [tool, "-backend", "lmdb", out / "train_lmdb", tmp_path / "caffe_mean.binaryproto"],
        check=True,
        capture_output=True,
    )
    assert (tmp_path / "caffe_mean.binaryproto").read_bytes() == (out / "mean.binaryproto").read_bytes()


def test_a_caffe_data_layer_reads_the_lmdb_with_the_mean_file(built: tuple, tmp_path: Path, pycaffe: object) -> None:
    _, out, _, _ = built
    net_file = tmp_path / "net.prototxt"
    net_file.write_text(f"""
layer {{ name: "data" type: "Data" top: "data" top: "label"
  transform_param {{ crop_size: 42 mean_file: "{out / "mean.binaryproto"}" }}
  data_param {{ source: "{out / "val_lmdb"}" batch_size: 7 backend: LMDB }} }}
layer {{ name: "fc" type: "InnerProduct" bottom: "data" top: "fc" inner_product_param {{ num_output: 7 }} }}
layer {{ name: "loss" type: "SoftmaxWithLoss" bottom: "fc" bottom: "label" top: "loss" }}
""")
    net = pycaffe.Net(str(net_file), pycaffe.TEST)
    net.forward()
    _, images, labels = read_lmdb(out / "val_lmdb")
    mean = np.load(out / "mean.npy")
    expected = (images.astype(np.float32) - mean)[:, :, 3:45, 3:45]
    assert np.allclose(net.blobs["data"].data, expected, atol=1e-4)
    assert np.array_equal(net.blobs["label"].data.astype(int), labels)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"label,pixels\n1,2\n", "expected the header"),
        (bytes(range(256)) * 8, "not a text csv"),
        (gzip.compress(b"\xff\xfe\x00binary"), "not a text csv"),
        (b"\x1f\x8b\x08\x00broken", "cannot read"),
    ],
)
def test_not_a_fer2013_csv_fails_at_once_with_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture, content: bytes, message: str
) -> None:
    csv = tmp_path / "input.csv"
    csv.write_bytes(content)
    assert main([str(csv), "--out", str(tmp_path / "out"), "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert message in err and str(csv) in err
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["input.csv"]


def test_missing_input_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main([str(tmp_path / "nope.csv")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_strict_stops_at_the_first_bad_row(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    csv = tmp_path / "fer.csv"
    bad = write_csv(csv)
    assert main([str(csv), "--out", str(tmp_path / "out"), "--workers", "1", "--strict"]) == 2
    first = min(bad)
    assert f"line {first}: {BAD_LINES[0][1]}" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_interrupted_run_leaves_the_old_output_and_nothing_half_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    csv = tmp_path / "fer.csv"
    write_csv(csv, with_bad=False)
    args = [str(csv), "--out", str(tmp_path / "out"), "--workers", "1", "--no-align", "--no-images"]
    assert main(args) == 0
    before = (tmp_path / "out" / "manifest.json").read_text()
    calls = []

    def interrupted(path: Path, records: object, **kwargs: object) -> int:
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(path, records, **kwargs)

    real = build_module.write_lmdb
    monkeypatch.setattr(build_module, "write_lmdb", interrupted)
    assert main([*args, "--force"]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert (tmp_path / "out" / "manifest.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fer.csv", "out"]

    monkeypatch.setattr(build_module, "write_lmdb", interrupted)
    calls.clear()
    assert main([*args, "--out", str(tmp_path / "fresh")]) == 130
    assert not (tmp_path / "fresh").exists()


def test_rerun_is_a_no_op_unless_forced(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    csv = tmp_path / "fer.csv"
    write_csv(csv, with_bad=False)
    args = [str(csv), "--out", str(tmp_path / "out"), "--workers", "1", "--no-images"]
    assert main(args) == 0
    stamp = os.stat(tmp_path / "out" / "manifest.json").st_mtime_ns
    capsys.readouterr()
    assert main(args) == 0
    assert "up to date" in capsys.readouterr().out
    assert os.stat(tmp_path / "out" / "manifest.json").st_mtime_ns == stamp
    assert main([*args, "--seed", "2"]) == 0  # other settings: rebuilt
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["settings"]["seed"] == 2
    assert main([*args, "--seed", "2", "--template", "arcface"]) == 0  # another template: rebuilt
    settings = json.loads((tmp_path / "out" / "manifest.json").read_text())["settings"]
    assert settings["template"] == "arcface" and settings["template_points_48"][0] == [16.41, 22.16]


def test_two_worker_processes_give_the_same_faces(tmp_path: Path) -> None:
    crops = np.stack([lfw_face(i, 48) for i in range(70)])
    one, found_one = build_module.align_faces(crops, Settings(), workers=1, desc="one")
    two, found_two = build_module.align_faces(crops, Settings(), workers=2, desc="two")
    assert np.array_equal(found_one, found_two)
    assert np.array_equal(one, two)


@pytest.mark.parametrize(
    ("votes", "expected"),
    [
        ([6, 0, 1, 1, 0, 0, 0, 0, 2, 0], 0),  # clear neutral
        ([0, 4, 4, 0, 0, 0, 0, 0, 2, 0], "no majority"),
        ([0, 0, 0, 0, 0, 0, 0, 2, 0, 8], "majority not a face"),
        ([1, 1, 1, 1, 1, 0, 0, 0, 5, 0], "majority unknown"),
        ([1, 1, 1, 1, 1, 1, 1, 3, 0, 0], 7),  # single votes are outliers: contempt wins
    ],
)
def test_ferplus_majority_vote(votes: list[int], expected: int | str) -> None:
    from ferlib.ferplus import majority

    assert majority(np.array(votes)) == expected


def test_ferplus_labels_replace_fer2013s(tmp_path: Path) -> None:
    from ferlib.ferplus import CLASSES, HEADER

    csv = tmp_path / "fer.csv"
    write_csv(csv, with_bad=False)
    votes = []
    for i, usage in enumerate(USAGES):
        row = [0] * 10
        row[i % 10] = 8  # class i % 10: 8 and 9 are unknown / not a face, left out
        row[(i + 1) % 8] += 2  # two dissenting votes: the soft targets are 0.8 / 0.2
        votes.append(f"{usage},{'' if i == 5 else f'fer{i:07d}.png'},{','.join(map(str, row))}")
    plus = tmp_path / "fer2013new.csv"
    plus.write_text(",".join(HEADER) + "\n" + "\n".join(votes) + "\n")
    manifest = build(csv, tmp_path / "out", Settings(align=False, images=False), workers=1, ferplus_csv=plus)
    assert manifest["classes"] == list(CLASSES)
    assert manifest["unlabelled_by_ferplus"] == {"majority unknown": 3, "majority not a face": 3, "left out by FER+": 1}
    keys, _, labels = read_lmdb(tmp_path / "out" / "test_lmdb")
    assert [int(k.split("_")[1]) % 10 for k in keys] == list(labels)
    assert sum(c["total"] for c in manifest["counts"].values()) == 35 - 7
    train_keys, _, train_labels = read_lmdb(tmp_path / "out" / "train_lmdb")
    target_keys, targets = read_vectors(tmp_path / "out" / "train_targets_lmdb")  # FER+'s vote distributions
    assert target_keys == train_keys and targets.shape == (len(train_keys), 8)
    for key, label, target in zip(train_keys, train_labels, targets):
        row = int(key.split("_")[1])
        assert target[label] == pytest.approx(0.8) and target[(row + 1) % 8] == pytest.approx(0.2)
    bad = tmp_path / "short.csv"
    bad.write_text("\n".join(plus.read_text().splitlines()[:10]) + "\n")
    assert main([str(csv), "--out", str(tmp_path / "x"), "--ferplus", str(bad), "--workers", "1", "--no-align"]) == 2


def test_raw_view_adds_each_training_faces_plain_crop(tmp_path: Path, built: tuple) -> None:
    """--raw-view: Training holds every face twice, aligned and as its csv crop, with one
    label; index.csv names the view; val and test stay as they are without it."""
    csv, out, manifest, _ = built
    both = build(csv, tmp_path / "out", Settings(raw_view=True), workers=1)
    assert both["counts"]["train"]["total"] == 2 * manifest["counts"]["train"]["total"]
    assert both["fingerprint"]["raw_view"] is True and "raw_view" not in manifest["fingerprint"]
    aligned_keys, aligned_faces, _ = read_lmdb(out / "train_lmdb")
    aligned = {key.split("_")[1]: face for key, face in zip(aligned_keys, aligned_faces)}
    index = [line.split(",") for line in (tmp_path / "out" / "index.csv").read_text().splitlines()]
    assert index[0][-1] == "view"
    view = {row[1]: row for row in index[1:] if row[0] == "train"}
    keys, images, labels = read_lmdb(tmp_path / "out" / "train_lmdb")
    seen: dict[str, list[str]] = {}
    for key, image, label in zip(keys, images, labels):
        row = key.split("_")[1]
        seen.setdefault(row, []).append(view[key][-1])
        if view[key][-1] == "aligned":
            assert np.array_equal(image, aligned[row])
        else:
            assert view[key][4] == "0", "a raw view is never counted as a found face"
            assert any(lab == label and np.array_equal(im, image[0]) for lab, im, _ in good_rows())
    assert len(seen) == 21 and all(sorted(views) == ["aligned", "raw"] for views in seen.values())
    for split in ("val", "test"):
        a, b = read_lmdb(out / f"{split}_lmdb"), read_lmdb(tmp_path / "out" / f"{split}_lmdb")
        assert a[0] == b[0] and np.array_equal(a[1], b[1])
    assert not np.array_equal(np.load(out / "mean.npy"), np.load(tmp_path / "out" / "mean.npy"))  # both views'


def test_raw_view_belongs_to_the_csv(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "faces" / "Happy").mkdir(parents=True)
    assert main(["--folder", str(tmp_path / "faces"), "--out", str(tmp_path / "out"), "--raw-view"]) == 2
    assert "--raw-view" in capsys.readouterr().err and not (tmp_path / "out").exists()
    csv = tmp_path / "fer.csv"
    write_csv(csv, with_bad=False)
    assert main([str(csv), "--out", str(tmp_path / "out"), "--raw-view", "--no-align"]) == 2
    assert "--raw-view with --no-align" in capsys.readouterr().err and not (tmp_path / "out").exists()
