"""make train: solver arithmetic, runs that resume or start warm, augmentation and soft
targets, run names and folders, and every shipped net (deploy = train_val, it learns)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from google.protobuf import text_format

from conftest import synthetic_images
from ferlib import caffe_proto
from ferlib.dataset import file_sha256
from ferlib.lmdb_io import read_lmdb, read_vectors, write_lmdb, write_vectors
from ferlib.runs import run_name
from train import caffe_log
from train.run import ROOT, TrainError, caffe_pb2, train, write_net, write_solver
from train.schedule import Schedule, exact_test_batch
from train_files import make_dataset, make_tiny_net

NETS = sorted(folder.parent.name for folder in (ROOT / "prototxt").glob("*/train_val.prototxt"))  # every net shipped


def test_schedule_of_the_reference_run() -> None:
    schedule = Schedule(epochs=150, batch_size=64, train_size=28709, val_size=3589, test_batch=97)
    assert schedule.epoch_iters == 449
    assert schedule.max_iter == 67287
    assert schedule.stepvalues == [40372, 57194]
    assert schedule.test_iter * schedule.test_batch == 3589


@pytest.mark.parametrize("size", [3589, 1000, 97, 101, 7, 1, 4096])
def test_test_batch_covers_the_validation_set_exactly(size: int) -> None:
    batch = exact_test_batch(size)
    assert 1 <= batch <= 100 and size % batch == 0
    assert not any(size % d == 0 for d in range(batch + 1, min(size, 100) + 1))


def test_written_solver_and_net_follow_the_data(tmp_path: Path, pycaffe: object) -> None:
    data = make_dataset(tmp_path / "data", val_count=30)
    pb2 = caffe_pb2()
    batch = write_net(ROOT / "prototxt/fer_reference/train_val.prototxt", tmp_path / "tv.prototxt", data, 15)
    assert batch == 64
    net = text_format.Parse((tmp_path / "tv.prototxt").read_text(), pb2.NetParameter())
    data_layers = [layer for layer in net.layer if layer.type == "Data"]
    assert [layer.data_param.source for layer in data_layers] == [str(data / "train_lmdb"), str(data / "val_lmdb")]
    assert {layer.transform_param.mean_file for layer in data_layers} == {str(data / "mean.binaryproto")}
    assert data_layers[1].data_param.batch_size == 15
    schedule = Schedule(epochs=10, batch_size=64, train_size=1000, val_size=30, test_batch=15)
    write_solver(
        ROOT / "prototxt/fer_reference/solver.prototxt",
        tmp_path / "s.prototxt",
        tmp_path / "tv.prototxt",
        schedule,
        tmp_path / "snap",
    )
    solver = text_format.Parse((tmp_path / "s.prototxt").read_text(), pb2.SolverParameter())
    assert solver.max_iter == 156 and list(solver.stepvalue) == [94, 133]
    assert list(solver.test_iter) == [2] and solver.test_interval == 16
    assert solver.base_lr == pytest.approx(0.01) and solver.lr_policy == "multistep"
    poly = Schedule(epochs=10, batch_size=64, train_size=1000, val_size=30, test_batch=15, policy="poly")
    write_solver(
        ROOT / "prototxt/fer_reference/solver.prototxt",
        tmp_path / "p.prototxt",
        tmp_path / "tv.prototxt",
        poly,
        tmp_path,
    )
    solver = text_format.Parse((tmp_path / "p.prototxt").read_text(), pb2.SolverParameter())
    assert solver.lr_policy == "poly" and solver.power == 1 and not solver.stepvalue and solver.max_iter == 156
    how = recipe_of(tmp_path, "p.prototxt")
    assert "base_lr 0.01, x (1 - iteration / 156)^1 (poly)" in how
    assert "base_lr 0.01, x0.1 at iterations 94 (60%) and 133 (85%)" in recipe_of(tmp_path, "s.prototxt")


def recipe_of(folder: Path, solver: str) -> str:
    """What a model card says of the solver in folder/solver, with the nets beside it."""
    from train.ship import recipe

    run = folder / f"run-{solver}"
    run.mkdir()
    shutil.copy(folder / solver, run / "solver.prototxt")
    shutil.copy(folder / "tv.prototxt", run / "train_val.prototxt")
    shutil.copy(ROOT / "prototxt/fer_reference/deploy.prototxt", run / "deploy.prototxt")
    return recipe(run)["solver"]


def test_a_run_keeps_its_learning_rate_policy(tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data")
    net = make_tiny_net(tmp_path / "tiny")
    (tmp_path / "runs/r").mkdir(parents=True)
    (tmp_path / "runs/r/run.json").write_text(json.dumps({"net": "tiny", "schedule": {"epochs": 4}}))
    with pytest.raises(TrainError, match="runs the multistep learning rate policy, not poly: choose another RUN"):
        train(str(net), data, tmp_path / "runs", "r", epochs=4, caffe=sys.executable, lr_policy="poly")


@pytest.mark.parametrize("policy", ["multistep", "poly"])
def test_training_a_tiny_net_lowers_the_loss(tmp_path: Path, caffe_tool: str, policy: str) -> None:
    data = make_dataset(tmp_path / "data")
    net = make_tiny_net(tmp_path / "tiny")
    info = train(str(net), data, tmp_path / "runs", "r", epochs=12, caffe=caffe_tool, lr_policy=policy)
    assert info["status"] == "done" and info["schedule"]["policy"] == policy
    rates = dict(caffe_log.parse((tmp_path / "runs/r/caffe.log").read_text()).lr)
    expected = {"multistep": {0: 0.05, 30: 0.005, 47: 0.0005}, "poly": {0: 0.05, 24: 0.025, 47: 0.05 / 48}}
    assert {i: rates[i] for i in expected[policy]} == pytest.approx(expected[policy], rel=1e-5)  # as logged
    assert info["final"]["iteration"] == 48
    log = caffe_log.parse((tmp_path / "runs/r/caffe.log").read_text())
    losses = [loss for _, loss in log.train]
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    assert info["final"]["best_val_accuracy"] > 0.8
    assert (tmp_path / "runs/r/snapshots/tiny_iter_48.caffemodel").exists()


def test_a_killed_run_resumes_from_its_snapshot(tmp_path: Path, caffe_tool: str) -> None:
    data = make_dataset(tmp_path / "data")
    net = make_tiny_net(tmp_path / "tiny")
    command = [
        sys.executable,
        "-m",
        "train",
        "--net",
        str(net),
        "--data",
        str(data),
        "--runs",
        str(tmp_path / "runs"),
        "--run",
        "r",
        "--epochs",
        "100000",
        "--caffe",
        caffe_tool,
    ]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    snapshots = tmp_path / "runs/r/snapshots"
    deadline = time.time() + 60
    while not list(snapshots.glob("*.solverstate")) and time.time() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    states = sorted(snapshots.glob("*.solverstate"), key=lambda p: int(p.stem.split("_")[-1]))
    stopped_at = int(states[-1].stem.split("_")[-1])
    assert "stopped" in out
    # The same command resumes; a shorter schedule makes it finish quickly.
    command[command.index("100000")] = str((stopped_at + 40) / 4)
    resumed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {tmp_path / 'runs/r'} from iteration {stopped_at}" in resumed.stderr
    log = (tmp_path / "runs/r/caffe.log").read_text()
    assert "Resuming from" in log
    assert json.loads((tmp_path / "runs/r/run.json").read_text())["final"]["iteration"] == stopped_at + 40


def test_a_warm_start_begins_from_the_given_weights(tmp_path: Path, caffe_tool: str) -> None:
    data = make_dataset(tmp_path / "data")
    net = make_tiny_net(tmp_path / "tiny")
    cold = train(str(net), data, tmp_path / "runs", "cold", epochs=12, caffe=caffe_tool)
    weights = tmp_path / "runs/cold/snapshots/tiny_iter_48.caffemodel"
    warm = train(str(net), data, tmp_path / "runs", "warm", epochs=2, caffe=caffe_tool, weights=weights)
    log = (tmp_path / "runs/warm/caffe.log").read_text()
    assert f"Finetuning from {weights}" in log
    assert warm["weights"]["sha256"] == file_sha256(weights)
    first_loss = {
        run: caffe_log.parse((tmp_path / f"runs/{run}/caffe.log").read_text()).train[0][1] for run in ("cold", "warm")
    }
    assert first_loss["warm"] < first_loss["cold"] and abs(first_loss["warm"] - cold["final"]["train_loss"]) < 0.3
    with pytest.raises(TrainError, match="started from weights"):
        train(str(net), data, tmp_path / "runs", "warm", epochs=2, caffe=caffe_tool)


def test_a_warm_start_refuses_missing_or_differently_aligned_weights(tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data")
    net = make_tiny_net(tmp_path / "tiny")
    with pytest.raises(TrainError, match="no weights file"):
        train(str(net), data, tmp_path / "runs", "r", epochs=1, caffe="caffe", weights=tmp_path / "none.caffemodel")
    model = tmp_path / "models/m"
    model.mkdir(parents=True)
    (model / "m.caffemodel").write_bytes(b"")
    (model / "alignment.json").write_text(json.dumps({"template": "fer2013", "points_48": None}))
    with pytest.raises(TrainError, match="template 'fer2013'"):
        train(str(net), data, tmp_path / "runs", "r", epochs=1, caffe="caffe", weights=model / "m.caffemodel")
    (model / "alignment.json").write_text("{")
    with pytest.raises(TrainError, match='expected {"template": name or null}'):
        train(str(net), data, tmp_path / "runs", "r", epochs=1, caffe="caffe", weights=model / "m.caffemodel")


def test_an_augmented_run_records_its_augmentation_and_ships_it_on_the_card(tmp_path: Path, caffe_tool: str) -> None:
    from train.ship import recipe

    data = make_dataset(tmp_path / "data")
    net = make_tiny_net(tmp_path / "tiny")
    info = train(str(net), data, tmp_path / "runs", "r", epochs=4, caffe=caffe_tool, seed=3, augment="fer")
    assert info["status"] == "done"
    preset = ROOT / "prototxt/augment/fer.prototxt"
    assert info["augment"]["name"] == "fer" and info["augment"]["sha256"] == file_sha256(preset)
    written = text_format.Parse((tmp_path / "runs/r/train_val.prototxt").read_text(), caffe_pb2().NetParameter())
    train_layer, test_layer = (layer.transform_param for layer in written.layer if layer.type == "Data")
    assert train_layer.rotate_degrees == 10 and train_layer.erase_probability == 0.25 and train_layer.crop_size == 6
    assert not test_layer.HasField("rotate_degrees") and test_layer.crop_size == 6
    assert "rotation by up to 10 degrees" in recipe(tmp_path / "runs/r")["augment"]
    with pytest.raises(TrainError, match="trains with augmentation"):
        train(str(net), data, tmp_path / "runs", "r", epochs=4, caffe=caffe_tool, seed=3)
    (tmp_path / "bad.prototxt").write_text("rotate_degree: 3\n")
    with pytest.raises(TrainError, match="bad.prototxt: not transform_param fields"):
        train(
            str(net), data, tmp_path / "runs", "s", epochs=4, caffe=caffe_tool, augment=str(tmp_path / "bad.prototxt")
        )
    with pytest.raises(TrainError, match="unknown augmentation 'none': .* one of fer"):
        train(str(net), data, tmp_path / "runs", "s", epochs=4, caffe=caffe_tool, augment="none")


def soft_targets(data: Path, classes: int, smoothing: float = 0.1) -> Path:
    """One-hot training labels, smoothed, in the training LMDB's order."""
    keys, _, labels = read_lmdb(data / "train_lmdb")
    vectors = np.full((len(labels), classes), smoothing / classes, np.float32)
    vectors[np.arange(len(labels)), labels] += 1 - smoothing
    write_vectors(data / "train_targets_lmdb", zip(keys, vectors))
    return data / "train_targets_lmdb"


