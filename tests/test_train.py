"""make train and make evaluate: solver arithmetic, runs that resume, deploy = train_val,
evaluation of a model whose answers are known, and the Caffe log parser."""

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
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import synthetic_images
from ferlib import caffe_proto
from ferlib.dataset import file_sha256
from ferlib.lmdb_io import read_lmdb, read_vectors, write_lmdb, write_vectors
from ferlib.runs import run_name
from train import caffe_log
from train.evaluate import evaluate
from train.run import ROOT, TrainError, caffe_pb2, train, write_net, write_solver
from train.schedule import Schedule, exact_test_batch

FIXTURES = Path(__file__).parent / "fixtures"
NETS = sorted(folder.parent.name for folder in (ROOT / "prototxt").glob("*/train_val.prototxt"))  # every net shipped

TINY_TRAIN_VAL = """name: "tiny"
layer { name: "data" type: "Data" top: "data" top: "label" include { phase: TRAIN }
  transform_param { crop_size: 6 mean_file: "data/fer2013/mean.binaryproto" scale: 0.02 }
  data_param { source: "data/fer2013/train_lmdb" batch_size: 16 backend: LMDB } }
layer { name: "data" type: "Data" top: "data" top: "label" include { phase: TEST }
  transform_param { crop_size: 6 mean_file: "data/fer2013/mean.binaryproto" scale: 0.02 }
  data_param { source: "data/fer2013/val_lmdb" batch_size: 100 backend: LMDB } }
layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc"
  inner_product_param { num_output: 2 weight_filler { type: "xavier" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "fc" bottom: "label" top: "loss" }
layer { name: "accuracy" type: "Accuracy" bottom: "fc" bottom: "label" top: "accuracy" include { phase: TEST } }
"""
TINY_DEPLOY = """name: "tiny"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 1 dim: 6 dim: 6 } } }
layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc" inner_product_param { num_output: 2 } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""
TINY_SOLVER = """net: "x"
base_lr: 0.05
lr_policy: "multistep"
gamma: 0.1
momentum: 0.9
display: 1
solver_mode: CPU
random_seed: 1
"""


def make_dataset(
    folder: Path, train_count: int = 64, val_count: int = 30, classes: tuple[str, ...] | None = None
) -> Path:
    """A dataset folder as make preprocess writes it, of 8x8 synthetic images (of FER2013's
    classes, as a manifest without any says, unless given classes)."""
    folder.mkdir(parents=True)
    for name, count, seed in (("train", train_count, 0), ("val", val_count, 1), ("test", val_count, 2)):
        images, labels = synthetic_images(count, seed=seed)
        write_lmdb(
            folder / f"{name}_lmdb", ((f"{i:08d}_{i:05d}", im, lab) for i, (im, lab) in enumerate(zip(images, labels)))
        )
        if name == "train":
            mean = images.astype(np.float32).mean(axis=0)[None]
            (folder / "mean.binaryproto").write_bytes(caffe_proto.blob_proto(mean))
            np.save(folder / "mean.npy", mean.astype(np.float32))
    manifest = {"input": {"csv_sha256": "synthetic"}} | ({"classes": list(classes)} if classes else {})
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def make_tiny_net(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "train_val.prototxt").write_text(TINY_TRAIN_VAL)
    (folder / "deploy.prototxt").write_text(TINY_DEPLOY)
    (folder / "solver.prototxt").write_text(TINY_SOLVER)
    return folder


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
    top or bottom, is brighter (mirroring keeps it), 20 SGD steps bring the loss far below chance
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
    for _ in range(20):
        solver.step(1)
        losses.append(float(solver.net.blobs["loss"].data))
    assert max(losses[-4:]) < 0.1  # chance is ln 2 = 0.69
    unchanged = [name for name, blobs in solver.net.params.items() if np.array_equal(blobs[0].data, start[name][0])]
    assert not unchanged


TWO_CLASSES = ("left", "right")  # the synthetic images' labels: the brighter half


def known_model(folder: Path, mean: float) -> Path:
    """A 2-class model that says 'right' when the right half of the 6x6 crop is brighter."""
    folder.mkdir()
    (folder / "deploy.prototxt").write_text(TINY_DEPLOY)
    weight = np.zeros((2, 36), np.float32)
    weight[0, [c + 6 * r for r in range(6) for c in range(3)]] = 1
    weight[1, [c + 6 * r for r in range(6) for c in range(3, 6)]] = 1
    layers = {"fc": ("InnerProduct", [weight, np.zeros(2, np.float32)])}
    (folder / "known.caffemodel").write_bytes(caffe_proto.net_weights("tiny", layers))
    np.save(folder / "mean.npy", np.full((1, 8, 8), mean, np.float32))
    (folder / "labels.json").write_text(json.dumps(list(TWO_CLASSES)))
    return folder


def test_evaluation_of_a_model_with_known_answers(tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data", val_count=40, classes=TWO_CLASSES)
    model = known_model(tmp_path / "model", 50.0)
    from ferlib.lmdb_io import read_lmdb

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


def test_shipping_an_evaluated_run_writes_a_model_card(tmp_path: Path, caffe_tool: str) -> None:
    from train.ship import ship, training_seconds

    data = make_dataset(tmp_path / "data")
    index = ["split,key,row,label,face_found,copy_of_train"]
    for split in ("val", "test"):
        index += [f"{split},{i:08d}_{i:05d},{i},0,{i % 2},{int(i < 3)}" for i in range(30)]
    (data / "index.csv").write_text("\n".join(index) + "\n")
    manifest = {
        "input": {"csv_sha256": "abc"},
        "counts": {s: {"total": n} for s, n in (("train", 64), ("val", 30), ("test", 30))},
        "faces": {s: {"found": 15} for s in ("train", "val", "test")},
        "settings": {"align": True, "template": "arcface"},
    }
    (data / "manifest.json").write_text(json.dumps(manifest))
    net = make_tiny_net(tmp_path / "tiny")
    train(str(net), data, tmp_path / "runs", "r", epochs=12, caffe=caffe_tool)
    evaluate(data, tmp_path / "runs/r/eval", "none", "opencv", run=tmp_path / "runs/r", test_curve=True)
    peaked = ship(tmp_path / "runs/r", "tiny_model", tmp_path / "models")
    assert (peaked / "snapshots.png").exists()
    peaked_card = (peaked / "README.md").read_text()
    assert "Picking the snapshot on PrivateTest itself" in peaked_card
    assert 'make evaluate NET=tiny EPOCHS=12 ARGS="--test-curve"\n' in peaked_card
    # evaluated again without --test-curve: the older snapshots.png in eval/ is not shipped
    report = evaluate(data, tmp_path / "runs/r/eval", "none", "opencv", run=tmp_path / "runs/r")
    model = ship(tmp_path / "runs/r", "tiny_model", tmp_path / "models")
    names = {p.name for p in model.iterdir()}
    assert names == {
        "tiny_model.caffemodel",
        "deploy.prototxt",
        "mean.npy",
        "labels.json",
        "alignment.json",
        "README.md",
        "confusion.png",
        "curves.png",
        "report.json",
    }
    text = (model / "README.md").read_text()
    assert f"**{report['splits']['test']['accuracy']:.4f}**" in text
    assert "make train NET=tiny EPOCHS=12" in text
    assert "make evaluate NET=tiny EPOCHS=12\n" in text and "--test-curve" not in text
    assert 'make preprocess FER2013=path/to/fer2013.csv.gz ARGS="--template arcface"' in text
    assert json.loads((model / "alignment.json").read_text())["template"] == "arcface"
    assert f"| ten | {report['tta_table']['ten']['val']:.4f} |" in text
    assert "random 6x6 crops of the 48x48 faces" in text and "no augmentation" not in text
    assert "mirror" not in text.split("## Training")[1].split("##")[0]
    assert 0 < training_seconds((tmp_path / "runs/r/caffe.log").read_text()) < 600
    (tmp_path / "models/notes").mkdir()  # a folder of the user's where the name points
    (tmp_path / "models/notes/todo.txt").write_text("mine")
    shutil.copytree(ROOT / "prototxt/fer_vgg", tmp_path / "nets/fer_vgg")  # a net's folder has a deploy.prototxt
    for models, name in ((tmp_path / "models", "notes"), (tmp_path / "nets", "fer_vgg"), (tmp_path, "data")):
        before = sorted(p.name for p in (models / name).iterdir())
        with pytest.raises(FileExistsError, match="a folder that is not a model folder"):
            ship(tmp_path / "runs/r", name, models)
        assert sorted(p.name for p in (models / name).iterdir()) == before


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


def half_model(folder: Path, rows: range) -> Path:
    """known_model's rule ('right' when the right half is brighter) seen through some rows of
    the 6x6 crop only: each such member sees part of the evidence."""
    model = known_model(folder, 50.0)
    weight = np.zeros((2, 36), np.float32)
    weight[0, [c + 6 * r for r in rows for c in range(3)]] = 0.05
    weight[1, [c + 6 * r for r in rows for c in range(3, 6)]] = 0.05
    layers = {"fc": ("InnerProduct", [weight, np.zeros(2, np.float32)])}
    (model / "known.caffemodel").write_bytes(caffe_proto.net_weights("tiny", layers))
    (model / "alignment.json").write_text('{"template": "fer2013"}')
    return model


def faint_dataset(folder: Path, count: int = 600, align: bool = True, misleading_rows: int = 0) -> Path:
    """8x8 noise with a faint brighter half (the label): no few rows tell it reliably. The
    first misleading_rows rows are brighter on the other side (a view only some members read
    well); align=False makes it a plain-crop dataset like `--no-align`'s."""
    make_dataset(folder, val_count=8)
    rng = np.random.default_rng(7)
    for split in ("val", "test"):
        labels = rng.integers(0, 2, count)
        images = rng.integers(0, 100, (count, 8, 8))
        for image, label in zip(images, labels):
            image[:, 4 * label : 4 * label + 4] += 12
            image[:misleading_rows] = image[:misleading_rows, ::-1]
        shutil.rmtree(folder / f"{split}_lmdb")
        records = ((f"{i:08d}_{i:05d}", im.astype(np.uint8), lab) for i, (im, lab) in enumerate(zip(images, labels)))
        write_lmdb(folder / f"{split}_lmdb", records)
    manifest = {
        "input": {"csv_sha256": "synthetic"},
        "settings": {"align": align, "template": "fer2013"},
        "classes": list(TWO_CLASSES),
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_an_ensemble_of_complementary_members_wins_on_publictest(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from predict.recognizer import Recognizer
    from train.ensemble import main as ensemble_main

    data = faint_dataset(tmp_path / "data")
    top, bottom = half_model(tmp_path / "top", range(3)), half_model(tmp_path / "bottom", range(3, 6))
    first = top
    noise = known_model(tmp_path / "noise", 50.0)  # random weights: a member that only hurts
    weight = np.random.default_rng(3).normal(0, 0.05, (2, 36)).astype(np.float32)
    (noise / "known.caffemodel").write_bytes(
        caffe_proto.net_weights("tiny", {"fc": ("InnerProduct", [weight, np.zeros(2, np.float32)])})
    )
    (noise / "alignment.json").write_text('{"template": "fer2013"}')
    models = [top, bottom, noise]
    members = [arg for model in models for arg in ("--member", f"{model}={data}")]
    assert ensemble_main([*members, "--name", "best", "--models", str(tmp_path / "models")]) == 0
    target = tmp_path / "models/best"
    report = json.loads((target / "report.json").read_text())
    singles = {
        row["members"][0]: row["tta_table"]["none"]["val"]
        for row in report["group_tta_tables"]
        if len(row["members"]) == 1
    }
    # each half sees part of the evidence; their average sees all of it and is chosen, without
    # the mirror views (which swap left and right) and without the noise member
    assert report["members"] == ["../../top", "../../bottom"] and report["tta"] == "none"
    assert report["tta_table"]["none"]["val"] > max(singles.values()) + 0.03
    assert len(report["group_tta_tables"]) == 7
    assert json.loads((target / "ensemble.json").read_text()) == {
        "members": report["members"],
        "tta": "none",
        "format": 1,
    }
    assert "| **../../top + ../../bottom** | **none** |" in (target / "README.md").read_text()
    assert len(Recognizer(target, detect=False).members) == 2
    capsys.readouterr()
    (first / "alignment.json").write_text('{"template": "arcface"}')
    assert ensemble_main([*members, "--name", "mixed", "--models", str(tmp_path / "models")]) == 2
    assert "aligned with 'arcface'" in capsys.readouterr().err
    assert not (tmp_path / "models/mixed").exists()
    (first / "alignment.json").write_text('{"template": "fer2013"}')
    (models[2] / "labels.json").write_text(json.dumps(["left", "up"]))
    assert ensemble_main([*members, "--name", "classes", "--models", str(tmp_path / "models")]) == 2
    assert "has the classes left, up" in capsys.readouterr().err
    assert not (tmp_path / "models/classes").exists()
    assert ensemble_main(["--member", f"{models[1]}={tmp_path / 'nothing'}", *members[2:], "--name", "x"]) == 2
    assert "nothing lacks val_lmdb: run 'make preprocess' first" in capsys.readouterr().err


def test_a_greedy_soup_of_complementary_members_beats_each_and_leaves_out_noise(
    tmp_path: Path, capsys: pytest.CaptureFixture, pycaffe: object
) -> None:
    from ferlib.model_folder import ModelFiles, write_ensemble
    from predict.recognizer import Recognizer
    from train.soup import main as soup_main

    data = faint_dataset(tmp_path / "data")
    top, bottom = half_model(tmp_path / "top", range(3)), half_model(tmp_path / "bottom", range(3, 6))
    noise = known_model(tmp_path / "noise", 50.0)
    weight = np.random.default_rng(3).normal(0, 0.05, (2, 36)).astype(np.float32)
    (noise / "known.caffemodel").write_bytes(
        caffe_proto.net_weights("tiny", {"fc": ("InnerProduct", [weight, np.zeros(2, np.float32)])})
    )
    (noise / "alignment.json").write_text('{"template": "fer2013"}')
    members = [arg for model in (noise, top, bottom) for arg in ("--member", str(model))]
    models = str(tmp_path / "models")
    assert soup_main([*members, "--data", str(data), "--name", "soup", "--models", models]) == 0
    target = tmp_path / "models/soup"
    report = json.loads((target / "report.json").read_text())
    # each half sees part of the evidence; the average of their weights sees all of it
    assert sorted(report["members"]) == sorted([str(top), str(bottom)])
    steps = {step["member"]: step for step in report["steps"]}
    assert steps[str(noise)]["kept"] is False and len(steps) == 3
    assert report["splits"]["val"]["accuracy"] > max(step["alone"]["val"] for step in steps.values()) + 0.03
    fc = pycaffe.Net(str(target / "deploy.prototxt"), pycaffe.TEST, weights=str(target / "soup.caffemodel"))
    halves = [ModelFiles.from_dir(model) for model in (top, bottom)]
    expected = np.mean(
        [pycaffe.Net(str(f.deploy), pycaffe.TEST, weights=str(f.weights)).params["fc"][0].data for f in halves], axis=0
    )
    np.testing.assert_allclose(fc.params["fc"][0].data, expected)
    card = (target / "README.md").read_text()
    assert f"**{report['splits']['test']['accuracy']:.4f}**" in card and f"| `{noise}` |" in card
    assert len(Recognizer(target, detect=False).members) == 1  # one model, run once per face
    assert soup_main([*members, "--data", str(data), "--name", "all", "--models", models, "--uniform"]) == 0
    uniform = json.loads((tmp_path / "models/all/report.json").read_text())
    assert uniform["members"] == [str(noise), str(top), str(bottom)] and uniform["steps"] == []
    assert "used to choose" not in (tmp_path / "models/all/README.md").read_text()
    capsys.readouterr()
    (bottom / "labels.json").write_text(json.dumps(["left", "up"]))
    assert soup_main([*members, "--data", str(data), "--name", "other", "--models", models]) == 2
    expected = f"error: {bottom} has the classes left, up, {noise} has left, right: a soup's members share them\n"
    assert capsys.readouterr().err == expected
    (bottom / "labels.json").write_text(json.dumps(["left", "right"]))
    np.save(bottom / "mean.npy", np.full((1, 8, 8), 60, np.float32))
    assert soup_main([*members, "--data", str(data), "--name", "other", "--models", models]) == 2
    assert (
        capsys.readouterr().err == f"error: {bottom}: its training mean differs from {noise}'s: trained on other data\n"
    )
    assert not (tmp_path / "models/other").exists()
    np.save(bottom / "mean.npy", np.full((1, 8, 8), 50, np.float32))
    (bottom / "deploy.prototxt").write_text(TINY_DEPLOY.replace("num_output: 2", "num_output: 2 bias_term: false"))
    (bottom / "known.caffemodel").write_bytes(caffe_proto.net_weights("tiny", {"fc": ("InnerProduct", [weight])}))
    assert soup_main([*members, "--data", str(data), "--name", "other", "--models", models]) == 2
    assert capsys.readouterr().err == f"error: {bottom}: another net than {noise} (its layers or their shapes differ)\n"
    pair = tmp_path / "pair"
    pair.mkdir()
    write_ensemble(pair, ["../top", "../bottom"], "none")
    assert soup_main(["--member", str(top), "--member", str(pair), "--data", str(data), "--name", "x"]) == 2
    assert capsys.readouterr().err == f"error: {pair}: an ensemble (ensemble.json) of model folders, not one model\n"


def test_a_soup_reads_batchnorm_statistics_whatever_their_scale_factor(tmp_path: Path, pycaffe: object) -> None:
    """Caffe keeps BatchNorm's mean and variance as running sums with a scale factor; the
    same statistics stored with another factor are the same model and average as such."""
    from ferlib.classifier import Classifier
    from ferlib.model_folder import ModelFiles
    from tiny_models import face_model
    from train.soup import average, read_params

    plain = face_model(tmp_path / "plain")
    scaled = face_model(tmp_path / "scaled")
    net = pycaffe.Net(str(scaled / "deploy.prototxt"), pycaffe.TEST, weights=str(scaled / "random.caffemodel"))
    for blob in net.params["conv1/bn"]:
        blob.data[...] *= 4  # sums over four times the batches, and their count
    net.save(str(scaled / "random.caffemodel"))
    a, b = (read_params(ModelFiles.from_dir(folder)) for folder in (plain, scaled))
    for name in a:
        for x, y in zip(a[name], b[name]):
            np.testing.assert_allclose(x, y, rtol=1e-6)
    assert float(b["conv1/bn"][2][0]) == 1.0
    mixed = average([a, b])
    np.testing.assert_allclose(mixed["conv1/bn"][0], a["conv1/bn"][0], rtol=1e-6)
    # the greedy choice scores each member from its own files: OpenCV reads the factor too
    faces = np.random.default_rng(0).integers(0, 256, (4, 48, 48)).astype(np.uint8)
    plain_out, scaled_out = (Classifier(ModelFiles.from_dir(f)).probabilities(faces) for f in (plain, scaled))
    np.testing.assert_allclose(scaled_out, plain_out, rtol=1e-4, atol=1e-6)


def test_raw_crops_and_the_pass_limit_change_the_choice(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from train.ensemble import main as ensemble_main

    data = faint_dataset(tmp_path / "data")
    # on the plain crops the rows the top member reads point the wrong way (crop 1..6 of 8:
    # rows 1-3 are its rows), so the bottom member alone does best on both paths together
    raw = faint_dataset(tmp_path / "raw", align=False, misleading_rows=4)
    top, bottom = half_model(tmp_path / "top", range(3)), half_model(tmp_path / "bottom", range(3, 6))
    members = [arg for model in (top, bottom) for arg in ("--member", f"{model}={data}")]
    models = str(tmp_path / "models")
    assert ensemble_main([*members, "--name", "aligned", "--models", models]) == 0
    assert json.loads((tmp_path / "models/aligned/report.json").read_text())["members"] == ["../../top", "../../bottom"]
    assert ensemble_main([*members, "--raw", str(raw), "--name", "both", "--models", models]) == 0
    report = json.loads((tmp_path / "models/both/report.json").read_text())
    assert report["members"] == ["../../bottom"] and report["raw_data"] == str(raw)
    pair = next(row for row in report["group_tta_tables"] if len(row["members"]) == 2)
    assert pair["raw_tta_table"]["none"]["val"] < report["raw_tta_table"]["none"]["val"] - 0.1
    text = (tmp_path / "models/both/README.md").read_text()
    assert f"--raw {raw} --name both" in text and "| raw PublicTest | raw PrivateTest |" in text
    assert f"| {report['raw_splits']['test']['accuracy']:.4f} |" in text
    # one pass per face: no group, no TTA
    assert ensemble_main([*members, "--max-passes", "1", "--name", "one", "--models", models]) == 0
    report = json.loads((tmp_path / "models/one/report.json").read_text())
    assert len(report["members"]) == 1 and report["tta"] == "none" and report["max_passes"] == 1
    assert "--max-passes 1 --name one" in (tmp_path / "models/one/README.md").read_text()
    capsys.readouterr()
    assert ensemble_main([*members, "--raw", str(data), "--name", "x", "--models", models]) == 2
    assert "holds faces aligned with 'fer2013'; --raw needs the plain crops" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        ensemble_main([*members, "--max-passes", "0", "--name", "x", "--models", models])
    assert exit_info.value.code == 2 and "--max-passes: expected 1 or more, got 0" in capsys.readouterr().err
    assert not (tmp_path / "models/x").exists()


def test_test_curve_needs_a_run(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from train.evaluate import main as evaluate_main

    with pytest.raises(SystemExit) as stop:
        evaluate_main(["--model", str(tmp_path), "--test-curve"])
    assert stop.value.code == 2
    assert "--test-curve scores a run's snapshots" in capsys.readouterr().err


def test_killed_ship_runs_leave_the_old_model_whole(tmp_path: Path, caffe_tool: str) -> None:
    import random

    from hostile import command, tree

    data = make_dataset(tmp_path / "data")
    manifest = json.loads((data / "manifest.json").read_text())
    manifest.update(
        counts={s: {"total": n} for s, n in (("train", 64), ("val", 30), ("test", 30))},
        faces={s: {"found": 15} for s in ("train", "val", "test")},
        settings={"align": True, "template": "fer2013"},
    )
    (data / "manifest.json").write_text(json.dumps(manifest))
    index = ["split,key,row,label,face_found,copy_of_train"]
    index += [f"{s},{i:08d}_{i:05d},{i},0,1,0" for s in ("val", "test") for i in range(30)]
    (data / "index.csv").write_text("\n".join(index) + "\n")
    train(str(make_tiny_net(tmp_path / "tiny")), data, tmp_path / "runs", "r", epochs=4, caffe=caffe_tool)
    evaluate(data, tmp_path / "runs/r/eval", "none", "opencv", run=tmp_path / "runs/r")
    args = ["train.ship", "--run", str(tmp_path / "runs/r"), "--name", "tiny", "--models", str(tmp_path / "models")]
    started = time.time()
    assert command(*args).wait(60) == 0
    duration = time.time() - started
    shipped = tree(tmp_path / "models" / "tiny")
    for seed in range(10):
        process = command(*args, stdout=subprocess.DEVNULL)
        time.sleep(random.Random(seed).uniform(0.5 * duration, 1.1 * duration))
        process.kill()
        process.wait(60)
        assert tree(tmp_path / "models" / "tiny") == shipped  # the whole old model (or the identical new one)
    assert command(*args).wait(60) == 0
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["tiny"]  # leftovers swept


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


def test_a_card_trained_on_both_views_says_so_and_remakes_them() -> None:
    """A dataset made with --raw-view: the card's make preprocess line asks for it (in a
    folder of its own), and its Data section says each face is there twice."""
    from train.ship import data_lines, preprocess_options, reproduce_preprocess

    counts = {s: {"total": n} for s, n in (("train", 64), ("val", 30), ("test", 30))}
    manifest = {
        "input": {"csv_sha256": "abc"},
        "counts": counts,
        "faces": {s: {"found": 15} for s in counts},
        "settings": {"align": True, "template": "fer2013", "raw_view": True},
    }
    assert preprocess_options(manifest) == " ARGS=--raw-view"
    line, data = reproduce_preprocess(manifest, preprocess_options(manifest))
    assert line == "make preprocess FER2013=path/to/fer2013.csv.gz DATA=data/fer2013-rawview ARGS=--raw-view"
    assert data == " DATA=data/fer2013-rawview"  # the make train / evaluate / ship lines use it too
    assert "each of its 32 faces twice (`--raw-view`)" in " ".join(data_lines(manifest, "onto the template"))
    arcface = {**manifest, "settings": {**manifest["settings"], "template": "arcface"}}
    assert preprocess_options(arcface) == ' ARGS="--template arcface --raw-view"'
    one_view = {**manifest, "settings": {"align": True, "template": "fer2013", "raw_view": False}}
    assert preprocess_options(one_view) == "" and reproduce_preprocess(one_view, "")[1] == ""
    assert "twice" not in " ".join(data_lines(one_view, "onto the template"))
    ferplus = {**manifest, "input": {"csv_sha256": "abc", "ferplus": "fer2013new.csv"}}
    assert reproduce_preprocess(ferplus, " ARGS=--raw-view")[1] == " DATA=data/ferplus-rawview"


def test_a_card_says_how_to_get_back_the_models_it_started_from() -> None:
    from train.ship import restore_hint

    commands = [
        "python -m train.teacher --model models/fer2013_vgg_warm --model models/fer2013_reference150 --out t",
        "make train NET=fer_vgg EPOCHS=10 WEIGHTS=models/fer2013_vgg_warm/fer2013_vgg_warm.caffemodel SOFT=t",
    ]
    (hint,) = restore_hint(commands, "fer2013_vgg_rawview")
    assert "(`fer2013_reference150`, `fer2013_vgg_warm`)" in hint and "`make restore NAME=...`" in hint
    # a model trained on from itself under its own name, or from weights outside models/: nothing to restore
    assert restore_hint(["make train WEIGHTS=models/ferplus_vgg/ferplus_vgg.caffemodel"], "ferplus_vgg") == []
    assert restore_hint(["make train WEIGHTS=/tmp/x.caffemodel"], "x") == []
