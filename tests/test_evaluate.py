"""make evaluate and train.compare: evaluation of a model whose answers are known, the
choice of a run's snapshot on PublicTest, and the Caffe log parser behind the curves."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ferlib.lmdb_io import read_lmdb
from train import caffe_log
from train.evaluate import evaluate
from train.run import train
from train_files import TWO_CLASSES, known_model, make_dataset, make_tiny_net

FIXTURES = Path(__file__).parent / "fixtures"


def test_evaluation_of_a_model_with_known_answers(tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data", val_count=40, classes=TWO_CLASSES)
    model = known_model(tmp_path / "model", 50.0)
    keys, images, labels = read_lmdb(data / "test_lmdb")
    crops = images[:, 0, 1:7, 1:7].astype(float)
    expected = (crops[:, :, 3:].sum(axis=(1, 2)) > crops[:, :, :3].sum(axis=(1, 2))).astype(int)
    report = evaluate(data, tmp_path / "eval", "none", "opencv", model=model)
    test = report["splits"]["test"]
    assert test["accuracy"] == pytest.approx(np.mean(expected == labels))
    confusion = np.array(test["confusion"])
    assert confusion.sum() == 40
    assert confusion[1, 1] == np.sum((labels == 1) & (expected == 1))
    assert (tmp_path / "eval/confusion.png").stat().st_size > 1000
    assert "PrivateTest accuracy" in (tmp_path / "eval/report.md").read_text()


def test_evaluating_a_model_folder_leaves_it_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A model folder is an input: its report goes to out/eval/<model>, not into the model."""
    from train.evaluate import main

    data = make_dataset(tmp_path / "data", val_count=10, classes=TWO_CLASSES)
    model = known_model(tmp_path / "model", 50.0)
    before = sorted(p.name for p in model.iterdir())
    monkeypatch.chdir(tmp_path)
    assert main(["--model", str(model), "--data", str(data), "--tta", "mirror"]) == 0
    assert sorted(p.name for p in model.iterdir()) == before
    assert (tmp_path / "out/eval-mirror/model/report.json").is_file()


def test_views_in_batches_are_the_views_of_the_whole_split(tmp_path: Path) -> None:
    from ferlib.classifier import Classifier
    from ferlib.model_folder import ModelFiles
    from train.evaluate import split_views

    data = make_dataset(tmp_path / "data", val_count=40)
    classifier = Classifier(ModelFiles.from_dir(known_model(tmp_path / "model", 50.0)))
    splits = {"test": {"faces": read_lmdb(data / "test_lmdb")[1]}, "none": {"faces": np.zeros((0, 1, 8, 8), np.uint8)}}
    views = split_views(classifier, splits, count=3, batch=7)
    assert views["test"].shape == (3, 40, 2) and views["none"].shape == (3, 0, 2)
    np.testing.assert_allclose(views["test"], classifier.view_probabilities(splits["test"]["faces"], 3), atol=1e-6)
    passes: list[int] = []
    classifier.view_probabilities(splits["test"]["faces"], 3, batch=7, progress=passes.append)
    assert passes == [21] * 5 + [15]  # 3 views of 7 faces per batch, the last batch 5 faces


def test_evaluating_a_run_selects_on_publictest_and_draws_curves(tmp_path: Path, caffe_tool: str) -> None:
    data = make_dataset(tmp_path / "data")
    net = make_tiny_net(tmp_path / "tiny")
    train(str(net), data, tmp_path / "runs", "r", epochs=12, caffe=caffe_tool)
    report = evaluate(data, tmp_path / "eval", "mirror", "opencv", run=tmp_path / "runs/r", test_curve=True)
    candidates = report["candidates"]
    best = max(c["val_accuracy"] for c in candidates)
    assert report["splits"]["val"]["accuracy"] == pytest.approx(best)
    chosen = next(c for c in candidates if report["model"].endswith(c["snapshot"]))
    assert chosen["val_accuracy"] == best
    assert chosen["test_accuracy"] == pytest.approx(report["splits"]["test"]["accuracy"])
    peak = max(c["test_accuracy"] for c in candidates)
    assert f"would report {peak:.4f}" in (tmp_path / "eval/report.md").read_text()
    assert (tmp_path / "eval/snapshots.png").stat().st_size > 1000
    assert set(report["tta_table"]) == {"none", "mirror", "ten"}
    assert report["tta_table"]["mirror"]["test"] == pytest.approx(report["splits"]["test"]["accuracy"])
    assert "| ten |" in (tmp_path / "eval/report.md").read_text()
    assert (tmp_path / "eval/curves.png").stat().st_size > 1000


