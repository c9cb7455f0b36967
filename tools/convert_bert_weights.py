#!/usr/bin/env python3
"""Converts DIR/pytorch_model.bin (a PyTorch state dict in torch.save's zip format, as older Hugging
Face sentence encoders ship it) into DIR/model.safetensors, the file LoadBertEmbedder reads
(engine/bert/embedder.h). Run it once per model directory; the C++ side never reads pickles.

Needs only Python 3's standard library (no torch, no numpy). The pickle is read by a restricted
unpickler that resolves only the globals a state dict uses (collections.OrderedDict,
torch._utils._rebuild_tensor_v2 / _rebuild_parameter and the torch.*Storage types, all mapped to
local stand-ins) and refuses any other, so a hostile file cannot run code. Each tensor is rebuilt
from (storage, offset, size, stride) and written contiguously, in its own dtype, bit for bit.
The output is written to a temporary file and renamed into place; an existing model.safetensors
is kept unless --force.

Usage: python3 tools/convert_bert_weights.py [--force] DIR"""
import argparse
import collections
import itertools
import json
import math
import os
import pickle
import struct
import sys
import zipfile


class ConvertError(Exception):
    """A one-line reason the conversion stopped."""


# torch.<name>Storage -> (safetensors dtype, bytes per element, memoryview format of that width)
STORAGE_DTYPES = {
    "FloatStorage": ("F32", 4),
    "HalfStorage": ("F16", 2),
    "BFloat16Storage": ("BF16", 2),
    "DoubleStorage": ("F64", 8),
    "LongStorage": ("I64", 8),
    "IntStorage": ("I32", 4),
    "ShortStorage": ("I16", 2),
    "CharStorage": ("I8", 1),
    "ByteStorage": ("U8", 1),
    "BoolStorage": ("BOOL", 1),
}
WORD_FORMAT = {1: "B", 2: "H", 4: "I", 8: "Q"}  # elements are moved as raw words, never converted


class StorageType:
    """Stands for a torch.*Storage class in the pickle; never called."""

    def __init__(self, name):
        self.name = name
        self.dtype, self.itemsize = STORAGE_DTYPES[name]


class Storage:
    def __init__(self, storage_type, key, data):
        self.dtype = storage_type.dtype
        self.itemsize = storage_type.itemsize
        self.key = key
        self.data = data  # bytes, exactly numel * itemsize
        self.numel = len(data) // self.itemsize


class Tensor:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride


def _ints(value, what):
    if not isinstance(value, tuple) or not all(type(v) is int for v in value):
        raise ConvertError(f"{what} is not a tuple of integers: {value!r}")
    return value


def rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                      backward_hooks=None, metadata=None):
    if not isinstance(storage, Storage):
        raise ConvertError("_rebuild_tensor_v2 without a storage")
    if type(storage_offset) is not int or storage_offset < 0:
        raise ConvertError(f"bad storage offset {storage_offset!r}")
    size = _ints(size, "tensor size")
    stride = _ints(stride, "tensor stride")
    if len(size) != len(stride) or any(s < 0 for s in size) or any(s < 0 for s in stride):
        raise ConvertError(f"bad tensor size {size} / stride {stride}")
    return Tensor(storage, storage_offset, size, stride)


def rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
    if not isinstance(data, Tensor):
        raise ConvertError("_rebuild_parameter of something other than a tensor")
    return data


ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): rebuild_parameter,
}


class StateDictUnpickler(pickle.Unpickler):
    """Resolves only ALLOWED_GLOBALS and torch.*Storage, to the stand-ins above."""

    def __init__(self, file, archive, prefix):
        super().__init__(file)
        self.archive, self.prefix, self.storages = archive, prefix, {}

    def find_class(self, module, name):
        if (module, name) in ALLOWED_GLOBALS:
            return ALLOWED_GLOBALS[(module, name)]
        if module == "torch" and name in STORAGE_DTYPES:
            return StorageType(name)
        raise ConvertError(f"refusing to unpickle global {module}.{name}: a state dict of tensors "
                           "needs only OrderedDict, torch._utils._rebuild_* and torch.*Storage")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise ConvertError(f"unknown persistent id {pid!r:.80}")
        _, storage_type, key, _location, numel = pid
        if not isinstance(storage_type, StorageType) or type(numel) is not int or numel < 0:
            raise ConvertError(f"bad storage reference {pid!r:.80}")
        key = str(key)
        if key not in self.storages:
            entry = f"{self.prefix}data/{key}"
            try:
                data = self.archive.read(entry)
            except KeyError:
                raise ConvertError(f"storage {entry} is missing from the archive") from None
            need = numel * storage_type.itemsize
            if len(data) < need:
                raise ConvertError(f"storage {entry} has {len(data)} bytes, expected {need}")
            self.storages[key] = Storage(storage_type, key, data[:need])
        storage = self.storages[key]
        if storage.dtype != storage_type.dtype:
            raise ConvertError(f"storage {key} is read as both {storage.dtype} and {storage_type.dtype}")
        return storage


