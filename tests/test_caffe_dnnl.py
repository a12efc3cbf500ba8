"""The oneDNN engine (engine: DNNL, scripts/caffe-patches/0003) computes what the CAFFE engine
computes: every layer's outputs, input gradients, parameter gradients and BatchNorm's moving
statistics, on odd shapes (non-square, padding and stride variants, batch 1, Caffe's
ceil-mode pooling), alone and chained in place as the shipped nets chain them (where the
layers hand each other oneDNN's blocked layout), and against finite differences."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from caffe_nets import finite_difference_check, one_layer_net, run

caffe = pytest.importorskip("caffe")  # make test-fast runs without the build; conftest insists on it in make test
pytestmark = pytest.mark.caffe

GAUSS = 'weight_filler {{ type: "gaussian" std: 0.2 }} bias_filler {{ type: "gaussian" std: 0.2 }}'
CONV = (
    'layer {{ name: "conv" type: "Convolution" bottom: "data" top: "out" convolution_param {{ {p} '
    + GAUSS
    + " engine: {e} }} }}"
)
POOL = 'layer {{ name: "pool" type: "Pooling" bottom: "data" top: "out" pooling_param {{ {p} engine: {e} }} }}'
RELU = 'layer {{ name: "relu" type: "ReLU" bottom: "data" top: "out" relu_param {{ {p} engine: {e} }} }}'
BN = 'layer {{ name: "bn" type: "BatchNorm" bottom: "data" top: "out" batch_norm_param {{ {p} engine: {e} }} }}'
SCALE = (
    'layer {{ name: "scale" type: "Scale" bottom: "data" top: "out" scale_param {{ {p} '
    'filler {{ type: "gaussian" std: 1 }} bias_filler {{ type: "gaussian" std: 1 }} engine: {e} }} }}'
)

LAYERS = {  # name: (input shape, layer template, its parameters)
    "conv 3x3 pad 1, bias": ((2, 3, 9, 7), CONV, "num_output: 8 kernel_size: 3 pad: 1"),
    "conv 4x4 stride 2, no bias, batch 1": (
        (1, 5, 8, 11),
        CONV,
        "num_output: 6 kernel_size: 4 stride: 2 bias_term: false",
    ),
    "conv 5x5 pad 2 from 1 channel": ((3, 1, 12, 12), CONV, "num_output: 16 kernel_size: 5 pad: 2"),
    "conv 3x2 kernel, pad 1x0": ((2, 4, 7, 9), CONV, "num_output: 5 kernel_h: 3 kernel_w: 2 pad_h: 1 pad_w: 0"),
    "conv dilation 2": ((2, 3, 11, 10), CONV, "num_output: 4 kernel_size: 3 dilation: 2"),
    "max pool 3/2, ceil overhang": ((2, 16, 9, 7), POOL, "pool: MAX kernel_size: 3 stride: 2"),
    "max pool 2/2, odd size": ((2, 16, 11, 13), POOL, "pool: MAX kernel_size: 2 stride: 2"),
    "max pool 3/2 pad 1, batch 1": ((1, 8, 13, 10), POOL, "pool: MAX kernel_size: 3 stride: 2 pad: 1"),
    "max pool 3/1 pad 1": ((2, 8, 6, 5), POOL, "pool: MAX kernel_size: 3 stride: 1 pad: 1"),
    "ave pool 2/2": ((2, 8, 10, 8), POOL, "pool: AVE kernel_size: 2 stride: 2"),
    "ave pool 3/1 pad 1": ((3, 4, 7, 6), POOL, "pool: AVE kernel_size: 3 stride: 1 pad: 1"),
    "relu": ((2, 8, 7, 5), RELU, "negative_slope: 0"),
    "leaky relu": ((2, 8, 7, 5), RELU, "negative_slope: 0.1"),
    "batch norm": ((4, 16, 5, 7), BN, "eps: 0.001"),
    "batch norm, batch 1, 3 channels": ((1, 3, 6, 9), BN, ""),
    "batch norm of N x C": ((6, 10), BN, ""),
    "scale with bias": ((3, 16, 5, 6), SCALE, "bias_term: true"),
    "scale without bias": ((2, 7, 3, 4), SCALE, "bias_term: false"),
    "scale of N x C": ((6, 10), SCALE, "bias_term: true"),
}


def input_for(shape: tuple[int, ...], name: str) -> np.ndarray:
    """Distinct values 0.05 apart, none within 0.025 of zero: no ties, so max pooling and ReLU
    pick the same inputs in both engines, and no finite-difference step crosses a kink."""
    rng = np.random.default_rng(len(name))
    values = (rng.permutation(int(np.prod(shape))) - np.prod(shape) / 2 + 0.5) * 0.05
    return values.reshape(shape).astype(np.float32)


def twins(tmp_path: Path, shape: tuple[int, ...], layers: str, phase: str = "TRAIN") -> tuple[object, object]:
    """The same net with every layer on the CAFFE engine and on the DNNL engine, same weights."""
    nets = [one_layer_net(tmp_path, shape, layers.replace("ENGINE", engine), phase) for engine in ("CAFFE", "DNNL")]
    for name, params in nets[0].params.items():
        for mine, theirs in zip(params, nets[1].params[name]):
            theirs.data[...] = mine.data
    return nets[0], nets[1]


def assert_same(caffe_net: object, dnnl_net: object, x: np.ndarray) -> None:
    """Outputs, input gradient, parameter gradients and parameters after the step agree."""
    top_diff = run(caffe_net, x)
    run(dnnl_net, x)
    expected = caffe_net.blobs["out"].data
    assert dnnl_net.blobs["out"].data.shape == expected.shape
    scale = max(1.0, float(np.abs(expected).max()))
    assert np.allclose(dnnl_net.blobs["out"].data, expected, rtol=1e-4, atol=1e-5 * scale)
    assert np.allclose(dnnl_net.blobs["data"].diff, caffe_net.blobs["data"].diff, rtol=1e-3, atol=1e-4)
    for name, params in caffe_net.params.items():
        for i, (mine, theirs) in enumerate(zip(params, dnnl_net.params[name])):
            assert np.allclose(theirs.diff, mine.diff, rtol=1e-3, atol=1e-3), f"{name} gradient {i}"
            assert np.allclose(theirs.data, mine.data, rtol=1e-4, atol=1e-5), f"{name} blob {i}"
    return top_diff


@pytest.mark.parametrize("name", LAYERS)
def test_each_layer_matches_the_caffe_engine(tmp_path: Path, name: str) -> None:
    shape, template, params = LAYERS[name]
    caffe_net, dnnl_net = twins(tmp_path, shape, template.format(p=params, e="ENGINE"))
    x = input_for(shape, name)
    top_diff = assert_same(caffe_net, dnnl_net, x)
    if "batch norm" not in name:  # BatchNorm's outputs depend on the whole batch: checked in the chain
        finite_difference_check(dnnl_net, x, top_diff)


CHAIN = """
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: 16 kernel_size: 3 pad: 1 bias_term: false
    weight_filler { type: "msra" } engine: ENGINE } }
