"""The message format between Python and the JavaScript runtimes (``assets/wire.mjs`` is its twin).

One message: a 4-byte little-endian length, that many bytes of UTF-8 JSON (the header), then
the raw little-endian bytes of each tensor the header lists under ``"tensors"`` (``name``,
``dtype``, ``shape``, ``nbytes``), back to back. Tensors travel as bytes, not as JSON numbers:
exact, and as fast as the pipe or the socket.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from typing import Any, BinaryIO

import numpy as np

from gru_onnx.errors import GruOnnxUsageError

#: NumPy dtype name -> ONNX Runtime JavaScript tensor type (the same names, bool included).
DTYPES = ("float32", "float16", "float64", "int64", "int32", "int16", "int8", "uint64", "uint32",
          "uint16", "uint8", "bool")  # fmt: skip


def encode(header: Mapping[str, Any], tensors: Mapping[str, np.ndarray] | None = None) -> bytes:
    """One message: ``header`` plus ``tensors`` (listed in its ``"tensors"`` entry, in order)."""
    arrays = []
    specs = []
    for name, value in (tensors or {}).items():
        array = np.ascontiguousarray(value)
        dtype = array.dtype.name
        if dtype not in DTYPES:
            raise GruOnnxUsageError(f"input {name!r} has dtype {dtype}, which ONNX Runtime for JavaScript cannot take")
        array = array.astype(array.dtype.newbyteorder("<"), copy=False)
        arrays.append(array)
        specs.append({"name": name, "dtype": dtype, "shape": list(array.shape), "nbytes": array.nbytes})
    head = json.dumps({**header, "tensors": specs}).encode()
    return b"".join([struct.pack("<I", len(head)), head, *(a.tobytes() for a in arrays)])


def decode(data: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``(header, tensors by name)`` of one message held in ``data``."""
    (size,) = struct.unpack_from("<I", data, 0)
    header = json.loads(data[4 : 4 + size])
    return header, _tensors(header, memoryview(data)[4 + size :])


def read(stream: BinaryIO) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
    """The next message from ``stream``, or None at its end (the other side exited)."""
    prefix = _read_exactly(stream, 4)
    if prefix is None:
        return None
    (size,) = struct.unpack("<I", prefix)
    head = _read_exactly(stream, size)
    if head is None:
        return None
    header = json.loads(head)
    body = _read_exactly(stream, sum(int(t["nbytes"]) for t in header.get("tensors", [])))
    return None if body is None else (header, _tensors(header, memoryview(body)))


def _read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        chunk = stream.read(left)
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _tensors(header: Mapping[str, Any], body: memoryview) -> dict[str, np.ndarray]:
    tensors, offset = {}, 0
    for spec in header.get("tensors", []):
        size = int(spec["nbytes"])
        dtype = np.dtype(spec["dtype"]).newbyteorder("<")
        flat = np.frombuffer(body[offset : offset + size], dtype=dtype)
        tensors[spec["name"]] = flat.reshape(spec["shape"]).astype(dtype.newbyteorder("="), copy=True)
        offset += size
    return tensors
