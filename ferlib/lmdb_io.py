"""LMDB databases of Caffe Datum records, as Caffe's Data layer reads them."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import lmdb
import numpy as np

from ferlib import caffe_proto

MAP_SIZE = 1 << 40  # address space only; the file grows with what is written


def write_lmdb(path: Path, records: Iterable[tuple[str, np.ndarray, int]], commit_every: int = 1000) -> int:
    """Write (key, uint8 image, label) records into a new LMDB at path; returns the count."""
    return _write(path, ((key, caffe_proto.datum(image, int(label))) for key, image, label in records), commit_every)


def write_vectors(path: Path, records: Iterable[tuple[str, np.ndarray]], commit_every: int = 1000) -> int:
    """Write (key, float vector) records (soft targets) into a new LMDB at path; returns the count."""
    return _write(path, ((key, caffe_proto.vector_datum(vector)) for key, vector in records), commit_every)


def read_vectors(path: Path) -> tuple[list[str], np.ndarray]:
    """The keys and (N, C) float32 vectors of an LMDB write_vectors made, in key order."""
    with lmdb.open(str(path), readonly=True, lock=False) as env, env.begin() as txn:
        pairs = [(key.decode(), caffe_proto.read_vector_datum(value)) for key, value in txn.cursor()]
    return [k for k, _ in pairs], np.stack([v for _, v in pairs]) if pairs else np.zeros((0, 0), np.float32)


def read_keys(path: Path) -> list[str]:
    """An LMDB's keys, in order."""
    with lmdb.open(str(path), readonly=True, lock=False) as env, env.begin() as txn:
        return [key.decode() for key in txn.cursor().iternext(keys=True, values=False)]


def _write(path: Path, records: Iterable[tuple[str, bytes]], commit_every: int) -> int:
    """Put the records in commits of commit_every. meminit (LMDB's default) zeroes the unused
    bytes of each page: without it they hold whatever memory was there, so the same records
    made a different data.mdb each time, and a sha256 that a model card cites for its soft
    targets could never be matched by making them again."""
    env = lmdb.open(str(path), map_size=MAP_SIZE, subdir=True, meminit=True, map_async=True)
    count = 0
    txn = env.begin(write=True)
    try:
        for key, value in records:
            txn.put(key.encode(), value)
            count += 1
            if count % commit_every == 0:
                txn.commit()
                txn = env.begin(write=True)
        txn.commit()
    except BaseException:
        txn.abort()
        raise
    finally:
        env.sync()
        env.close()
    return count


def lmdb_size(path: Path) -> int:
    """Number of records in an LMDB."""
    with lmdb.open(str(path), readonly=True, lock=False) as env:
        return env.stat()["entries"]


def read_lmdb(path: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """All records in key order: keys, images (N, C, H, W) uint8, labels (N,)."""
    keys, images, labels = [], [], []
    with lmdb.open(str(path), readonly=True, lock=False) as env, env.begin() as txn:
        for key, value in txn.cursor():
            image, label = caffe_proto.read_datum(value)
            keys.append(key.decode())
            images.append(image)
            labels.append(label)
    return keys, np.stack(images) if images else np.zeros((0, 1, 0, 0), np.uint8), np.array(labels, dtype=np.int64)
