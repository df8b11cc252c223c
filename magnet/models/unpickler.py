"""Read a network pickle of strangers without running any of it.

A pickle is a program: each global it names is imported and may be called. NVlabs' pickles name a handful
(their persistent classes, tensors, numpy scalars) and TensorFlow StyleGAN2's a few more (numpy arrays).
The whole file is scanned first, opcode by opcode, and any other global (os.system, builtins.eval, an unknown
class) is refused, naming it, before a single object is built. Then it is unpickled with each allowed global
replaced by a stand-in that only builds data: NVlabs' classes become `PersistentObject`s holding their
state (the module source they carry is never executed), TF networks `TFNetwork`s; torch_utils and dnnlib are
never imported.
"""

from __future__ import annotations

import io
import pickle
import pickletools
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from magnet.errors import UserError

_NUMERIC = frozenset("?bBhHiIlLqQefdg")  # numpy type characters of booleans, integers and floats


class PersistentObject:
    """An NVlabs persistent class instance as data: its class name and `__dict__` (never its code)."""

    def __init__(self, class_name: str, state: dict):
        self.class_name, self.state = class_name, state

    def __repr__(self) -> str:
        return f"PersistentObject({self.class_name})"


class TFNetwork:
    """A `dnnlib.tflib.network.Network` of TensorFlow StyleGAN2 as data: the state dict it was pickled with."""

    state: dict

    def __setstate__(self, state):
        if not isinstance(state, dict):
            raise pickle.UnpicklingError(f"a TF network's state is a {type(state).__name__}, not a dict")
        self.state = state


class EasyDict(dict):
    """dnnlib.util.EasyDict, as the plain dict it is."""


def _persistent(meta) -> PersistentObject:
    if not isinstance(meta, dict) or meta.get("type") != "class" or not isinstance(meta.get("class_name"), str) \
            or not isinstance(meta.get("state"), dict):
        raise pickle.UnpicklingError("a persistent object without a class name and state")
    return PersistentObject(meta["class_name"], meta["state"])


def _storage(data):
    if not isinstance(data, bytes):
        raise pickle.UnpicklingError("tensor storage that is not bytes")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TypedStorage is deprecated; it is what such bytes hold
        storage = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    if not isinstance(storage, torch.storage.TypedStorage | torch.UntypedStorage):
        raise pickle.UnpicklingError(f"tensor storage bytes that hold a {type(storage).__name__}")
    return storage


def _tensor(storage, offset, size, stride, *_):
    """A tensor on the storage; requires_grad and hooks (the rest of torch's arguments) are dropped."""
    if not isinstance(storage, torch.storage.TypedStorage | torch.UntypedStorage):
        raise pickle.UnpicklingError("a tensor without a storage")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch._utils._rebuild_tensor(storage, offset, tuple(size), tuple(stride))


def _parameter(data, *_):
    if not isinstance(data, torch.Tensor):
        raise pickle.UnpicklingError("a parameter without a tensor")
    return data


class DType:
    """numpy.dtype as a pickle names it: a number type and its byte order. numpy's own __setstate__ never sees
    the file's state (which could describe fields of Python objects)."""

    def __init__(self, spec, align=False, copy=False):
        dtype = np.dtype(spec) if isinstance(spec, str) else None
        if dtype is None or dtype.char not in _NUMERIC:
            raise pickle.UnpicklingError(f"numpy dtype {spec!r}, not a number type")
        self.dtype = dtype

    def __setstate__(self, state):  # (version, byte order, subarray, names, fields, ...)
        if not (isinstance(state, tuple) and len(state) >= 5 and state[1] in ("<", ">", "|", "=")
                and state[2:5] == (None, None, None)):
            raise pickle.UnpicklingError("a numpy dtype with fields or subarrays")
        self.dtype = self.dtype.newbyteorder(state[1]) if state[1] in ("<", ">") else self.dtype


def _scalar(dtype, data=None):
    if not isinstance(dtype, DType) or not isinstance(data, bytes):
        raise pickle.UnpicklingError("a numpy scalar that is not a number")
    return np.frombuffer(data, dtype=dtype.dtype, count=1)[0].item()


class _NDArrayClass:
    """numpy.ndarray as named by a pickle: only `_reconstruct` may use it."""


