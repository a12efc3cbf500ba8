"""Caffe's protobuf records (Datum, BlobProto, a weights-only NetParameter) without Caffe.

Field numbers and wire types are those of Caffe's src/caffe/proto/caffe.proto; fields are
written in field-number order, as protobuf's C++ serializer does, so the bytes equal what
caffe_pb2 would produce (tests/test_caffe_proto.py checks this against the built Caffe).
This keeps face detection, preprocessing and prediction free of the Caffe build.
"""

from __future__ import annotations

import numpy as np

_VARINT, _BYTES = 0, 2


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(field: int, wire_type: int) -> bytes:
    return _varint(field << 3 | wire_type)


def _int(field: int, value: int) -> bytes:
    return _key(field, _VARINT) + _varint(value)


def _bytes(field: int, payload: bytes) -> bytes:
    return _key(field, _BYTES) + _varint(len(payload)) + payload


def _floats(field: int, values: np.ndarray) -> bytes:
    return _bytes(field, np.ascontiguousarray(values, dtype="<f4").tobytes())


def datum(image: np.ndarray, label: int) -> bytes:
    """A Datum of one uint8 image, (height, width) or (channels, height, width), and its label."""
    if image.dtype != np.uint8:
        raise ValueError(f"a Datum holds uint8 pixels, got {image.dtype}")
    chw = image.reshape((1,) * (3 - image.ndim) + image.shape)
    channels, height, width = chw.shape
    return (
        _int(1, channels)
        + _int(2, height)
        + _int(3, width)
        + _bytes(4, np.ascontiguousarray(chw).tobytes())
        + _int(5, label)
    )


def vector_datum(values: np.ndarray) -> bytes:
    """A Datum of one float vector (channels = its length, 1x1), as a second Data layer reads
    soft targets: float_data is an unpacked repeated field in caffe.proto."""
    vector = np.ascontiguousarray(values, dtype="<f4").reshape(-1)
    fixed32 = _key(6, 5)
    return _int(1, len(vector)) + _int(2, 1) + _int(3, 1) + b"".join(fixed32 + v.tobytes() for v in vector)


def read_vector_datum(data: bytes) -> np.ndarray:
    """The float_data of a serialized vector_datum."""
    pos, values = 0, []
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        if key == (6 << 3 | 5):
            values.append(data[pos : pos + 4])
            pos += 4
        elif key & 7 == _VARINT:
            _, pos = _read_varint(data, pos)
        else:
            raise ValueError(f"unexpected field {key >> 3} in a vector Datum")
    return np.frombuffer(b"".join(values), "<f4").copy()


def blob_proto(array: np.ndarray) -> bytes:
    """A BlobProto of a (channels, height, width) float array in the legacy 4-D form.

    This is the form Caffe's compute_image_mean writes and transform_param.mean_file reads.
    """
    channels, height, width = array.shape
    return _int(1, 1) + _int(2, channels) + _int(3, height) + _int(4, width) + _floats(5, array.reshape(-1))


def _shaped_blob(array: np.ndarray) -> bytes:
    dims = b"".join(_varint(d) for d in array.shape)
    return _floats(5, array.reshape(-1)) + _bytes(7, _bytes(1, dims))


def net_weights(name: str, layers: dict[str, tuple[str, list[np.ndarray]]]) -> bytes:
    """A NetParameter holding only weights: {layer name: (layer type, [blobs])}, like a .caffemodel."""
    body = _bytes(1, name.encode())
    for layer_name, (layer_type, blobs) in layers.items():
        layer = _bytes(1, layer_name.encode()) + _bytes(2, layer_type.encode())
        layer += b"".join(_bytes(7, _shaped_blob(blob)) for blob in blobs)
        body += _bytes(100, layer)
    return body


def read_datum(data: bytes) -> tuple[np.ndarray, int]:
    """The (channels, height, width) uint8 image and label of a serialized Datum."""
    fields: dict[int, int | bytes] = {}
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        field, wire_type = key >> 3, key & 7
        if wire_type == _VARINT:
            fields[field], pos = _read_varint(data, pos)
        elif wire_type == _BYTES:
            size, pos = _read_varint(data, pos)
            fields[field], pos = data[pos : pos + size], pos + size
        else:
            raise ValueError(f"unexpected protobuf wire type {wire_type} in a Datum")
    if 4 not in fields:
        raise ValueError("a Datum without uint8 data (float_data or encoded images are not supported)")
    shape = (fields.get(1, 1), fields.get(2, 1), fields.get(3, 1))
    return np.frombuffer(fields[4], np.uint8).reshape(shape), int(fields.get(5, 0))


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos
