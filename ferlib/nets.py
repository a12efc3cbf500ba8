"""One way to run a Caffe net, whichever backend: OpenCV's DNN module ("opencv", which needs
no Caffe build) or pycaffe ("caffe"). MTCNN's three nets and the expression classifier both
run through it, so the two backends are chosen, checked and fed the same way everywhere."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

BACKENDS = ("opencv", "caffe")
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # failures are reported as one NetError line


def _reason(error: Exception) -> str:
    """An OpenCV or Caffe error message on one line, without OpenCV's source location."""
    text = " ".join(str(error).split())
    return text.split(" error: ", 1)[-1][-160:]


class NetError(Exception):
    """A net that cannot be loaded or run; the message names the file."""


def _caffe() -> object:
    os.environ.setdefault("GLOG_minloglevel", "2")
    try:
        import caffe
    except ImportError as error:
        raise NetError(
            f"--backend caffe: pycaffe is not installed ({error}); run 'make install', or use --backend opencv"
        ) from error
    caffe.set_mode_cpu()
    return caffe


class Net:
    """A net from its prototxt and its weights (a .caffemodel's bytes), run on float32 NCHW
    batches; outputs are the blobs returned, in order. The input blob is "data"."""

    def __init__(self, prototxt: bytes, weights: bytes, outputs: list[str], backend: str = "opencv", name: str = ""):
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}: {' or '.join(BACKENDS)}")
        self.outputs, self.backend, self.name = outputs, backend, name
        try:  # OpenCV's reader refuses what Caffe would abort the whole process on: check with it first
            opencv = cv2.dnn.readNetFromCaffe(np.frombuffer(prototxt, np.uint8), np.frombuffer(weights, np.uint8))
        except cv2.error as error:
            raise NetError(f"{name}: not a readable Caffe model ({_reason(error)})") from error
        if backend == "opencv":
            self._net = opencv
            return
        caffe = _caffe()
        with tempfile.TemporaryDirectory() as folder:  # pycaffe reads files only
            (Path(folder) / "net.prototxt").write_bytes(prototxt)
            (Path(folder) / "net.caffemodel").write_bytes(weights)
            try:
                self._net = caffe.Net(f"{folder}/net.prototxt", caffe.TEST, weights=f"{folder}/net.caffemodel")
            except (RuntimeError, ValueError) as error:
                raise NetError(f"{name}: pycaffe cannot read the model ({_reason(error)})") from error

    @classmethod
    def from_files(cls, deploy: Path, weights: Path, outputs: list[str], backend: str = "opencv") -> Net:
        """A net from a deploy.prototxt and a .caffemodel file (any file names)."""
        return cls(deploy.read_bytes(), weights.read_bytes(), outputs, backend, str(weights))

    def __call__(self, batch: np.ndarray) -> list[np.ndarray]:
        """The output blobs for one batch, copied out of the net."""
        try:
            if self.backend == "opencv":
                self._net.setInput(batch)
                return [np.array(out) for out in self._net.forward(self.outputs)]
            self._net.blobs["data"].reshape(*batch.shape)
            self._net.reshape()
            out = self._net.forward(data=batch)
            return [out[name].copy() for name in self.outputs]
        except (cv2.error, RuntimeError, ValueError, KeyError) as error:
            raise NetError(f"{self.name}: the net cannot run on a {batch.shape} batch ({_reason(error)})") from error


def forward_flops(prototxt: bytes, weights: bytes, shape: tuple[int, ...], name: str = "") -> int:
    """Floating-point operations of one forward pass on a batch of the given NCHW shape, as
    OpenCV counts them (convolutions, inner products and the element-wise layers): a cost that
    is the same on every machine, unlike a timing."""
    try:
        net = cv2.dnn.readNetFromCaffe(np.frombuffer(prototxt, np.uint8), np.frombuffer(weights, np.uint8))
        return int(net.getFLOPS(shape))
    except cv2.error as error:
        raise NetError(f"{name}: cannot count the operations of a {shape} pass ({_reason(error)})") from error
