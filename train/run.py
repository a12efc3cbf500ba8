"""One training run: runs/<run>/ with the exact solver and net used, Caffe's log, snapshots
and run.json; resumes from the newest .solverstate when started again."""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
from google.protobuf import text_format
from google.protobuf.message import DecodeError
from tqdm import tqdm

from ferlib import atomic
from ferlib.dataset import DatasetError, file_sha256, template, training_manifest
from ferlib.lmdb_io import lmdb_size, read_keys, read_vectors
from ferlib.model_folder import ModelError, read_alignment
from ferlib.runs import SOFT_WEIGHT
from train.caffe_log import CaffeLog, parse, snapshot_iteration
from train.schedule import Schedule, exact_test_batch

ROOT = Path(__file__).resolve().parent.parent
PROTOTXT = ROOT / "prototxt"


class TrainError(Exception):
    """A run that cannot start: missing data, unknown net, a run of another net."""


RUN_FILES = {"run.json", "snapshots", "train_val.prototxt", "solver.prototxt", "deploy.prototxt", "caffe.log"}


def check_run_folder(run: str, run_dir: Path) -> None:
    """Refuse a run name that is a path, a run folder in prototxt/ (a net's own prototxts
    would be overwritten by the run's), and one holding anything a run does not (a folder of
    the user's); a run whose first start failed before run.json is resumed as usual."""
    if not run or Path(run).name != run or run in (".", ".."):
        raise TrainError(f"--run {run!r}: a run's name is one folder name under --runs, not a path")
    if run_dir.resolve().is_relative_to(PROTOTXT.resolve()):
        raise TrainError(f"{run_dir}: inside prototxt/, where the nets live; choose another RUNS (nothing was changed)")
    if run_dir.exists() and not run_dir.is_dir():  # a link to a run folder elsewhere is a run folder
        raise TrainError(f"{run_dir}: an existing file, not a run folder; choose another RUN (nothing was changed)")
    foreign = sorted(p.name for p in run_dir.iterdir() if p.name not in RUN_FILES) if run_dir.is_dir() else []
    if foreign and not (run_dir / "run.json").exists():
        raise TrainError(
            f"{run_dir}: a folder that is not a training run (it holds {', '.join(foreign[:3])}); "
            "choose another RUN (nothing was changed)"
        )