def test_test_curve_needs_a_run(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from train.evaluate import main as evaluate_main

    with pytest.raises(SystemExit) as stop:
        evaluate_main(["--model", str(tmp_path), "--test-curve"])
    assert stop.value.code == 2
    assert "--test-curve scores a run's snapshots" in capsys.readouterr().err


def test_log_parser_on_a_recorded_caffe_log() -> None:
    log = caffe_log.parse((FIXTURES / "caffe_train.log").read_text())
    assert [i for i, _ in log.train][:3] == [0, 1, 2]
    assert log.lr[0] == (0, 0.05)
    assert [i for i, _ in log.test] == list(range(0, 49, 4))  # every epoch of 4 iterations, and before training
    assert set(log.test[0][1]) == {"accuracy", "loss"}
    assert 0 <= log.test[-1][1]["accuracy"] <= 1
    assert log.done and not log.stopped_early
    assert log.last_iteration() == 48
    assert log.iterations_per_second() > 0


def test_a_log_resumed_between_snapshots_counts_each_iteration_once_with_its_last_value() -> None:
    def trained(iteration: int, loss: float) -> str:
        return f"I1203 07:00:00.000000  1 solver.cpp:218] Iteration {iteration} (2 iter/s, 1s/50 iters), loss = {loss}"

    def tested(iteration: int, accuracy: float) -> list[str]:
        return [
            f"I1203 07:00:00.000000  1 solver.cpp:330] Iteration {iteration}, Testing net (#0)",
            f"I1203 07:00:00.000000  1 solver.cpp:397]     Test net output #0: accuracy = {accuracy}",
        ]

    # killed after iteration 100 with the last snapshot at 50: 50-100 run again from that snapshot
    lines = [trained(0, 2.0), *tested(50, 0.3), trained(50, 1.5), *tested(100, 0.5), trained(100, 1.2)]
    lines += [*tested(50, 0.3), trained(50, 1.4), *tested(100, 0.4), trained(100, 1.1), *tested(150, 0.45)]
    lines.append("I1203 07:00:00.000000  1 solver.cpp:330] Iteration 200, Testing net (#0)")  # killed mid-pass
    log = caffe_log.parse("\n".join(lines))
    assert log.losses() == [(0, 2.0), (50, 1.4), (100, 1.1)]
    assert log.accuracies() == [(50, 0.3), (100, 0.4), (150, 0.45)]  # 0.5 belongs to weights no snapshot kept
    assert [i for i, _ in log.test_passes()] == [50, 100, 150]  # what curves.png plots: no empty pass at 200


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=40), st.integers(1, 50))
def test_a_running_mean_is_the_mean_of_each_value_and_those_before_it_in_the_window(
    values: list[float], window: int
) -> None:
    from train.plots import running_mean

    expected = [np.mean(values[max(0, i + 1 - window) : i + 1]) for i in range(len(values))]
    np.testing.assert_allclose(running_mean(np.array(values), window), expected, rtol=1e-9, atol=1e-9)


def test_compare_draws_runs_side_by_side_and_names_a_folder_that_is_not_one(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from train.compare import main

    recorded = (FIXTURES / "caffe_train.log").read_text()
    best = max(out["accuracy"] for _, out in caffe_log.parse(recorded).test)
    for name, epoch_iters in (("a", 4), ("b", 8)):  # the same log read as 12 epochs and as 6
        (tmp_path / name).mkdir()
        (tmp_path / name / "caffe.log").write_text(recorded)
        (tmp_path / name / "run.json").write_text(json.dumps({"schedule": {"epoch_iters": epoch_iters}}))
    assert main([str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "c.png")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("a: 12.0 epochs, PublicTest last") and f"best {best:.4f}" in lines[0]
    assert lines[1].startswith("b: 6.0 epochs")
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
    (tmp_path / "d").mkdir()
    assert main([str(tmp_path / "a"), str(tmp_path / "d"), "--out", str(tmp_path / "e.png")]) == 2
    assert (
        capsys.readouterr().err.strip()
        == f"error: {tmp_path / 'd'}: not a training run (expected run.json and caffe.log from make train)"
    )
    assert not (tmp_path / "e.png").exists()
