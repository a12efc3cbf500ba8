"""Small datasets, nets and models with known answers for the train, evaluate, ensemble and
ship tests: 8x8 synthetic faces, a 6x6 one-layer net, and models whose rule is known."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from conftest import synthetic_images
from ferlib import caffe_proto
from ferlib.lmdb_io import write_lmdb

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