def test_the_soft_target_loss_is_their_cross_entropy_read_in_lockstep(tmp_path: Path, pycaffe: object) -> None:
    data = make_dataset(tmp_path / "data")
    soft_targets(data, 2)
    net_dir_ = make_tiny_net(tmp_path / "tiny")
    write_net(
        net_dir_ / "train_val.prototxt", tmp_path / "tv.prototxt", data, 30, 2, soft=(data / "train_targets_lmdb", 0.7)
    )
    written = text_format.Parse((tmp_path / "tv.prototxt").read_text(), caffe_pb2().NetParameter())
    weights = [list(x.loss_weight) for x in written.layer if x.type in ("SoftmaxWithLoss", "Reduction")]
    assert np.allclose(weights, [[0.3], [0.7]])
    net = pycaffe.Net(str(tmp_path / "tv.prototxt"), pycaffe.TRAIN)
    for _ in range(6):  # 64 records in batches of 16: past the end of the LMDBs, both wrap together
        net.forward()
        labels = net.blobs["label"].data.astype(int)
        targets = net.blobs["soft/flat"].data
        assert (targets.argmax(axis=1) == labels).all() and np.allclose(targets.max(axis=1), 0.95)
        logits = net.blobs["fc"].data.astype(np.float64)
        log_p = logits - logits.max(axis=1, keepdims=True)
        log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
        assert float(net.blobs["soft_loss"].data) == pytest.approx(-(targets * log_p).sum(axis=1).mean(), rel=1e-4)


