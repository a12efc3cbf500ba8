"""MTCNN's P-, R- and O-Net as Caffe nets, with the weights of the `mtcnn` package.

The `mtcnn` package (PyPI mtcnn==1.0.0, MIT) ships its weights as joblib + lz4 files of
float32 arrays in TensorFlow's layout. This module reads them (without importing the package,
which would import TensorFlow), reorders them into Caffe's layout and runs the nets described
by prototxt/mtcnn/{pnet,rnet,onet}.prototxt with OpenCV's DNN module (default) or pycaffe.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import joblib
import numpy as np

from ferlib import caffe_proto
from ferlib.nets import Net

PROTOTXT_DIR = Path(__file__).resolve().parent.parent / "prototxt" / "mtcnn"

# Layers that carry weights, in the order the mtcnn package stores them, and each net's outputs.
LAYERS = {
    "pnet": ["conv1", "prelu1", "conv2", "prelu2", "conv3", "prelu3", "conv4-1", "conv4-2"],
    "rnet": ["conv1", "prelu1", "conv2", "prelu2", "conv3", "prelu3", "fc4", "prelu4", "fc5-1", "fc5-2"],
    "onet": [
        "conv1",
        "prelu1",
        "conv2",
        "prelu2",
        "conv3",
        "prelu3",
        "conv4",
        "prelu4",
        "fc5",
        "prelu5",
        "fc6-1",
        "fc6-2",
        "fc6-3",
    ],
}
# The first dense layer of R- and O-Net reads a (channels, 3, 3) map that TensorFlow flattened
# in (width, height, channel) order after a permute; Caffe flattens (channel, height, width).
FLATTENED = {"fc4": 64, "fc5": 128}
OUTPUTS = {
    "pnet": ["conv4-1", "prob1"],
    "rnet": ["fc5-1", "prob1"],
    "onet": ["fc6-1", "fc6-2", "prob1"],
}


def weights_dir() -> Path:
    """Folder of the `mtcnn` package's weight files, found without importing the package."""
    spec = importlib.util.find_spec("mtcnn")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "the 'mtcnn' package is not installed: run 'make install' "
            "(it is installed with --no-deps, for its weight files only)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "assets" / "weights"


def caffe_weights(net: str) -> dict[str, list[np.ndarray]]:
    """The weights of one net ('pnet', 'rnet', 'onet') as Caffe blobs, keyed by layer name."""
    arrays = iter(joblib.load(weights_dir() / f"{net}.lz4"))
    blobs: dict[str, list[np.ndarray]] = {}
    for name in LAYERS[net]:
        if name.startswith("prelu"):
            blobs[name] = [next(arrays).reshape(-1)]
            continue
        weight, bias = next(arrays), next(arrays)
        if weight.ndim == 4:  # convolution: (kh, kw, in, out) -> (out, in, kh, kw)
            weight = weight.transpose(3, 2, 0, 1)
        elif name in FLATTENED:
            channels = FLATTENED[name]
            side = int(round((weight.shape[0] // channels) ** 0.5))
            weight = weight.reshape(side, side, channels, -1).transpose(3, 2, 1, 0)
            weight = weight.reshape(weight.shape[0], -1)
        else:  # dense: (in, out) -> (out, in)
            weight = weight.T
        blobs[name] = [np.ascontiguousarray(weight), bias]
    return blobs


def caffemodel(net: str) -> bytes:
    """One net's weights as the bytes of a .caffemodel file."""
    kinds = {"conv": "Convolution", "prelu": "PReLU", "fc": "InnerProduct"}
    layers = {
        name: (next(v for k, v in kinds.items() if name.startswith(k)), blobs)
        for name, blobs in caffe_weights(net).items()
    }
    return caffe_proto.net_weights(net, layers)


def load(net: str, backend: str = "opencv") -> Net:
    """One MTCNN net ('pnet', 'rnet', 'onet'), by either backend."""
    prototxt = (PROTOTXT_DIR / f"{net}.prototxt").read_bytes()
    return Net(prototxt, caffemodel(net), OUTPUTS[net], backend, f"MTCNN {net}")
