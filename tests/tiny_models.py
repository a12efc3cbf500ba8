"""A small expression model for the tests, written with the project's own Caffe-proto writer
(no Caffe build needed): a convolution with BatchNorm statistics of real faces, so that
different faces get clearly different answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ferlib import caffe_proto
from reference_images import lfw_face

DEPLOY = """name: "tiny_fer"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 1 dim: 42 dim: 42 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: 8 kernel_size: 5 stride: 2 } }
layer { name: "conv1/bn" type: "BatchNorm" bottom: "conv1" top: "conv1" }
layer { name: "conv1/scale" type: "Scale" bottom: "conv1" top: "conv1" scale_param { bias_term: true } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
  pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layer { name: "fc" type: "InnerProduct" bottom: "pool1" top: "fc" inner_product_param { num_output: 7 } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""


def _weights(conv: list[np.ndarray], mean: np.ndarray, var: np.ndarray, fc: list[np.ndarray]) -> bytes:
    return caffe_proto.net_weights(
        "tiny_fer",
        {
            "conv1": ("Convolution", conv),
            "conv1/bn": ("BatchNorm", [mean, var, np.ones(1, np.float32)]),
            "conv1/scale": ("Scale", [np.ones(8, np.float32), np.zeros(8, np.float32)]),
            "fc": ("InnerProduct", fc),
        },
    )


def face_model(folder: Path, seed: int = 5) -> Path:
    """A model folder (deploy, random.caffemodel, mean, alignment) of the tiny net."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    conv = [rng.normal(0, 0.1, (8, 1, 5, 5)).astype(np.float32), np.zeros(8, np.float32)]
    fc = [rng.normal(0, 0.05, (7, 8 * 9 * 9)).astype(np.float32), np.zeros(7, np.float32)]
    faces = np.stack([lfw_face(i, 48)[3:45, 3:45] for i in range(64)]).astype(np.float32)[:, None] - 120
    windows = sliding_window_view(faces[:, 0], (5, 5), axis=(1, 2))[:, ::2, ::2]  # 5x5, stride 2: 19x19
    values = np.einsum("nyxhw,khw->nkyx", windows, conv[0][:, 0])  # the convolution, in NumPy
    statistics = values.mean(axis=(0, 2, 3)).astype(np.float32), values.var(axis=(0, 2, 3)).astype(np.float32)
    (folder / "deploy.prototxt").write_text(DEPLOY)
    (folder / "random.caffemodel").write_bytes(_weights(conv, *statistics, fc))
    np.save(folder / "mean.npy", np.full((1, 48, 48), 120, np.float32))
    (folder / "alignment.json").write_text('{"template": "fer2013"}')
    return folder