def test_soft_targets_train_and_are_checked(tmp_path: Path, caffe_tool: str) -> None:
    data = make_dataset(tmp_path / "data")
    targets = soft_targets(data, 7)  # the synthetic dataset's manifest names no classes: FER2013's seven
    net = make_tiny_net(tmp_path / "tiny")
    info = train(
        str(net),
        data,
        tmp_path / "runs",
        "r",
        epochs=12,
        caffe=caffe_tool,
        soft=Path("train_targets_lmdb"),
        soft_weight=1.0,
    )
    assert info["status"] == "done" and info["final"]["best_val_accuracy"] > 0.8
    assert info["soft"] == {"path": str(targets.resolve()), "sha256": file_sha256(targets / "data.mdb"), "weight": 1.0}
    assert "soft_loss" in (tmp_path / "runs/r/caffe.log").read_text()
    keys, vectors = read_vectors(targets)
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    write_vectors(wrong / "three_lmdb", zip(keys, np.full((len(keys), 3), 1 / 3, np.float32)))  # 3 classes, not 7
    write_vectors(wrong / "short_lmdb", zip(keys[:10], vectors[:10]))
    for name, words in (
        ("three_lmdb", "probability vectors of 7 classes"),
        ("short_lmdb", "keys differ"),
        ("none", "no LMDB"),
    ):
        with pytest.raises(TrainError, match=words):
            train(str(net), data, tmp_path / "runs", f"x-{name}", epochs=1, caffe=caffe_tool, soft=wrong / name)


