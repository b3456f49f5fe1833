"""Reads legacy (pre-1.6) PyTorch tensor files without torch, refusing anything but tensors.

A .pth file is a series of pickles, and unpickling can run arbitrary code. This reader
resolves only the handful of globals a file of plain tensors needs, to harmless stand-ins of
its own; any other global (for example `os.system`) is refused with `UnsafeWeightsError`
before anything is called. Tensor bytes are read as NumPy arrays.
"""

from __future__ import annotations

import collections
import os
import pickle
import pickletools
import struct
from dataclasses import dataclass

import numpy as np

__all__ = ["UnsafeWeightsError", "read_torch_weights"]

_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
_PROTOCOL_VERSION = 1001
_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class UnsafeWeightsError(ValueError):
    """A weight file asked for something a file of plain tensors never needs."""


@dataclass
class _Storage:
    key: str
    dtype: type
    numel: int
    data: np.ndarray | None = None


@dataclass
class _TensorRecord:
    storage: _Storage
    offset: int
    shape: tuple
    stride: tuple

    def to_numpy(self) -> np.ndarray:
        flat = self.storage.data
        itemsize = flat.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[self.offset :], shape=self.shape, strides=[step * itemsize for step in self.stride]
        )
        return np.array(view)


@dataclass(frozen=True)
class _StorageType:
    name: str


def _non_negative_ints(values, what: str) -> tuple:
    if not isinstance(values, tuple) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in values
    ):
        raise UnsafeWeightsError(f"Tensor {what} {values!r} is not a tuple of ints.")
    if any(v < 0 for v in values):
        raise UnsafeWeightsError(f"Tensor {what} {values!r} has negative entries.")
    return values


def _rebuild_tensor(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None):
    """Checks that the tensor is a plain view inside its storage: no negative, broadcast or outside steps."""
    if not isinstance(storage, _Storage):
        raise UnsafeWeightsError("A tensor in the file is not backed by a storage.")
    (offset,) = _non_negative_ints((storage_offset,), "offset")
    shape = _non_negative_ints(size, "shape")
    stride = _non_negative_ints(stride, "stride")
    if len(shape) != len(stride):
        raise UnsafeWeightsError(f"Tensor shape {shape} and stride {stride} differ in length.")
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    extent = sum((n - 1) * step for n, step in zip(shape, stride, strict=True)) if count else -1
    if count and (offset + extent >= storage.numel or count > storage.numel - offset):
        raise UnsafeWeightsError(
            f"Tensor of shape {shape} (stride {stride}, offset {offset}) does not fit in its storage "
            f"of {storage.numel} elements."
        )
    return _TensorRecord(storage, offset, shape, stride)


# The opcodes a legacy state dict uses (protocol 2); anything else is refused before it runs.
_ALLOWED_OPCODE_NAMES = {
    "PROTO", "GLOBAL", "BINPUT", "LONG_BINPUT", "BINGET", "LONG_BINGET", "MARK", "TUPLE", "TUPLE1",
    "TUPLE2", "TUPLE3", "EMPTY_TUPLE", "EMPTY_DICT", "EMPTY_LIST", "APPEND", "APPENDS", "BININT",
    "BININT1", "BININT2", "LONG1", "BINUNICODE", "BINFLOAT", "NONE", "NEWTRUE", "NEWFALSE", "REDUCE",
    "SETITEM", "SETITEMS", "BINPERSID", "BUILD", "STOP",
}  # fmt: skip
_ALLOWED_OPCODES = {
    op.code.encode("latin-1")[0] for op in pickletools.opcodes if op.name in _ALLOWED_OPCODE_NAMES
}


