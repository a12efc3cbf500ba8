"""Small pycaffe nets for the layer tests: one layer (or a few) behind an Input blob "data",
run forward and backward, and checked against finite differences in the style of Caffe's
gradient checker. pycaffe is imported when a net is made, so that importing this module
needs no Caffe build."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

RNG = np.random.default_rng(11)


def one_layer_net(tmp_path: Path, shape: tuple[int, ...], layer: str, phase: str = "TRAIN") -> object:
    """A net of an Input layer and the given layer(s) (bottom "data", top "out"), with backward."""
    import caffe

    path = tmp_path / f"net{len(list(tmp_path.glob('net*.prototxt')))}.prototxt"
    dims = " ".join(f"dim: {d}" for d in shape)
    path.write_text(
        f'force_backward: true\nlayer {{ name: "data" type: "Input" top: "data" '
        f"input_param {{ shape {{ {dims} }} }} }}\n{layer}\n"
    )
    caffe.set_mode_cpu()
    return caffe.Net(str(path), getattr(caffe, phase))


def run(net: object, x: np.ndarray, top_diff_seed: int = 0) -> np.ndarray:
    """Forward x, then backward a random top gradient (parameter gradients zeroed first);
    returns that top gradient."""
    net.blobs["data"].data[...] = x
    net.forward()
    top_diff = np.random.default_rng(top_diff_seed).normal(size=net.blobs["out"].data.shape).astype(np.float32)
    net.blobs["out"].diff[...] = top_diff
    for params in net.params.values():
        for param in params:
            param.diff[...] = 0
    net.backward()
    return top_diff


def finite_difference_check(net: object, x: np.ndarray, top_diff: np.ndarray, picks: int = 12) -> None:
    """d(sum(top * top_diff))/dx at a few random inputs, numerically, against the net's backward."""
    analytic = net.blobs["data"].diff.copy()
    step = 1e-2
    for flat in RNG.choice(x.size, picks, replace=False):
        values = []
        for sign in (1, -1):
            shifted = x.copy()
            shifted.flat[flat] += sign * step
            net.blobs["data"].data[...] = shifted
            net.forward()
            values.append(float(np.sum(net.blobs["out"].data.astype(np.float64) * top_diff)))
        numeric = (values[0] - values[1]) / (2 * step)
        assert numeric == pytest.approx(analytic.flat[flat], rel=2e-2, abs=2e-3)
