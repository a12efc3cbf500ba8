"""PyTorch's twin of a net in prototxt/, read from its train_val.prototxt, so that every net
can be timed against PyTorch without a second, hand-written copy that could drift from it.

The twin is described first as plain layer records (with shapes worked out by Caffe's own
rounding rules), which tests compare with the net Caffe builds; only `build` needs torch, and
only the records travel to the process that times PyTorch.
Caffe's BatchNorm followed by Scale becomes one affine BatchNorm, as a PyTorch user would
write it. Data, accuracy and loss layers are left out: the benchmark feeds fixed tensors and
PyTorch's cross-entropy.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from google.protobuf import text_format

ROOT = Path(__file__).resolve().parent.parent
SKIPPED = {"Data", "Input", "Accuracy", "SoftmaxWithLoss"}


@dataclass(frozen=True)
class Layer:
    """One PyTorch module: kind, the Caffe blob it stands for, its sizes, and the (channels,
    height, width) or (features,) it outputs."""

    kind: str  # conv, batchnorm, relu, maxpool, flatten, linear, dropout
    top: str | None  # None for flatten, which Caffe's InnerProduct does inside
    sizes: dict
    out: tuple[int, ...]


def caffe_messages():
    """caffe_pb2 from the pycaffe build. This loads Caffe's C++ library too, so the process that
    times PyTorch gets the twin as records (to_json / from_json), not by reading the prototxt."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    from caffe.proto import caffe_pb2

    return caffe_pb2


def _first(values, default: int) -> int:
    return int(values[0]) if len(values) else default


def _pooled(size: int, kernel: int, stride: int, pad: int) -> int:
    """Caffe's pooled size: rounded up, less one where the last window would start in the padding."""
    out = math.ceil((size + 2 * pad - kernel) / stride) + 1
    return out - 1 if pad and (out - 1) * stride >= size + pad else out


def _train_val(net: str):
    return text_format.Parse((ROOT / f"prototxt/{net}/train_val.prototxt").read_text(), caffe_messages().NetParameter())


def crop_size(net: str) -> int:
    """The side of the square crop the net trains on (its data layer's transform_param)."""
    return next(layer.transform_param.crop_size for layer in _train_val(net).layer if layer.type == "Data")


def layers(net: str) -> list[Layer]:
    """The twin of prototxt/<net>/train_val.prototxt, layer by layer, for one-channel crops."""
    messages, model = caffe_messages(), _train_val(net)
    side = crop_size(net)
    shape: tuple[int, ...] = (1, side, side)
    twin: list[Layer] = []
    for layer in model.layer:
        kind, top = layer.type, layer.top[0] if layer.top else None
        if kind in SKIPPED:
            continue
        if kind == "Convolution":
            p = layer.convolution_param
            kernel, stride, pad = _first(p.kernel_size, 1), _first(p.stride, 1), _first(p.pad, 0)
            if p.group != 1 or _first(p.dilation, 1) != 1 or p.kernel_h or p.stride_h or p.pad_h:
                raise ValueError(f"{net}: layer {layer.name}: only square, ungrouped, undilated convolutions")
            sizes = {"cin": shape[0], "cout": p.num_output, "kernel": kernel, "stride": stride, "pad": pad}
            side = (shape[1] + 2 * pad - kernel) // stride + 1
            twin.append(Layer("conv", top, {**sizes, "bias": p.bias_term}, (p.num_output, side, side)))
        elif kind == "BatchNorm":
            twin.append(
                Layer(
                    "batchnorm", top, {"channels": shape[0], "eps": layer.batch_norm_param.eps, "affine": False}, shape
                )
            )
        elif kind == "Scale":
            if not twin or twin[-1].kind != "batchnorm" or not layer.scale_param.bias_term:
                raise ValueError(f"{net}: layer {layer.name}: a Scale (with bias) only after a BatchNorm")
            twin[-1] = Layer("batchnorm", top, {**twin[-1].sizes, "affine": True}, shape)
        elif kind == "ReLU":
            twin.append(Layer("relu", top, {}, shape))
        elif kind == "Pooling":
            p = layer.pooling_param
            if p.pool != messages.PoolingParameter.MAX or p.global_pooling:
                raise ValueError(f"{net}: layer {layer.name}: only max pooling")
            sizes = {"kernel": p.kernel_size, "stride": p.stride, "pad": p.pad}
            side = _pooled(shape[1], p.kernel_size, p.stride, p.pad)
            twin.append(Layer("maxpool", top, sizes, (shape[0], side, side)))
        elif kind == "InnerProduct":
            if len(shape) == 3:
                shape = (math.prod(shape),)
                twin.append(Layer("flatten", None, {}, shape))
            p = layer.inner_product_param
            twin.append(
                Layer("linear", top, {"fin": shape[0], "fout": p.num_output, "bias": p.bias_term}, (p.num_output,))
            )
        elif kind == "Dropout":
            twin.append(Layer("dropout", top, {"ratio": layer.dropout_param.dropout_ratio}, shape))
        else:
            raise ValueError(f"{net}: layer {layer.name}: no PyTorch twin for Caffe's {kind}")
        shape = twin[-1].out
    return twin


def parameter_count(twin: list[Layer]) -> int:
    """Learned numbers (weights, biases, BatchNorm's scale and shift), as PyTorch counts them."""
    total = 0
    for layer in twin:
        s = layer.sizes
        if layer.kind == "conv":
            total += s["cin"] * s["cout"] * s["kernel"] ** 2 + s["cout"] * s["bias"]
        elif layer.kind == "linear":
            total += s["fin"] * s["fout"] + s["fout"] * s["bias"]
        elif layer.kind == "batchnorm" and s["affine"]:
            total += 2 * s["channels"]
    return total


def to_json(twin: list[Layer]) -> str:
    return json.dumps([asdict(layer) for layer in twin])


def from_json(text: str) -> list[Layer]:
    return [Layer(**{**record, "out": tuple(record["out"])}) for record in json.loads(text)]


def build(twin: list[Layer]):
    """The torch.nn.Sequential of the records (Caffe's ceil-mode pooling)."""
    from torch import nn

    def module(layer: Layer) -> nn.Module:
        s = layer.sizes
        if layer.kind == "conv":
            return nn.Conv2d(s["cin"], s["cout"], s["kernel"], s["stride"], s["pad"], bias=s["bias"])
        if layer.kind == "batchnorm":
            norm = nn.BatchNorm2d if len(layer.out) == 3 else nn.BatchNorm1d
            return norm(s["channels"], eps=s["eps"], affine=s["affine"])
        if layer.kind == "maxpool":
            return nn.MaxPool2d(s["kernel"], s["stride"], s["pad"], ceil_mode=True)
        if layer.kind == "linear":
            return nn.Linear(s["fin"], s["fout"], bias=s["bias"])
        if layer.kind == "dropout":
            return nn.Dropout(s["ratio"])
        return {"relu": nn.ReLU, "flatten": nn.Flatten}[layer.kind]()

    return nn.Sequential(*(module(layer) for layer in twin))
