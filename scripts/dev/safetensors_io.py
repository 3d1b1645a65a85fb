"""safetensors_io.py: the safetensors format for the developer tools, with NumPy arrays:
one writer and one reader for the generators of test data and the PyTorch references
(each had its own copy). Not part of the build or of the tests' pass/fail.

    import safetensors_io
    safetensors_io.write(path, {"x": array}, {"key": "value"})
    arrays = safetensors_io.read(path)
"""
import json
import struct

import numpy as np

# The stored type of each NumPy type the tools write; BF16 has no NumPy type, and is
# written and read as its raw bits (uint16).
DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32, "U8": np.uint8,
          "BF16": np.uint16}
NAMES = {np.dtype(t): name for name, t in DTYPES.items() if name != "BF16"}


def write(path, tensors, metadata=None):
    """Writes `tensors` (a mapping, or a sequence of (name, value) pairs, in that order);
    a value is a little-endian NumPy array of a type in DTYPES, or (stored type, array)
    to store the array's bytes under that type (BF16 bits as uint16). `metadata`, a
    mapping of strings, goes first in the header when given."""
    header, blobs, offset = {}, [], 0
    if metadata is not None:
        header["__metadata__"] = metadata
    items = tensors.items() if hasattr(tensors, "items") else tensors
    for name, value in items:
        dtype, a = value if isinstance(value, tuple) else (None, value)
        a = np.ascontiguousarray(a)
        dtype = dtype or NAMES[a.dtype]
        raw = a.tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def read(path):
    """name -> NumPy array (read-only, BF16 as its uint16 bits) of every tensor in `path`."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        out[name] = np.frombuffer(data[8 + n + b:8 + n + end], dtype=DTYPES[e["dtype"]]).reshape(e["shape"])
    return out