@pytest.mark.parametrize("soft_weight", [None, 0.7])
def test_mixup_trains_on_the_cross_entropy_with_the_mixed_target(
    tmp_path: Path, pycaffe: object, soft_weight: float | None
) -> None:
    data = make_dataset(tmp_path / "data")
    soft = (soft_targets(data, 2), soft_weight) if soft_weight else None
    net_dir_ = make_tiny_net(tmp_path / "tiny")
    write_net(net_dir_ / "train_val.prototxt", tmp_path / "tv.prototxt", data, 30, 2, soft=soft, mixup=0.4)
    written = text_format.Parse((tmp_path / "tv.prototxt").read_text(), caffe_pb2().NetParameter())
    (mixup,) = (x for x in written.layer if x.type == "Mixup")
    assert mixup.mixup_param.alpha == pytest.approx(0.4) and mixup.mixup_param.label_classes == 2
    assert list(mixup.top)[0] == "data" and list(mixup.bottom)[-1] == "label/unmixed"
    (hard,) = (x for x in written.layer if x.type == "SoftmaxWithLoss")
    assert [rule.phase for rule in hard.include] == [caffe_pb2().TEST]  # the integer labels' loss: TEST only
    net = pycaffe.Net(str(tmp_path / "tv.prototxt"), pycaffe.TRAIN)
    mixed_rows = 0
    for _ in range(4):
        net.forward()
        one_hot = net.blobs["mixup/one_hot"].data
        target = net.blobs["mixup/target" if soft else "mixup/one_hot"].data
        if soft:
            np.testing.assert_allclose(target, 0.7 * net.blobs["soft/mixed"].data + 0.3 * one_hot, rtol=1e-5)
        np.testing.assert_allclose(target.sum(axis=1), 1, rtol=1e-5)
        mixed_rows += int(((one_hot > 0.01) & (one_hot < 0.99)).any(axis=1).sum())
        logits = net.blobs["fc"].data.astype(np.float64)
        log_p = logits - logits.max(axis=1, keepdims=True)
        log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
        assert float(net.blobs["mixup_loss"].data) == pytest.approx(-(target * log_p).sum(axis=1).mean(), rel=1e-4)
    assert mixed_rows > 0  # some rows mix two classes
    tested = pycaffe.Net(str(tmp_path / "tv.prototxt"), pycaffe.TEST)  # TEST: no mixup, the usual loss
    assert "loss" in tested.outputs and "mixup_loss" not in tested.blobs