class _TensorOnlyUnpickler(pickle._Unpickler):
    """CPython's pure-Python unpickler, restricted to what a file of plain tensors needs.

    Its memo is a dict (the C unpickler sizes a list by the indices a file names, so a tiny
    file could ask for gigabytes). Only the opcodes above run; GLOBAL resolves only to
    stand-ins; BUILD only sets an OrderedDict's metadata dict, as torch does.
    """

    dispatch = {
        code: handler for code, handler in pickle._Unpickler.dispatch.items() if code in _ALLOWED_OPCODES
    }

    def __init__(self, file, storages: dict, allow_globals: bool = True):
        super().__init__(file)
        self.storages = storages
        self.allow_globals = allow_globals

    def load_build(self):
        state = self.stack.pop()
        target = self.stack[-1]
        if not (isinstance(target, collections.OrderedDict) and isinstance(state, dict)):
            raise UnsafeWeightsError(
                f"Refusing to set the state of a {type(target).__name__} (only OrderedDict metadata is allowed)."
            )
        target.__dict__.update(state)

    dispatch[pickle.BUILD[0]] = load_build

    def find_class(self, module: str, name: str):
        if self.allow_globals:
            if (module, name) == ("collections", "OrderedDict"):
                return collections.OrderedDict
            if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
                return _rebuild_tensor
            if module == "torch" and name in _STORAGE_DTYPES:
                return _StorageType(name)
        raise UnsafeWeightsError(
            f"Refusing to load global '{module}.{name}': a file of plain tensors needs only "
            "collections.OrderedDict, torch._utils._rebuild_tensor_v2 and torch.*Storage. "
            "The file may be malicious, or hold more than weights."
        )

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise UnsafeWeightsError(f"Unexpected persistent id {pid!r} in a weight file.")
        _, storage_type, key, _location, numel = pid[:5]
        valid_numel = isinstance(numel, int) and not isinstance(numel, bool) and numel >= 0
        if not isinstance(storage_type, _StorageType) or not isinstance(key, str) or not valid_numel:
            raise UnsafeWeightsError(f"Malformed storage reference {pid!r} in a weight file.")
        if key not in self.storages:
            self.storages[key] = _Storage(key, _STORAGE_DTYPES[storage_type.name], numel)
        return self.storages[key]

    def load(self):
        try:
            return super().load()
        except UnsafeWeightsError:
            raise
        except KeyError as error:
            code = error.args[0] if error.args else None
            if isinstance(code, int) and code not in self.dispatch:
                raise UnsafeWeightsError(
                    f"Refusing pickle opcode {bytes([code])!r}: a file of plain tensors does not use it."
                ) from None
            raise ValueError(f"malformed pickle ({type(error).__name__}: {error})") from None
        except Exception as error:
            raise ValueError(f"malformed pickle ({type(error).__name__}: {error})") from None


def _load_plain(file, what: str):
    """Unpickles a header value with no globals allowed at all."""
    try:
        return _TensorOnlyUnpickler(file, {}, allow_globals=False).load()
    except UnsafeWeightsError:
        raise
    except ValueError as error:
        raise ValueError(f"Not a legacy PyTorch weight file: cannot read its {what} ({error}).") from None


def read_torch_weights(path) -> dict[str, np.ndarray]:
    """Reads a legacy (pre-1.6, non-zip) PyTorch state dict as {name: numpy array}.

    Args:
        path: Path of the .pth file.

    Returns:
        An ordered dict of parameter names to arrays.

    Raises:
        UnsafeWeightsError: the file asks for a global, an opcode or a tensor layout that a
            file of plain tensors never needs.
        ValueError: the file is not such a weight file, or is truncated.

    Example:
    >>> weights = read_torch_weights("mobilenet_v2-b0353104.pth")
    >>> weights["features.0.0.weight"].shape
    (32, 3, 3, 3)
    """
    with open(path, "rb") as file:
        if file.read(4).startswith(b"PK"):
            raise ValueError(
                f"{path} is a zip-format PyTorch file (torch >= 1.6); only the legacy format is read."
            )
        file.seek(0)
        if _load_plain(file, "magic number") != _MAGIC_NUMBER:
            raise ValueError(f"{path} is not a legacy PyTorch weight file (wrong magic number).")
        if _load_plain(file, "protocol version") != _PROTOCOL_VERSION:
            raise ValueError(f"{path} uses an unknown PyTorch protocol version.")
        system = _load_plain(file, "system information")
        if not isinstance(system, dict) or system.get("little_endian") is not True:
            raise ValueError(f"{path} was not written on a little-endian machine; unsupported.")
        storages: dict[str, _Storage] = {}
        try:
            state = _TensorOnlyUnpickler(file, storages).load()
        except UnsafeWeightsError:
            raise
        except ValueError as error:
            raise ValueError(f"{path} is not a readable weight file ({error}).") from None
        keys = _load_plain(file, "storage keys")
        if (
            not isinstance(keys, list)
            or not all(isinstance(k, str) for k in keys)
            or set(keys) != set(storages)
        ):
            raise ValueError(f"{path} has inconsistent storage keys.")
        size = os.fstat(file.fileno()).st_size
        for key in keys:
            storage = storages[key]
            header = file.read(8)
            if len(header) != 8:
                raise ValueError(f"{path} is truncated (storage {key!r} missing).")
            (numel,) = struct.unpack("<q", header)
            itemsize = np.dtype(storage.dtype).itemsize
            if numel != storage.numel:
                raise ValueError(f"{path} is corrupted: storage {key!r} size {numel} != {storage.numel}.")
            if numel * itemsize > size - file.tell():
                raise ValueError(f"{path} is truncated (storage {key!r} is incomplete).")
            storage.data = np.frombuffer(file.read(numel * itemsize), dtype=storage.dtype)
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a state dict (found {type(state).__name__}).")
    weights = collections.OrderedDict()
    for name, value in state.items():
        if not isinstance(name, str) or not isinstance(value, _TensorRecord):
            raise ValueError(f"{path}: entry {name!r} is not a named tensor.")
        weights[name] = value.to_numpy()
    return weights
