"""preprocess.caffe_proto writes the same bytes as Caffe's own caffe_pb2."""

from __future__ import annotations

import numpy as np
import pytest

from ferlib import caffe_proto

caffe_pb2 = pytest.importorskip("caffe.proto.caffe_pb2")  # the built Caffe is the reference
pytestmark = pytest.mark.caffe


@pytest.mark.parametrize("label", [0, 6, 300])
@pytest.mark.parametrize("shape", [(48, 48), (1, 42, 42), (3, 5, 7)])
def test_datum_matches_caffe_pb2(shape: tuple[int, ...], label: int) -> None:
    image = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    chw = image.reshape((1,) * (3 - image.ndim) + image.shape)
    expected = caffe_pb2.Datum(
        channels=chw.shape[0], height=chw.shape[1], width=chw.shape[2], data=chw.tobytes(), label=label
    )
    assert caffe_proto.datum(image, label) == expected.SerializeToString()


def test_datum_refuses_non_uint8() -> None:
    with pytest.raises(ValueError, match="uint8"):
        caffe_proto.datum(np.zeros((4, 4), np.float32), 0)


def test_vector_datum_matches_caffe_pb2() -> None:
    vector = np.array([0.1, 0.0, 0.75, 0.15], np.float32)
    expected = caffe_pb2.Datum(channels=4, height=1, width=1, float_data=vector.tolist()).SerializeToString()
    assert caffe_proto.vector_datum(vector) == expected
    assert np.array_equal(caffe_proto.read_vector_datum(expected), vector)


def test_blob_proto_matches_caffe_pb2() -> None:
    mean = np.random.default_rng(2).uniform(0, 255, (1, 48, 48)).astype(np.float32)
    expected = caffe_pb2.BlobProto(num=1, channels=1, height=48, width=48, data=mean.reshape(-1).tolist())
    assert caffe_proto.blob_proto(mean) == expected.SerializeToString()


def test_net_weights_match_caffe_pb2() -> None:
    rng = np.random.default_rng(3)
    weight, bias = rng.normal(size=(4, 3, 2, 2)).astype(np.float32), rng.normal(size=4).astype(np.float32)
    expected = caffe_pb2.NetParameter(name="n")
    layer = expected.layer.add(name="conv1", type="Convolution")
    for blob in (weight, bias):
        proto = layer.blobs.add()
        proto.data.extend(blob.reshape(-1).tolist())
        proto.shape.dim.extend(blob.shape)
    assert caffe_proto.net_weights("n", {"conv1": ("Convolution", [weight, bias])}) == expected.SerializeToString()