def test_mixup_runs_are_named_recorded_and_resumed_only_as_begun(tmp_path: Path, caffe_tool: str) -> None:
    from train.ship import recipe

    data = make_dataset(tmp_path / "data")
    net = make_tiny_net(tmp_path / "tiny")
    info = train(str(net), data, tmp_path / "runs", "r", epochs=3, caffe=caffe_tool, mixup=0.2)
    assert info["status"] == "done" and info["mixup"] == 0.2
    assert "Beta(0.2, 0.2)" in recipe(tmp_path / "runs/r")["augment"]
    assert "mixup_loss" in (tmp_path / "runs/r/caffe.log").read_text()
    for other in (None, 0.4):
        with pytest.raises(TrainError, match=f"trains with mixup 0.2, not {other}"):
            train(str(net), data, tmp_path / "runs", "r", epochs=3, caffe=caffe_tool, mixup=other)
    command = [sys.executable, "-m", "ferlib.runs", "fer_vgg", "32", "AUGMENT=fer", "MIXUP=0.2", "SEED=3"]
    named = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    assert named == "fer_vgg-e32-aug-fer-mixup0.2-seed3"


def test_run_names_say_how_a_run_differs_from_the_default() -> None:
    command = [sys.executable, "-m", "ferlib.runs", "fer_vgg", "36", "models/m/m.caffemodel", "SEED=2", "AUGMENT=fer"]
    named = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    assert named == "fer_vgg-e36-aug-fer-from-m-seed2"
    command = [sys.executable, "-m", "ferlib.runs", "fer_vgg", "30", "SOFT=train_targets_lmdb", "SOFT_WEIGHT=1"]
    named = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    assert named == "fer_vgg-e30-soft-train_targets_lmdb-w1"
    command = [sys.executable, "-m", "ferlib.runs", "fer_vgg", "6", "models/m/m.caffemodel", "LR=0.001"]
    named = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    assert named == "fer_vgg-e6-from-m-lr0.001"
    command = [sys.executable, "-m", "ferlib.runs", "fer_vgg", "10", "LR_POLICY=poly", "SEED=2"]
    named = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    assert named == "fer_vgg-e10-poly-seed2"
    assert run_name("fer_vgg", 10, lr_policy="multistep") == "fer_vgg-e10"
    assert run_name("fer_vgg", 30, soft=Path("t")) == "fer_vgg-e30-soft-t-w0.5"
    assert run_name("fer_vgg", 36) == "fer_vgg-e36"


