"""Minimal safetensors reader/writer in plain Python (struct + json + numpy).

Written independently of the C++ reader so that the tests compare two implementations of the
format. Supports F32, F64, BF16, F16, I32 and I64 (token files), and F8_E4M3 written from its codes.
"""
import json
import struct

import numpy as np

_NP = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "I32": np.int32, "I64": np.int64,
       "F8_E4M3": np.uint8}  # F8_E4M3: the caller passes the 8-bit codes


def _bf16_bytes(a):
    bits = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16  # round to nearest even
    return rounded.astype(np.uint16).tobytes()


def write(path, tensors, dtype="F32", metadata=None, dtypes=None):
    """tensors: name -> array. dtype applies to all unless dtypes[name] overrides it."""
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, value in tensors.items():
        kind = (dtypes or {}).get(name, dtype)
        arr = np.asarray(value)
        blob = _bf16_bytes(arr) if kind == "BF16" else np.ascontiguousarray(arr, dtype=_NP[kind]).tobytes()
        header[name] = {"dtype": kind, "shape": list(arr.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def read(path):
    """Returns name -> float64 array (BF16/F16/F32/F64)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    data = raw[8 + n :]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        blob = data[begin:end]
        if info["dtype"] == "BF16":
            bits = np.frombuffer(blob, dtype=np.uint16).astype(np.uint32) << 16
            arr = bits.view(np.float32)
        else:
            arr = np.frombuffer(blob, dtype=_NP[info["dtype"]])
        out[name] = arr.astype(np.float64).reshape(info["shape"])
    return out


def raw_file(header_obj, data=b"", header_len=None):
    """Bytes of a hand-made file, for malformed-input tests."""
    text = json.dumps(header_obj).encode() if not isinstance(header_obj, bytes) else header_obj
    n = len(text) if header_len is None else header_len
    return struct.pack("<Q", n) + text + data