layer { name: "conv1/bn" type: "BatchNorm" bottom: "conv1" top: "conv1" batch_norm_param { engine: ENGINE } }
layer { name: "conv1/scale" type: "Scale" bottom: "conv1" top: "conv1"
  scale_param { bias_term: true filler { type: "gaussian" std: 1 }
    bias_filler { type: "gaussian" std: 0.5 } engine: ENGINE } }
layer { name: "conv1/relu" type: "ReLU" bottom: "conv1" top: "conv1" relu_param { engine: ENGINE } }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
  pooling_param { pool: MAX kernel_size: 3 stride: 2 engine: ENGINE } }
layer { name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2"
  convolution_param { num_output: 32 kernel_size: 3 pad: 1 weight_filler { type: "msra" }
    bias_filler { type: "gaussian" std: 0.1 } engine: ENGINE } }
layer { name: "conv2/relu" type: "ReLU" bottom: "conv2" top: "conv2" relu_param { engine: ENGINE } }
layer { name: "fc" type: "InnerProduct" bottom: "conv2" top: "out"
  inner_product_param { num_output: 7 weight_filler { type: "xavier" } } }
"""


@pytest.mark.parametrize("batch", [1, 6])
def test_an_in_place_chain_in_blocked_layouts_matches_the_caffe_engine(tmp_path: Path, batch: int) -> None:
    shape = (batch, 1, 15, 13)
    caffe_net, dnnl_net = twins(tmp_path, shape, CHAIN)
    x = input_for(shape, "chain")
    top_diff = assert_same(caffe_net, dnnl_net, x)
    for blob in ("conv1", "pool1", "conv2"):  # pycaffe reads the plain values of blocked blobs
        assert np.allclose(dnnl_net.blobs[blob].data, caffe_net.blobs[blob].data, rtol=1e-4, atol=1e-4)
    if batch > 1:
        finite_difference_check(dnnl_net, x, top_diff)


def test_the_test_phase_uses_the_moving_statistics(tmp_path: Path) -> None:
    shape = (3, 16, 5, 7)
    layers = BN.format(p="", e="ENGINE")
    caffe_net, dnnl_net = twins(tmp_path, shape, layers, phase="TEST")
    for net in (caffe_net, dnnl_net):  # moving sums of mean and variance, and their weight
        bn = net.params["bn"]
        bn[0].data[...] = np.arange(16)
        bn[1].data[...] = np.arange(16) + 1.0
        bn[2].data[...] = 2.0
    x = input_for(shape, "test phase")
    for net in (caffe_net, dnnl_net):
        net.blobs["data"].data[...] = x
        net.forward()
    assert np.allclose(dnnl_net.blobs["out"].data, caffe_net.blobs["out"].data, rtol=1e-5, atol=1e-5)


def test_mixed_engines_hand_over_plain_values(tmp_path: Path) -> None:
    """A CAFFE-engine layer between oneDNN layers reads and writes Caffe's plain layout."""
    mixed = CHAIN.replace(
        '"conv1/relu" type: "ReLU" bottom: "conv1" top: "conv1" relu_param { engine: ENGINE }',
        '"conv1/relu" type: "ReLU" bottom: "conv1" top: "conv1" relu_param { engine: CAFFE }',
    )
    shape = (4, 1, 15, 13)
    caffe_net, _ = twins(tmp_path, shape, CHAIN)
    _, dnnl_net = twins(tmp_path, shape, mixed)
    for name, params in caffe_net.params.items():
        for mine, theirs in zip(params, dnnl_net.params[name]):
            theirs.data[...] = mine.data
    assert_same(caffe_net, dnnl_net, input_for(shape, "mixed"))


def test_the_default_engine_is_dnnl_unless_caffe_engine_says_caffe(tmp_path: Path) -> None:
    """oneDNN's verbose mode lists the primitives a default (engine-less) net runs."""
    import os
    import subprocess
    import sys

    net = tmp_path / "net.prototxt"
    net.write_text(
        'layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 dim: 8 dim: 8 } } }\n'
        'layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"\n'
        "  convolution_param { num_output: 4 kernel_size: 3 } }\n"
    )
    script = f"import caffe; caffe.set_mode_cpu(); caffe.Net({str(net)!r}, caffe.TEST).forward()"
    runs = {}
    for engine in ("", "CAFFE"):
        env = {**os.environ, "ONEDNN_VERBOSE": "1", "CAFFE_ENGINE": engine, "GLOG_minloglevel": "2"}
        runs[engine] = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
        assert runs[engine].returncode == 0, runs[engine].stderr
    assert "exec,cpu,convolution" in runs[""].stdout
    assert "exec,cpu,convolution" not in runs["CAFFE"].stdout