def test_train_refuses_a_missing_dataset(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from train.__main__ import main

    tool = sys.executable  # any program: the dataset is checked before Caffe would run
    assert main(["--data", str(tmp_path / "none"), "--runs", str(tmp_path), "--caffe", tool]) == 2
    assert "not a complete preprocessed dataset" in capsys.readouterr().err


def test_train_writes_only_into_run_folders(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """--run is one folder under --runs; a folder there that holds what a run does not (the
    user's files, or prototxt/<net> itself) is refused before anything is written."""
    from train.__main__ import main

    data = make_dataset(tmp_path / "data")
    tool = sys.executable  # any program: everything is checked before Caffe would run
    argv = ["--net", "fer_vgg", "--data", str(data), "--runs", str(tmp_path / "runs"), "--caffe", tool]
    for run in ("../x", "a/b", ".."):
        assert main([*argv, "--run", run]) == 2
        assert "a run's name is one folder name under --runs" in capsys.readouterr().err
    mine = tmp_path / "runs/mine"
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("precious")
    (mine / "deploy.prototxt").write_text("mine too")
    assert main([*argv, "--run", "mine"]) == 2
    assert "a folder that is not a training run (it holds notes.txt)" in capsys.readouterr().err
    assert sorted(p.name for p in mine.iterdir()) == ["deploy.prototxt", "notes.txt"]
    assert (mine / "deploy.prototxt").read_text() == "mine too"
    nets = ROOT / "prototxt"
    before = {p: p.read_bytes() for p in nets.glob("*/*.prototxt")}
    for runs, run in ((ROOT, "prototxt"), (nets, "fer_vgg"), (nets, "fer_reference")):  # the nets' own folders
        assert main(["--net", "fer_vgg", "--data", str(data), "--runs", str(runs), "--caffe", tool, "--run", run]) == 2
        assert f"{runs / run}: inside prototxt/, where the nets live" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in nets.glob("*/*.prototxt")} == before


@pytest.mark.parametrize("net_name", NETS)
def test_deploy_computes_what_train_val_computes(tmp_path: Path, net_name: str, pycaffe: object) -> None:
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (97, 48, 48)).astype(np.uint8), rng.integers(0, 7, 97)
    write_lmdb(data / "val_lmdb", ((f"{i:08d}", im, lab) for i, (im, lab) in enumerate(zip(images, labels))))
    write_lmdb(data / "train_lmdb", ((f"{i:08d}", im, lab) for i, (im, lab) in enumerate(zip(images, labels))))
    (data / "mean.binaryproto").write_bytes(caffe_proto.blob_proto(images.mean(axis=0)[None].astype(np.float32)))
    write_net(ROOT / f"prototxt/{net_name}/train_val.prototxt", tmp_path / "tv.prototxt", data, 97)
    pycaffe.set_random_seed(3)
    full = pycaffe.Net(str(tmp_path / "tv.prototxt"), pycaffe.TEST)
    deploy = pycaffe.Net(str(ROOT / f"prototxt/{net_name}/deploy.prototxt"), pycaffe.TEST)
    assert list(full.params) == list(deploy.params)
    layers = text_format.Parse((ROOT / f"prototxt/{net_name}/deploy.prototxt").read_text(), caffe_pb2().NetParameter())
    *_, hidden, logits = [layer.name for layer in layers.layer if layer.type == "InnerProduct"]
    for name, params in full.params.items():
        for i, param in enumerate(params):
            if name.endswith("/bn"):  # moving mean, moving variance, scale factor
                param.data[...] = [rng.normal(size=param.data.shape), rng.uniform(0.5, 2, param.data.shape), 1][i]
            deploy.params[name][i].data[...] = param.data
    full.forward()
    deploy.blobs["data"].reshape(*full.blobs["data"].data.shape)
    deploy.reshape()
    prob = deploy.forward(data=full.blobs["data"].data.copy())["prob"]
    values = full.blobs[logits].data
    softmax = np.exp(values - values.max(axis=1, keepdims=True))
    softmax /= softmax.sum(axis=1, keepdims=True)
    assert np.allclose(prob, softmax, atol=1e-6)
    assert deploy.blobs[hidden].data.min() >= 0  # the ReLU after the hidden fully connected layer is there


@pytest.mark.parametrize("net_name", NETS)
def test_every_net_learns_a_small_batch(tmp_path: Path, net_name: str, pycaffe: object) -> None:
    """The net as train_val.prototxt wires it (batch normalisation, dropout, random crops and
    mirrors) learns, and passes gradients to every layer: on 16 faces whose label is which half,
    top or bottom, is brighter (mirroring keeps it), 30 SGD steps bring the loss far below chance
    and change every layer's parameters."""
    data = tmp_path / "data"
    data.mkdir()
    images, labels = synthetic_images(16, size=48)
    images = np.ascontiguousarray(images.transpose(0, 2, 1))
    for name in ("train_lmdb", "val_lmdb"):
        write_lmdb(data / name, ((f"{i:08d}", im, lab) for i, (im, lab) in enumerate(zip(images, labels))))
    (data / "mean.binaryproto").write_bytes(caffe_proto.blob_proto(images.mean(axis=0)[None].astype(np.float32)))
    write_net(ROOT / f"prototxt/{net_name}/train_val.prototxt", tmp_path / "tv.prototxt", data, 16, classes=2)
    net = text_format.Parse((tmp_path / "tv.prototxt").read_text(), caffe_pb2().NetParameter())
    for layer in net.layer:
        if layer.type == "Data":
            layer.data_param.batch_size = 16
    (tmp_path / "tv.prototxt").write_text(text_format.MessageToString(net))
    (tmp_path / "solver.prototxt").write_text(
        f'net: "{tmp_path / "tv.prototxt"}"\nbase_lr: 0.01\nlr_policy: "fixed"\nmomentum: 0.9\n'
        "weight_decay: 0.0005\nsolver_mode: CPU\nrandom_seed: 1\n"
    )
    solver = pycaffe.SGDSolver(str(tmp_path / "solver.prototxt"))
    start = {name: [blob.data.copy() for blob in blobs] for name, blobs in solver.net.params.items()}
    losses = []
    for _ in range(30):
        solver.step(1)
        losses.append(float(solver.net.blobs["loss"].data))
    assert max(losses[-4:]) < 0.1  # chance is ln 2 = 0.69
    unchanged = [name for name, blobs in solver.net.params.items() if np.array_equal(blobs[0].data, start[name][0])]
    assert not unchanged