class NumpyArray:
    """A pickled numpy array of numbers; `array` once unpickled. Built from its raw bytes here, not by numpy's
    __setstate__."""

    array: np.ndarray

    def __setstate__(self, state):  # (version, shape, dtype, is_fortran, raw bytes)
        if not (isinstance(state, tuple) and len(state) == 5 and isinstance(state[2], DType)
                and isinstance(state[1], tuple) and all(isinstance(n, int) and n >= 0 for n in state[1])
                and isinstance(state[4], bytes)):
            raise pickle.UnpicklingError("a numpy array that is not one of numbers")
        _, shape, dtype, fortran, data = state
        values = np.frombuffer(data, dtype=dtype.dtype, count=int(np.prod(shape)))
        self.array = values.reshape(shape, order="F" if fortran else "C").copy()


def _ndarray(cls, shape, typecode):
    if cls is not _NDArrayClass:
        raise pickle.UnpicklingError("numpy _reconstruct of something other than ndarray")
    return NumpyArray()


_ALLOWED = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _persistent,
    ("dnnlib.util", "EasyDict"): EasyDict,
    ("dnnlib.tflib.network", "Network"): TFNetwork,
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _tensor,
    ("torch._utils", "_rebuild_parameter"): _parameter,
    ("torch.storage", "_load_from_bytes"): _storage,
    ("numpy", "dtype"): DType,
    ("numpy", "ndarray"): _NDArrayClass,
    ("numpy.core.multiarray", "scalar"): _scalar,
    ("numpy._core.multiarray", "scalar"): _scalar,
    ("numpy.core.multiarray", "_reconstruct"): _ndarray,
    ("numpy._core.multiarray", "_reconstruct"): _ndarray,
}
_REFUSED_OPCODES = {"PERSID", "BINPERSID", "EXT1", "EXT2", "EXT4"}  # objects from outside the file
_GETS = {"GET", "BINGET", "LONG_BINGET"}
_PUTS = {"PUT", "BINPUT", "LONG_BINPUT"}
_MARK = object()


def _refuse(path, what: str):
    raise UserError(f"pickle {path} asks for {what}, which a network pickle never needs and which could run "
                    "code, so nothing in it was loaded; use the model's file as its publisher released it")


def _globals(data: bytes, path):
    """Every global the pickle names, found by reading its opcodes (a stack of strings and placeholders) without
    building anything; the first one not allowed is refused."""
    stack, memo = [], {}
    for op, arg, _ in pickletools.genops(data):
        name = op.name
        if name in _REFUSED_OPCODES:
            _refuse(path, f"an object outside the file ({name})")
        if name in ("GLOBAL", "INST"):
            module, _, attr = arg.partition(" ")
            if (module, attr) not in _ALLOWED:
                _refuse(path, f"{module}.{attr}")
        if name == "STACK_GLOBAL":
            module, attr = (stack[-2], stack[-1]) if len(stack) >= 2 else (None, None)
            if not (isinstance(module, str) and isinstance(attr, str)):
                _refuse(path, "a global it names in a way that cannot be read without running it")
            if (module, attr) not in _ALLOWED:
                _refuse(path, f"{module}.{attr}")
        if name in _PUTS or name == "MEMOIZE":
            memo[arg if name in _PUTS else len(memo)] = stack[-1] if stack else None
            continue
        # the stack effect, with the values that matter to STACK_GLOBAL (strings) kept
        before, top = op.stack_before, stack[-1] if stack else None
        if pickletools.markobject in before:
            while stack and stack.pop() is not _MARK:
                pass
            del stack[len(stack) - before.index(pickletools.markobject):]
        else:
            del stack[len(stack) - min(len(before), len(stack)):]
        if name in _GETS:
            stack.append(memo.get(arg))
        elif name == "DUP":
            stack.extend([top, top])
        elif name == "MARK":
            stack.append(_MARK)
        elif isinstance(arg, str) and "UNICODE" in name:
            stack.append(arg)
        else:
            stack.extend([None] * len(op.stack_after))


class _Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _ALLOWED:  # the scan refused it already; never import anything
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed")
        return _ALLOWED[module, name]

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("persistent ids are not allowed")


def load_restricted(path) -> object:
    """The objects of the pickle at `path` with only allowed globals, as stand-ins (see the module docstring)."""
    data = Path(path).read_bytes()
    try:
        _globals(data, path)
    except ValueError as err:  # pickletools' message for a file that ends early or has a bad opcode
        if isinstance(err, UserError):
            raise
        raise UserError(f"pickle {path} is cut short or corrupt ({err}); download it again") from None
    try:
        return _Unpickler(io.BytesIO(data)).load()
    except Exception as err:  # a well-formed opcode stream with wrong values: anything the stand-ins refuse
        raise UserError(f"pickle {path} cannot be read as a network pickle ({type(err).__name__}: {err}); it is "
                        "corrupt or of another kind: use the model's file as its publisher released it") from None