def contiguous_bytes(t):
    """The tensor's elements in row-major order, honouring its offset and strides."""
    n = math.prod(t.size)
    if n == 0:
        return b""
    isz = t.storage.itemsize
    last = t.offset + sum((s - 1) * st for s, st in zip(t.size, t.stride))
    if last >= t.storage.numel:
        raise ConvertError(f"reaches element {last} of storage {t.storage.key}, "
                           f"which has {t.storage.numel}")
    expected, contiguous = 1, True
    for s, st in zip(reversed(t.size), reversed(t.stride)):
        if s != 1 and st != expected:
            contiguous = False
        expected *= s
    if contiguous:
        return t.storage.data[t.offset * isz:(t.offset + n) * isz]
    words = memoryview(t.storage.data).cast(WORD_FORMAT[isz])
    inner, inner_stride = t.size[-1], t.stride[-1]
    out = bytearray()
    for index in itertools.product(*(range(s) for s in t.size[:-1])):
        base = t.offset + sum(i * st for i, st in zip(index, t.stride))
        if inner_stride == 0:  # an expanded (broadcast) dimension
            out += words[base:base + 1].tobytes() * inner
        else:
            out += words[base:base + (inner - 1) * inner_stride + 1:inner_stride].tobytes()
    return bytes(out)


def read_state_dict(path):
    """name -> Tensor, from a torch.save zip archive."""
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            head = f.read(2)
        if head[:1] == b"\x80":
            raise ConvertError(
                "legacy (pre-zip, PyTorch < 1.6) torch.save format, which this converter does not "
                "read: re-save it once where torch is installed, e.g. python3 -c \"import torch; "
                f"torch.save(torch.load('{path}', weights_only=True), '{path}')\", then run again")
        raise ConvertError("not a PyTorch checkpoint (neither a zip archive nor a pickle)")
    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise ConvertError(f"expected one <archive>/data.pkl in the zip, found {len(pickles)}")
        prefix = pickles[0][:-len("data.pkl")]
        if prefix + "byteorder" in archive.namelist():
            order = archive.read(prefix + "byteorder").decode("ascii", "replace").strip()
            if order != "little":
                raise ConvertError(f"saved with byte order {order!r}; only little-endian is read")
        with archive.open(pickles[0]) as f:
            try:
                state = StateDictUnpickler(f, archive, prefix).load()
            except ConvertError:
                raise
            except Exception as e:  # a malformed pickle: UnpicklingError, EOFError, TypeError...
                raise ConvertError(f"unreadable {pickles[0]}: {type(e).__name__}: {e}") from None
    if not isinstance(state, dict):
        raise ConvertError(f"holds a {type(state).__name__}, not a state dict (name -> tensor)")
    for name, value in state.items():
        if not isinstance(name, str) or not isinstance(value, Tensor):
            raise ConvertError(f"entry {name!r:.80} is not a named tensor: not a plain state dict")
    return state


def write_safetensors(state, dst):
    """Header sorted by name, each tensor contiguous; temp file + rename. Returns bytes written."""
    header, blobs, offset = {}, [], 0
    for name in sorted(state):
        t = state[name]
        try:
            data = contiguous_bytes(t)
        except ConvertError as e:
            raise ConvertError(f"tensor {name}: {e}") from None
        header[name] = {"dtype": t.storage.dtype, "shape": list(t.size),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # data starts 8-byte aligned, as safetensors writes it
    tmp = f"{dst}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for data in blobs:
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dst)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return 8 + len(text) + offset


def convert(directory, force):
    src = os.path.join(directory, "pytorch_model.bin")
    dst = os.path.join(directory, "model.safetensors")
    if not os.path.isdir(directory):
        raise ConvertError(f"{directory}: no such directory")
    if not os.path.isfile(src):
        raise ConvertError(f"{src}: no such file")
    if os.path.exists(dst) and not force:
        raise ConvertError(f"{dst} already exists; pass --force to overwrite it")
    try:
        state = read_state_dict(src)
    except ConvertError as e:
        raise ConvertError(f"{src}: {e}") from None
    size = write_safetensors(state, dst)
    counts = collections.Counter(t.storage.dtype for t in state.values())
    dtypes = ", ".join(f"{n} {d}" for d, n in sorted(counts.items()))
    print(f"wrote {dst}: {len(state)} tensors ({dtypes}), {size} bytes, from {src}")


def main(argv):
    parser = argparse.ArgumentParser(
        description="Convert DIR/pytorch_model.bin into DIR/model.safetensors (no torch needed).")
    parser.add_argument("dir", metavar="DIR", help="a Hugging Face model directory")
    parser.add_argument("--force", action="store_true", help="overwrite an existing model.safetensors")
    args = parser.parse_args(argv)
    try:
        convert(args.dir, args.force)
    except ConvertError as e:
        print(f"convert_bert_weights: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"convert_bert_weights: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