@pytest.mark.parametrize("net_name", NETS)
def test_the_number_of_classes_follows_the_data(tmp_path: Path, net_name: str, pycaffe: object) -> None:
    from train.run import write_deploy

    data = make_dataset(tmp_path / "data")
    pb2 = caffe_pb2()
    write_net(ROOT / f"prototxt/{net_name}/train_val.prototxt", tmp_path / "tv.prototxt", data, 10, classes=8)
    write_deploy(ROOT / f"prototxt/{net_name}/deploy.prototxt", tmp_path / "deploy.prototxt", 8)
    for name in ("tv.prototxt", "deploy.prototxt"):
        net = text_format.Parse((tmp_path / name).read_text(), pb2.NetParameter())
        outputs = [layer.inner_product_param.num_output for layer in net.layer if layer.type == "InnerProduct"]
        assert outputs[-1] == 8 and outputs[:-1] and all(n > 8 for n in outputs[:-1])


def test_alignment_json_follows_the_preprocessing_settings() -> None:
    from ferlib.dataset import template
    from ferlib.faces import TEMPLATES
    from ferlib.model_folder import alignment_spec

    arcface = TEMPLATES["arcface"].tolist()
    assert template({"settings": {"align": True, "template": "arcface"}}) == "arcface"
    assert alignment_spec("arcface") == {"template": "arcface", "points_48": arcface, "format": 1}
    old = {"settings": {"align": True, "template": "preprocess.faces.TEMPLATE_48"}}  # before named templates
    assert template(old) == "arcface"
    plain = {"settings": {"align": False, "template": "fer2013"}}
    assert template(plain) is None and alignment_spec(None) == {"template": None, "points_48": None, "format": 1}


@pytest.mark.parametrize(
    ("classes", "stored", "name"),
    [
        (7, {"fc6": 7}, "fc6"),  # a warm start: the classifier is copied
        (3, {"fc6": 7}, "fc6-3classes"),  # another class count: renamed, so it starts from its filler
        (3, {"fc6-3classes": 3}, "fc6-3classes"),  # a model fine-tuned so before: copied under its name
        (7, {"fc6-3classes": 3}, "fc6"),  # back to seven classes: fc6 is not in the weights (reported fresh)
    ],
)
def test_the_classifier_is_named_so_caffe_copies_it_only_when_it_fits(
    classes: int, stored: dict[str, int], name: str
) -> None:
    from train.run import classifier_name

    assert classifier_name("fc6", classes, stored) == name


def test_layers_missing_from_the_start_weights_are_reported_fresh(tmp_path: Path, pycaffe: object) -> None:
    from train.run import fresh_layers

    net = tmp_path / "tv.prototxt"
    write_net(ROOT / "prototxt/fer_vgg/train_val.prototxt", net, tmp_path, 10, classes=3, classifier_as="fc6-3classes")
    parsed = text_format.Parse(net.read_text(), caffe_pb2().NetParameter())
    learned = [
        layer.name for layer in parsed.layer if layer.type in ("Convolution", "InnerProduct", "BatchNorm", "Scale")
    ]
    stored = {name: 1 for name in learned if name != "fc6-3classes"}
    assert fresh_layers(net, stored) == ["fc6-3classes"]
    assert fresh_layers(net, {**stored, "fc6-3classes": 3}) == []
