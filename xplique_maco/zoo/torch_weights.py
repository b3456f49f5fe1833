"""Reads legacy (pre-1.6) PyTorch tensor files without torch, refusing anything but tensors.

A .pth file is a series of pickles, and unpickling can run arbitrary code. This reader
resolves only the handful of globals a file of plain tensors needs, to harmless stand-ins of
its own; any other global (for example `os.system`) is refused with `UnsafeWeightsError`
before anything is called. Tensor bytes are read as NumPy arrays.
"""

from __future__ import annotations

import collections
import pickle
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
        if not self.shape:
            return flat[self.offset].copy()
        extent = self.offset + sum(
            (size - 1) * step for size, step in zip(self.shape, self.stride, strict=True)
        )
        if flat is None or extent >= len(flat):
            raise ValueError(f"Tensor of shape {self.shape} reaches past its storage {self.storage.key!r}.")
        itemsize = flat.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[self.offset :], shape=self.shape, strides=[step * itemsize for step in self.stride]
        )
        return np.array(view)


@dataclass(frozen=True)
class _StorageType:
    name: str


def _rebuild_tensor(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None):
    if not isinstance(storage, _Storage):
        raise UnsafeWeightsError("A tensor in the file is not backed by a storage.")
    return _TensorRecord(
        storage, int(storage_offset), tuple(int(s) for s in size), tuple(int(s) for s in stride)
    )


class _TensorOnlyUnpickler(pickle.Unpickler):
    def __init__(self, file, storages: dict):
        super().__init__(file)
        self.storages = storages

    def find_class(self, module: str, name: str):
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
        if not isinstance(storage_type, _StorageType) or not isinstance(numel, int) or numel < 0:
            raise UnsafeWeightsError(f"Malformed storage reference {pid!r} in a weight file.")
        if key not in self.storages:
            self.storages[key] = _Storage(str(key), _STORAGE_DTYPES[storage_type.name], numel)
        return self.storages[key]


def _load_plain(file, what: str):
    """Unpickles a header value with no globals allowed at all."""
    unpickler = _TensorOnlyUnpickler(file, {})
    unpickler.find_class = _refuse_all  # type: ignore[method-assign]
    try:
        return unpickler.load()
    except UnsafeWeightsError:
        raise
    except Exception as error:
        raise ValueError(f"Not a legacy PyTorch weight file: cannot read its {what} ({error}).") from None


def _refuse_all(module, name):
    raise UnsafeWeightsError(f"Refusing to load global '{module}.{name}' in a weight file header.")


def read_torch_weights(path) -> dict[str, np.ndarray]:
    """Reads a legacy (pre-1.6, non-zip) PyTorch state dict as {name: numpy array}.

    Args:
        path: Path of the .pth file.

    Returns:
        An ordered dict of parameter names to arrays.

    Raises:
        UnsafeWeightsError: the file asks for a global other than those of plain tensors.
        ValueError: the file is not such a weight file, or is truncated.

    Example:
    >>> weights = read_torch_weights("mobilenet_v2-b0353104.pth")
    >>> weights["features.0.0.weight"].shape
    (32, 3, 3, 3)
    """
    with open(path, "rb") as file:
        head = file.read(4)
        if head.startswith(b"PK"):
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
        except Exception as error:
            raise ValueError(
                f"{path} is not a readable weight file ({type(error).__name__}: {error})."
            ) from None
        keys = _load_plain(file, "storage keys")
        if not isinstance(keys, list) or set(keys) != set(storages):
            raise ValueError(f"{path} has inconsistent storage keys.")
        for key in keys:
            storage = storages[key]
            header = file.read(8)
            if len(header) != 8:
                raise ValueError(f"{path} is truncated (storage {key!r} missing).")
            (numel,) = struct.unpack("<q", header)
            itemsize = np.dtype(storage.dtype).itemsize
            if numel != storage.numel:
                raise ValueError(f"{path} is corrupted: storage {key!r} size {numel} != {storage.numel}.")
            payload = file.read(numel * itemsize)
            if len(payload) != numel * itemsize:
                raise ValueError(f"{path} is truncated (storage {key!r} is incomplete).")
            storage.data = np.frombuffer(payload, dtype=storage.dtype)
    if not isinstance(state, collections.OrderedDict | dict):
        raise ValueError(f"{path} does not hold a state dict (found {type(state).__name__}).")
    weights = collections.OrderedDict()
    for name, value in state.items():
        if not isinstance(value, _TensorRecord):
            raise ValueError(f"{path}: entry {name!r} is not a tensor.")
        weights[str(name)] = value.to_numpy()
    return weights