def caffe_pb2():
    """Caffe's protobuf messages (from the pycaffe build)."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    from caffe.proto import caffe_pb2 as pb2

    return pb2


def check_data(data: Path) -> dict:
    """The preprocessing manifest of a complete dataset folder, or TrainError saying what is missing."""
    try:
        return training_manifest(data)
    except DatasetError as error:
        raise TrainError(str(error)) from error


def net_dir(net: str) -> Path:
    """prototxt/<net>/ (or net itself when it is a folder), which must hold train_val.prototxt,
    deploy.prototxt and solver.prototxt."""
    folder = Path(net) if Path(net).is_dir() else PROTOTXT / net
    needed = ("train_val.prototxt", "deploy.prototxt", "solver.prototxt")
    if not all((folder / name).exists() for name in needed):
        nets = sorted(p.name for p in PROTOTXT.iterdir() if (p / "train_val.prototxt").exists())
        raise TrainError(f"unknown net {net!r}: prototxt/{net}/ needs {', '.join(needed)}; nets: {', '.join(nets)}")
    return folder


def augment_file(augment: str) -> Path:
    """prototxt/augment/<augment>.prototxt, or augment itself when it is a file."""
    path = Path(augment) if Path(augment).is_file() else PROTOTXT / "augment" / f"{augment}.prototxt"
    if not path.is_file():
        names = sorted(p.stem for p in (PROTOTXT / "augment").glob("*.prototxt"))
        raise TrainError(
            f"unknown augmentation {augment!r}: expected a file of transform_param fields or one of {', '.join(names)}"
        )
    return path


def read_augmentation(path: Path):
    """The TransformationParameter fields of an augmentation file, or TrainError naming the file."""
    try:
        return text_format.Parse(path.read_text(), caffe_pb2().TransformationParameter())
    except (text_format.ParseError, UnicodeDecodeError) as error:
        raise TrainError(f"{path}: not transform_param fields ({error})") from error


def classifier(net, prob_type: str):
    """The InnerProduct layer that feeds the prob_type layer (SoftmaxWithLoss or Softmax)."""
    feeds = {layer.bottom[0] for layer in net.layer if layer.type == prob_type}
    return next(layer for layer in net.layer if layer.type == "InnerProduct" and set(layer.top) & feeds)


def set_classes(net, classes: int, prob_type: str, name: str | None = None) -> None:
    """Give the classifier one output per class: the number of classes follows from the data
    (7 for FER2013, 8 for FER+, a folder's own), and the name classifier_name chose."""
    layer = classifier(net, prob_type)
    layer.inner_product_param.num_output = classes
    if name:
        layer.name = name


# The layer types of these nets that hold learned parameters (what -weights copies by name).
PARAMETER_LAYERS = {"Convolution", "Deconvolution", "InnerProduct", "BatchNorm", "Scale", "Bias", "PReLU"}


def weights_layers(weights: Path) -> dict[str, int]:
    """Each layer with parameters in a .caffemodel, with its number of outputs."""
    model = caffe_pb2().NetParameter()
    try:
        model.ParseFromString(weights.read_bytes())
    except DecodeError as error:
        raise TrainError(f"{weights}: not a Caffe .caffemodel ({error})") from error
    return {
        found.name: int(found.blobs[0].shape.dim[0]) if found.blobs[0].shape.dim else int(found.blobs[0].num)
        for found in [*model.layer, *model.layers]
        if found.blobs
    }


def classifier_name(last: str, classes: int, stored: dict[str, int]) -> str:
    """The classifier's name in this run's nets. Caffe copies start weights by layer name, so a
    classifier of another class count is renamed <last>-<N>classes (started from its filler);
    a model fine-tuned so before (its classifier already <last>-<N>classes) keeps that name
    and its classifier is copied."""
    renamed = f"{last}-{classes}classes"
    if renamed in stored or stored.get(last, classes) != classes:
        return renamed
    return last


def fresh_layers(net_file: Path, stored: dict[str, int]) -> list[str]:
    """The layers with parameters in a written net that the start weights do not have: Caffe
    starts them from their fillers."""
    net = text_format.Parse(net_file.read_text(), caffe_pb2().NetParameter())
    return [layer.name for layer in net.layer if layer.type in PARAMETER_LAYERS and layer.name not in stored]


SOFT_TARGETS = """
layer {{ name: "soft/targets" type: "Data" top: "soft/targets" include {{ phase: TRAIN }}
  data_param {{ source: "{source}" batch_size: {batch} backend: LMDB }} }}
layer {{ name: "soft/flat" type: "Reshape" bottom: "soft/targets" top: "soft/flat" include {{ phase: TRAIN }}
  reshape_param {{ shape {{ dim: 0 dim: -1 }} }} }}
"""

CROSS_ENTROPY = """
layer {{ name: "{name}/prob" type: "Softmax" bottom: "{logits}" top: "{name}/prob" include {{ phase: TRAIN }} }}
layer {{ name: "{name}/log" type: "Log" bottom: "{name}/prob" top: "{name}/log" include {{ phase: TRAIN }}
  log_param {{ shift: 1e-12 }} }}
layer {{ name: "{name}/product" type: "Eltwise" bottom: "{name}/log" bottom: "{target}" top: "{name}/product"
  include {{ phase: TRAIN }} eltwise_param {{ operation: PROD }} }}
layer {{ name: "{name}/loss" type: "Reduction" bottom: "{name}/product" top: "{name}_loss" include {{ phase: TRAIN }}
  reduction_param {{ operation: SUM coeff: {coeff} }} loss_weight: {weight} }}
"""


def train_data_layer(net):
    """The Data layer that feeds training (one with no phase feeds both)."""
    train = caffe_pb2().TRAIN
    return next(x for x in net.layer if x.type == "Data" and (not x.include or x.include[0].phase == train))


def layers(text: str) -> list:
    """The layers of a prototxt fragment."""
    return list(text_format.Parse(text, caffe_pb2().NetParameter()).layer)


def cross_entropy(name: str, logits: str, target: str, batch: int, weight: float) -> list:
    """weight x the cross-entropy of target (a probability vector per image) with the softmax of
    logits, -sum t log p averaged over the batch, from Caffe's own layers (Softmax, Log,
    Eltwise, Reduction): no patch and no new gradient."""
    return layers(CROSS_ENTROPY.format(name=name, logits=logits, target=target, coeff=-1 / batch, weight=weight))


def add_soft_loss(net, source: Path, batch: int, weight: float) -> None:
    """Train on soft targets too: a second Data layer reads one probability vector per
    training image from source (an LMDB in the training LMDB's order: the two layers read
    in lockstep), and the loss becomes weight x their cross-entropy with the net's softmax
    + (1 - weight) x the hard-label loss."""
    logits = classifier(net, "SoftmaxWithLoss").top[0]
    hard = next(x for x in net.layer if x.type == "SoftmaxWithLoss")
    del hard.loss_weight[:]
    hard.loss_weight.append(1 - weight)
    net.layer.extend(layers(SOFT_TARGETS.format(source=source, batch=batch)))
    net.layer.extend(cross_entropy("soft", logits, "soft/flat", batch, weight))


def add_mixup(net, alpha: float, classes: int, batch: int, soft: tuple[Path, float] | None = None) -> None:
    """Train on mixed examples (patch 0005's Mixup layer, alpha its Beta(alpha, alpha)): the
    TRAIN Data layer's image and label go through Mixup, with the soft targets when given, and
    the training loss becomes one cross-entropy against the mixed target, weight x the soft
    targets + (1 - weight) x the one-hot labels (the same loss as add_soft_loss's, cross-entropy
    being linear in its target, for unmixed examples). The hard-label loss stays for TEST."""
    pb2 = caffe_pb2()
    data = train_data_layer(net)
    image, label = data.top
    data.top[:] = [f"{image}/unmixed", f"{label}/unmixed"]
    logits = classifier(net, "SoftmaxWithLoss").top[0]
    hard = next(x for x in net.layer if x.type == "SoftmaxWithLoss")
    hard.include.add().phase = pb2.TEST
    targets = layers(SOFT_TARGETS.format(source=soft[0], batch=batch)) if soft else []
    mixed = ["soft/mixed"] if soft else []
    mix = pb2.LayerParameter(
        name="mixup",
        type="Mixup",
        bottom=[f"{image}/unmixed", *(["soft/flat"] if soft else []), f"{label}/unmixed"],
        top=[image, *mixed, "mixup/one_hot"],
    )
    mix.include.add().phase = pb2.TRAIN
    mix.mixup_param.alpha = alpha
    mix.mixup_param.label_classes = classes
    added = [*targets, mix]
    target = "mixup/one_hot"
    if soft:  # weight x soft + (1 - weight) x one-hot, both mixed alike
        target = "mixup/target"
        blend = pb2.LayerParameter(name=target, type="Eltwise", bottom=["soft/mixed", "mixup/one_hot"], top=[target])
        blend.include.add().phase = pb2.TRAIN
        blend.eltwise_param.operation = pb2.EltwiseParameter.SUM
        blend.eltwise_param.coeff.extend([soft[1], 1 - soft[1]])
        added.append(blend)
    every = list(net.layer)
    at = every.index(data) + 1  # before the first layer that reads the image
    del net.layer[:]
    net.layer.extend(every[:at] + added + every[at:] + cross_entropy("mixup", logits, target, batch, 1.0))


def write_net(
    source: Path,
    target: Path,
    data: Path,
    test_batch: int,
    classes: int = 7,
    augment: Path | None = None,
    classifier_as: str | None = None,
    soft: tuple[Path, float] | None = None,
    mixup: float | None = None,
) -> int:
    """train_val.prototxt with the data paths of this dataset, the exact TEST batch, one
    output per class (the classifier named classifier_as when given), the augmentation file's fields in
    the TRAIN transform_param, with soft = (LMDB, weight) the soft-target loss and with mixup
    (its alpha) mixed examples; returns the TRAIN batch size."""
    pb2 = caffe_pb2()
    net = text_format.Parse(source.read_text(), pb2.NetParameter())
    train_batch = 0
    for layer in net.layer:
        if layer.type != "Data":
            continue
        phase = layer.include[0].phase if layer.include else pb2.TRAIN
        layer.data_param.source = str((data / Path(layer.data_param.source).name).resolve())
        if layer.transform_param.mean_file:
            layer.transform_param.mean_file = str((data / "mean.binaryproto").resolve())
        if phase == pb2.TEST:
            layer.data_param.batch_size = test_batch
        else:
            train_batch = layer.data_param.batch_size
            if augment:
                layer.transform_param.MergeFrom(read_augmentation(augment))
    set_classes(net, classes, "SoftmaxWithLoss", classifier_as)
    soft = (soft[0].resolve(), soft[1]) if soft else None
    if mixup:
        add_mixup(net, mixup, classes, train_batch, soft)
    elif soft:
        add_soft_loss(net, soft[0], train_batch, soft[1])
    atomic.write_text(target, text_format.MessageToString(net))
    return train_batch


def write_deploy(source: Path, target: Path, classes: int, classifier_as: str | None = None) -> None:
    """deploy.prototxt with one output per class (named as write_net named it)."""
    net = text_format.Parse(source.read_text(), caffe_pb2().NetParameter())
    set_classes(net, classes, "Softmax", classifier_as)
    atomic.write_text(target, text_format.MessageToString(net))


def write_solver(
    source: Path,
    target: Path,
    net: Path,
    schedule: Schedule,
    prefix: Path,
    seed: int | None = None,
    base_lr: float | None = None,
) -> int:
    """solver.prototxt with the values that follow from the data and this run's paths (and the
    random seed and base learning rate when given); returns the seed it uses."""
    pb2 = caffe_pb2()
    solver = text_format.Parse(source.read_text(), pb2.SolverParameter())
    if seed is not None:
        solver.random_seed = seed
    if base_lr is not None:
        solver.base_lr = base_lr
    solver.net = str(net)
    solver.max_iter = schedule.max_iter
    solver.lr_policy = schedule.policy
    if schedule.policy == "poly":
        solver.power = 1.0  # base_lr x (1 - iteration / max_iter): a straight line to 0
    del solver.stepvalue[:]
    solver.stepvalue.extend(schedule.stepvalues)
    del solver.test_iter[:]
    solver.test_iter.append(schedule.test_iter)
    solver.test_interval = schedule.epoch_iters
    solver.snapshot = schedule.snapshot
    solver.snapshot_prefix = str(prefix)
    atomic.write_text(target, text_format.MessageToString(solver))
    return solver.random_seed


def check_soft(path: Path, data: Path, weight: float, classes: int) -> dict:
    """The record of a soft-target LMDB: it must hold one vector of the classes' length per
    training image, under the training LMDB's keys (so that the two are read in lockstep)."""
    if not (path / "data.mdb").is_file():
        raise TrainError(f"--soft {path}: no LMDB there (expected e.g. train_targets_lmdb of a FER+ dataset)")
    keys, vectors = read_vectors(path)
    train_keys = read_keys(data / "train_lmdb")
    if keys != train_keys:
        raise TrainError(f"--soft {path}: its keys differ from {data / 'train_lmdb'}'s: not this dataset's targets")
    if vectors.shape[1] != classes or not np.allclose(vectors.sum(axis=1), 1, atol=1e-3):
        raise TrainError(f"--soft {path}: expected probability vectors of {classes} classes, got shape {vectors.shape}")
    return {"path": str(path.resolve()), "sha256": file_sha256(path / "data.mdb"), "weight": weight}


def newest_state(snapshots: Path) -> tuple[Path, int] | None:
    """The .solverstate with the highest iteration, and that iteration."""
    states = [(snapshot_iteration(p), p) for p in snapshots.glob("*_iter_*.solverstate")]
    if not states:
        return None
    iteration, path = max(states)
    return path, iteration


def check_weights(weights: Path, manifest: dict) -> dict:
    """The record of a .caffemodel to start from, or TrainError when it is missing or its model
    folder's alignment.json names another template than the dataset's."""
    if not weights.is_file():
        raise TrainError(f"no weights file {weights} (expected a .caffemodel, e.g. models/<name>/<name>.caffemodel)")
    alignment = weights.parent / "alignment.json"
    if alignment.exists():
        data_template = template(manifest)
        try:
            model_template = read_alignment(alignment)
        except ModelError as error:
            raise TrainError(str(error)) from error
        if model_template != data_template:
            raise TrainError(
                f"{weights} was trained on faces aligned with template {model_template!r} ({alignment}), "
                f"the dataset is aligned with {data_template!r}: start from a model of the same preprocessing"
            )
    return {"path": str(weights), "sha256": file_sha256(weights)}


def check_same_recipe(
    run_dir: Path,
    info: dict,
    net: str,
    start: dict | None,
    augmented: dict | None,
    targets: dict | None,
    lr_policy: str,
    seed: int | None,
    mixup: float | None = None,
) -> None:
    """A run folder resumes only the recipe it began (its run.json, info; nothing to check for
    a new run): the same net, start weights, augmentation, soft targets, mixup, learning-rate
    policy and, when one is given, seed. A snapshot of another recipe would be trained on silently."""
    if not info:
        return
    if info.get("net") != net:
        raise TrainError(f"{run_dir} is a run of net {info.get('net')!r}, not {net!r}: choose another RUN")
    if (info.get("weights") or {}).get("sha256") != (start or {}).get("sha256"):
        raise TrainError(f"{run_dir} started from weights {info.get('weights')}, not {start}: choose another RUN")
    if (info.get("augment") or {}).get("fields") != (augmented or {}).get("fields"):
        raise TrainError(
            f"{run_dir} trains with augmentation {(info.get('augment') or {}).get('fields')!r}, "
            f"not {(augmented or {}).get('fields')!r}: choose another RUN"
        )
    if info.get("soft") != targets:
        raise TrainError(f"{run_dir} trains with soft targets {info.get('soft')}, not {targets}: choose another RUN")
    if info.get("mixup") != mixup:
        raise TrainError(f"{run_dir} trains with mixup {info.get('mixup')}, not {mixup}: choose another RUN")
    policy = info.get("schedule", {}).get("policy", "multistep")  # runs from before --lr-policy were multistep
    if policy != lr_policy:
        raise TrainError(f"{run_dir} runs the {policy} learning rate policy, not {lr_policy}: choose another RUN")
    if seed is not None and info.get("seed") != seed:
        raise TrainError(f"{run_dir} runs with seed {info.get('seed')}, not {seed}: choose another RUN")


def train(
    net: str,
    data: Path,
    runs: Path,
    run: str,
    epochs: float,
    caffe: str,
    weights: Path | None = None,
    seed: int | None = None,
    augment: str | None = None,
    base_lr: float | None = None,
    soft: Path | None = None,
    soft_weight: float = SOFT_WEIGHT,
    lr_policy: str = "multistep",
    mixup: float | None = None,
) -> dict:
    """Start or resume one run, from weights (a .caffemodel) instead of random ones when given,
    with the solver's random seed unless seed is given, with the training images augmented as
    an augmentation file says when augment names one, mixed with mixup's alpha when given, the
    learning rate following lr_policy (train.schedule.POLICIES); returns its run.json."""
    folder = net_dir(net)
    net = folder.name
    manifest = check_data(data)
    start = check_weights(weights, manifest) if weights else None
    augmentation = augment_file(augment) if augment else None
    augmented = (
        {
            "name": augmentation.stem,
            "sha256": file_sha256(augmentation),
            "fields": text_format.MessageToString(read_augmentation(augmentation), as_one_line=True),
        }
        if augmentation
        else None
    )
    run_dir = runs / run
    check_run_folder(run, run_dir)
    info_path = run_dir / "run.json"
    info = json.loads(info_path.read_text()) if info_path.exists() else {}
    soft_path = (data / soft if not soft.is_absolute() and (data / soft).exists() else soft) if soft else None
    targets = check_soft(soft_path, data, soft_weight, len(manifest.get("classes", range(7)))) if soft_path else None
    check_same_recipe(run_dir, info, net, start, augmented, targets, lr_policy, seed, mixup)
    val_size = lmdb_size(data / "val_lmdb")
    snapshots = run_dir / "snapshots"
    snapshots.mkdir(parents=True, exist_ok=True)
    classes = len(manifest.get("classes", range(7)))
    source_net = text_format.Parse((folder / "train_val.prototxt").read_text(), caffe_pb2().NetParameter())
    last = classifier(source_net, "SoftmaxWithLoss").name
    stored = weights_layers(weights) if weights else None
    classifier_as = classifier_name(last, classes, stored) if stored is not None else last
    train_batch = write_net(
        folder / "train_val.prototxt",
        run_dir / "train_val.prototxt",
        data,
        exact_test_batch(val_size),
        classes,
        augmentation,
        classifier_as,
        (soft_path, soft_weight) if soft_path else None,
        mixup,
    )
    schedule = Schedule(
        epochs=epochs,
        batch_size=train_batch,
        train_size=lmdb_size(data / "train_lmdb"),
        val_size=val_size,
        test_batch=exact_test_batch(val_size),
        policy=lr_policy,
    )
    used_seed = write_solver(
        folder / "solver.prototxt",
        run_dir / "solver.prototxt",
        run_dir / "train_val.prototxt",
        schedule,
        snapshots / net,
        seed if seed is not None else info.get("seed"),
        base_lr if base_lr is not None else info.get("base_lr"),
    )
    write_deploy(folder / "deploy.prototxt", run_dir / "deploy.prototxt", classes, classifier_as)
    fresh = fresh_layers(run_dir / "train_val.prototxt", stored) if stored is not None else []
    resume = newest_state(snapshots)
    if fresh and not resume:
        print(f"note: {weights} has no layer {', '.join(fresh)}: it starts from its filler", file=sys.stderr)
    command = [
        caffe,
        "train",
        f"-solver={run_dir / 'solver.prototxt'}",
        "-sigint_effect=stop",
        "-sighup_effect=snapshot",
    ]
    if resume:
        if resume[1] >= schedule.max_iter:
            print(f"{run_dir}: already trained to iteration {resume[1]} of {schedule.max_iter}", file=sys.stderr)
            return info
        command.append(f"-snapshot={resume[0]}")
        print(f"resuming {run_dir} from iteration {resume[1]} ({resume[0].name})", file=sys.stderr)
    elif weights:
        command.append(f"-weights={weights}")
    info.update(
        {
            "net": net,
            "run": run,
            "weights": start,
            "seed": used_seed,
            "augment": augmented,
            "base_lr": base_lr if base_lr is not None else info.get("base_lr"),
            "fresh_layers": fresh,
            "soft": targets,
            "mixup": mixup,
            "engine": os.environ.get("CAFFE_ENGINE") or "DNNL (the build's default)",
            "command": " ".join(command),
            "data": {
                "dir": str(data.resolve()),
                "manifest_sha256": file_sha256(data / "manifest.json"),
                "csv_sha256": manifest.get("input", {}).get("csv_sha256"),
            },
            "schedule": {
                **asdict(schedule),
                "epoch_iters": schedule.epoch_iters,
                "max_iter": schedule.max_iter,
                "stepvalues": schedule.stepvalues,
                "test_iter": schedule.test_iter,
                "snapshot": schedule.snapshot,
            },
            "versions": {"python": platform.python_version(), "caffe": caffe_version(caffe)},
            "started": info.get("started", time.strftime("%Y-%m-%dT%H:%M:%S%z")),
            "status": "running",
        }
    )
    atomic.write_json(info_path, info)
    status, log = run_caffe(command, run_dir / "caffe.log", schedule, resume[1] if resume else 0)
    whole = parse((run_dir / "caffe.log").read_text())
    tests = whole.accuracies()
    info.update(
        {
            "status": status,
            "ended": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "final": {
                "iteration": whole.last_iteration(),
                "epoch": round(whole.last_iteration() / schedule.epoch_iters, 2),
                "train_loss": whole.train[-1][1] if whole.train else None,
                "val_accuracy": tests[-1][1] if tests else None,
                "best_val_accuracy": max(a for _, a in tests) if tests else None,
                "best_val_iteration": max(tests, key=lambda t: t[1])[0] if tests else None,
                "images_per_second": round((log.iterations_per_second() or 0) * schedule.batch_size, 1),
            },
        }
    )
    atomic.write_json(info_path, info)
    return info


def caffe_version(caffe: str) -> str:
    result = subprocess.run([caffe, "--version"], capture_output=True, text=True)
    return (result.stdout or result.stderr).strip().splitlines()[-1] if result.returncode == 0 else "unknown"


def run_caffe(command: list[str], log_path: Path, schedule: Schedule, start: int) -> tuple[str, CaffeLog]:
    """Run caffe train, appending its log to log_path and showing progress; on Ctrl-C or
    SIGTERM ask Caffe to snapshot and stop. Returns ("done" | "stopped" | "failed", log)."""
    env = {**os.environ, "GLOG_logtostderr": "1", "GLOG_minloglevel": "0"}
    process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    previous = signal.signal(signal.SIGTERM, lambda *_: process.send_signal(signal.SIGINT))
    log = CaffeLog()
    bar = tqdm(total=schedule.max_iter, initial=start, unit="it", file=sys.stderr, dynamic_ncols=True)
    stopping = False
    try:
        with open(log_path, "a", buffering=1) as out:  # line-buffered: tail -f shows it live
            while True:
                try:
                    line = process.stderr.readline()
                except KeyboardInterrupt:  # Caffe got the same SIGINT: it snapshots and stops
                    stopping = True
                    continue
                if not line:
                    break
                out.write(line)
                log.feed(line)
                _show(bar, log, schedule)
        code = process.wait()
    finally:
        bar.close()
        signal.signal(signal.SIGTERM, previous)
    if code != 0:
        print(f"caffe failed (exit {code}); see {log_path}", file=sys.stderr)
        return "failed", log
    if not log.done or log.stopped_early or stopping:
        print(f"stopped; snapshot in {log_path.parent / 'snapshots'}; run the same command to resume", file=sys.stderr)
        return "stopped", log
    return "done", log


def _show(bar: tqdm, log: CaffeLog, schedule: Schedule) -> None:
    """Update the progress bar from what the log says so far."""
    if not log.train:
        return
    iteration, loss = log.train[-1]
    bar.update(max(0, iteration - bar.n))
    speed = log.iterations_per_second()
    accuracy = tested[-1][1] if (tested := log.accuracies()) else None
    bar.set_postfix_str(
        f"epoch {iteration / schedule.epoch_iters:.1f} loss {loss:.3f} lr {log.lr[-1][1] if log.lr else 0:g} "
        + (f"val {accuracy:.3f}" if accuracy is not None else "val -")
        + (f" {speed * schedule.batch_size:.0f} img/s" if speed else ""),
        refresh=False,
    )
