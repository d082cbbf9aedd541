"""Restricted unpickling of NVlabs `.pkl` files and TorchScript archives: tensors and arrays, and nothing runs.

NVlabs pickles (StyleGAN2-ADA PyTorch and the original TensorFlow StyleGAN2) embed the Python source
of their network classes, and a normal `pickle.load` executes that source. Here every global the file
names is looked up in a short allow-list of constructors that only build data (tensors, numpy
arrays, ordered dicts). Any other class becomes an inert `Opaque` record of its name and state, and
NVlabs' `_reconstruct_persistent_obj` becomes a function that records the class name and state while
ignoring the embedded source. Nothing from the file is imported, called or executed.

The same unpickler reads TorchScript archives (OpenAI's CLIP files, `torchscript_tensors`): their
`data.pkl` names `__torch__` module classes, which become `Opaque` records of their attributes, and
their tensors come from the zip. The archive's code is never compiled or run. `load_pt` is
`torch.load(weights_only=True)` with one-line errors.
"""

from __future__ import annotations

import builtins
import codecs
import collections
import io
import pickle
import pickletools
import zipfile

import torch

from nada_utils.errors import NadaError


class Opaque(dict):
    """Stand-in for any class a pickle names: it stores what the pickle gives it and does nothing.

    It subclasses dict because pickled dict subclasses (e.g. NVlabs' EasyDict) are filled with
    SETITEMS; list-like APPENDS go to `appended` (not `items`, which would hide dict.items); constructor
    args and BUILD state are kept as data.
    """

    module = ""
    name = ""

    def __new__(cls, *args, **kwargs):
        # NEWOBJ calls __new__ without __init__, so the record is set up here.
        obj = dict.__new__(cls)
        obj.args, obj.kwargs, obj.state, obj.appended = args, kwargs, None, []
        return obj

    def __init__(self, *args, **kwargs):
        super().__init__()

    def __setstate__(self, state):
        self.state = state

    def append(self, item):
        self.appended.append(item)

    def extend(self, items):
        self.appended.extend(items)

    def __repr__(self):
        return f"Opaque({self.module}.{self.name})"


class PersistentObject:
    """What an NVlabs `persistent_class` object unpickles to here: its class name and its state."""

    def __init__(self, class_name: str, state: dict):
        self.class_name = class_name
        self.state = state or {}

    def __repr__(self):
        return f"PersistentObject({self.class_name})"


def _reconstruct_persistent(meta):
    # NVlabs would exec(meta["module_src"]) here. We keep the data and drop the source unread.
    if not isinstance(meta, dict) or not isinstance(meta.get("state") or {}, dict):
        raise pickle.UnpicklingError("malformed persistent object")
    return PersistentObject(str(meta.get("class_name", "?")), meta.get("state"))


class _StorageSizes(pickle.Unpickler):
    """Reads the storage sizes that a legacy torch.save blob declares, without allocating anything."""

    def __init__(self, file):
        super().__init__(file)
        self.declared = 0

    def find_class(self, module, name):
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        if module in ("torch", "torch.storage") and name == "UntypedStorage":
            return _StorageType(torch.uint8)
        raise pickle.UnpicklingError(f"unexpected global {module}.{name} in a tensor storage")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and isinstance(pid[1], _StorageType) and isinstance(pid[4], int)):
            raise pickle.UnpicklingError("malformed storage reference")
        self.declared += max(pid[4], 0) * pid[1].dtype.itemsize
        return None


def _check_storage_size(b: bytes) -> None:
    # torch.load allocates a legacy blob's storage at the size its header declares, before reading the
    # data: a damaged size would allocate gigabytes. The data must be in the blob, so its size bounds it.
    f = io.BytesIO(b)
    for _ in range(4):  # magic number, protocol version, system info (plain values), then the storages
        check_pickle(f)  # its memo too: the last case fuzzing found
        sizes = _StorageSizes(f)
        sizes.load()
    if sizes.declared > len(b):
        raise pickle.UnpicklingError(f"a tensor storage declares {sizes.declared} bytes in a blob of {len(b)}")


def _load_storage_from_bytes(b: bytes):
    # Tensors in a plain pickle carry their storage as a nested torch.save blob; read it safely too.
    try:
        _check_storage_size(b)
        return torch.load(io.BytesIO(b), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - a damaged blob raises anything (AssertionError included): one kind here
        raise pickle.UnpicklingError(f"damaged tensor storage ({type(e).__name__})") from None


def _encode_latin1(text: str, encoding: str = "latin1") -> bytes:
    # Protocol-2 pickles store bytes as _codecs.encode(str, "latin1"); allow exactly that.
    if encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"refused _codecs.encode with encoding {encoding!r}")
    return codecs.encode(text, "latin1")


def _numpy_globals() -> dict:
    import numpy as np

    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray
    table = {}
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        table[(mod, "_reconstruct")] = multiarray._reconstruct
        table[(mod, "scalar")] = multiarray.scalar
    table[("numpy", "ndarray")] = np.ndarray
    table[("numpy", "dtype")] = np.dtype
    return table


_TORCH_GLOBALS = {
    ("torch._utils", "_rebuild_tensor"): torch._utils._rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_storage_from_bytes,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("_codecs", "encode"): _encode_latin1,
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent,
}
if hasattr(torch._utils, "_rebuild_parameter_with_state"):
    _TORCH_GLOBALS[("torch._utils", "_rebuild_parameter_with_state")] = torch._utils._rebuild_parameter_with_state
for _dtype_name in ("float32", "float16", "float64", "bfloat16", "int64", "int32", "uint8", "bool"):
    _TORCH_GLOBALS[("torch", _dtype_name)] = getattr(torch, _dtype_name)
# Plain builtin containers and scalars; never getattr, eval, exec, __import__ or anything callable beyond these.
_BUILTINS = {name: getattr(builtins, name) for name in ("set", "frozenset", "tuple", "list", "dict", "int", "float",
                                                         "bool", "str", "bytes", "bytearray", "complex", "slice")}


_REFUSED_MODULES = {"builtins", "__builtin__", "os", "posix", "nt", "subprocess", "sys", "importlib", "runpy", "shutil",
                    "socket", "pickle", "_pickle", "copyreg", "codecs", "_codecs", "io", "_io", "pty", "ctypes", "marshal",
                    "types", "functools", "operator", "webbrowser", "multiprocessing", "threading", "signal", "code", "pdb"}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves globals only through the allow-list above; other classes become `Opaque`."""

    def __init__(self, file):
        super().__init__(file)
        self._allowed = dict(_TORCH_GLOBALS)
        self._allowed.update(_numpy_globals())
        self._opaque: dict[tuple[str, str], type] = {}

    def find_class(self, module: str, name: str):
        key = (module, name)
        if key in self._allowed:
            return self._allowed[key]
        if module == "builtins" and name in _BUILTINS:
            return _BUILTINS[name]
        if module.split(".")[0] in _REFUSED_MODULES:
            # Nothing from these is ever needed to rebuild weights; a pickle naming them is hostile or broken.
            raise pickle.UnpicklingError(f"refused to load global {module}.{name}")
        # Anything else (NVlabs classes, stray torch or numpy types) becomes an inert record: it is
        # never imported or called, so keeping it is as safe as refusing it, and real files still load.
        if key not in self._opaque:
            self._opaque[key] = type(f"Opaque_{name}", (Opaque,), {"module": module, "name": name})
        return self._opaque[key]

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("this pickle uses persistent ids; it is not an NVlabs network pickle")


_STORAGE_DTYPES = {"FloatStorage": torch.float32, "HalfStorage": torch.float16, "DoubleStorage": torch.float64,
                   "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
                   "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
                   "BoolStorage": torch.bool}


class _StorageType:
    """What `torch.FloatStorage` & co. resolve to here: only the dtype, nothing callable."""

    def __init__(self, dtype: torch.dtype):
        self.dtype = dtype


class _TypedDict(dict):
    """A dict that TorchScript pickled with a type tag (`Dict[str, Tensor]`, ...): a typed value, never
    the attribute table of a module, so a module whose whole state is one has custom `__getstate__` code."""


def _restore_type_tag(value, type_str):
    # TorchScript's torch.jit._pickle.restore_type_tag only annotates a container with its static type.
    if isinstance(value, dict):
        return _TypedDict(value)
    return value


def _build_list(items):
    # torch.jit._pickle.build_intlist / build_doublelist / build_boollist / build_tensorlist: a typed list.
    if not isinstance(items, list):
        raise pickle.UnpicklingError("malformed typed list")
    return list(items)


_ARCHIVE_GLOBALS = {("torch.jit._pickle", "restore_type_tag"): _restore_type_tag,
                    **{("torch.jit._pickle", f"build_{kind}list"): _build_list
                       for kind in ("int", "double", "bool", "tensor")}}


class _Bounded:
    """A reader that never asks for more than the `size` bytes that remain: a damaged length field
    (BINBYTES8 and the like) cannot make a read allocate gigabytes."""

    def __init__(self, file, size: int):
        self._file, self._left = file, size

    def read(self, n: int = -1) -> bytes:
        data = self._file.read(self._left if n < 0 else min(n, self._left))
        self._left -= len(data)
        return data

    def readline(self) -> bytes:
        line = self._file.readline(self._left)
        self._left -= len(line)
        return line


def check_pickle(file) -> None:
    """Refuse a damaged pickle that would make an unpickler allocate gigabytes, before one sees it.

    CPython's C unpickler sizes its memo array by the largest index it is given: one damaged LONG_BINPUT
    (fuzzing found an index of 1.6e9 in a TorchScript archive) makes it allocate and zero some 25 GB
    before anything fails, and the OOM killer ends the process. Pickle writers (Python's, TorchScript's)
    number memo entries 0, 1, 2...: an index can never exceed the count of opcodes before it. A length
    field beyond the bytes that remain ends the scan as a short read (ValueError); a FRAME's, whose bytes
    the scan does not read, is compared with them.
    Scans the seekable `file` from its position to the pickle's STOP, then puts the position back;
    raises pickle.UnpicklingError or ValueError.
    """
    start = file.tell()
    remaining = file.seek(0, io.SEEK_END) - start
    file.seek(start)
    try:
        for count, (opcode, arg, _) in enumerate(pickletools.genops(_Bounded(file, remaining))):
            if opcode.name in ("PUT", "BINPUT", "LONG_BINPUT") and int(arg) > count:
                raise pickle.UnpicklingError(f"memo index {arg} at opcode {count}: the pickle is damaged")
            if opcode.name == "FRAME" and arg > remaining:  # its bytes are read later, by the unpickler, in one go
                raise pickle.UnpicklingError(f"a frame of {arg} bytes in {remaining}: the pickle is damaged")
    finally:
        file.seek(start)


class _ArchiveUnpickler(RestrictedUnpickler):
    """Reads a TorchScript archive's `data.pkl`: tensors come from the zip's `data/` members.

    Modules (`__torch__.*` classes) become `Opaque` records holding their attributes; their TorchScript
    code, which `torch.jit.load` would compile and could run (`__setstate__`), is never read.
    """

    def __init__(self, file, archive: zipfile.ZipFile, top: str):
        super().__init__(file)
        self._archive, self._top = archive, top
        self._storages: dict[str, torch.storage.TypedStorage] = {}

    def find_class(self, module: str, name: str):
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        if (module, name) in _ARCHIVE_GLOBALS:
            return _ARCHIVE_GLOBALS[(module, name)]
        return super().find_class(module, name)

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[1], _StorageType)):
            raise pickle.UnpicklingError("malformed storage reference")
        _, kind, key, _location, _numel = pid
        if key not in self._storages:
            raw = bytearray(self._archive.read(f"{self._top}/data/{key}"))
            untyped = torch.frombuffer(raw, dtype=torch.uint8).untyped_storage() if raw else torch.UntypedStorage(0)
            self._storages[key] = torch.storage.TypedStorage(wrap_storage=untyped, dtype=kind.dtype, _internal=True)
        return self._storages[key]


class _CustomState(Exception):
    """A module whose state is not a dict of attributes: only its own `__setstate__` code could read it."""


def _tensors_of(obj, prefix: str, out: dict) -> dict:
    # A module's attributes: tensors are its parameters and buffers, Opaque records its submodules.
    # Other attributes (typed dicts and lists, numbers) are not in a state_dict and are skipped.
    if isinstance(obj, Opaque):
        if not isinstance(obj.state, dict) or isinstance(obj.state, _TypedDict):
            raise _CustomState(prefix.rstrip(".") or "the root module")
        for name, value in obj.state.items():
            if isinstance(value, torch.Tensor):
                out[prefix + name] = value
            else:
                _tensors_of(value, f"{prefix}{name}.", out)
    return out


def torchscript_tensors(path) -> dict[str, torch.Tensor]:
    """The named tensors of a TorchScript archive (what `torch.jit.load(path).state_dict()` holds),
    read without `torch.jit.load`: nothing in the archive is compiled or run. Raises NadaError."""
    try:
        with zipfile.ZipFile(path) as archive:
            data = next((n for n in archive.namelist() if n.count("/") == 1 and n.endswith("/data.pkl")), None)
            if data is None:
                raise pickle.UnpicklingError("no data.pkl")
            if archive.getinfo(data).file_size > 2**30:  # the module tree without its tensors: kilobytes
                raise pickle.UnpicklingError(f"{data} claims {archive.getinfo(data).file_size} bytes")
            pkl = io.BytesIO(archive.read(data))
            check_pickle(pkl)
            root = _ArchiveUnpickler(pkl, archive, data.split("/")[0]).load()
    except Exception as e:  # noqa: BLE001 - damaged bytes raise anything here (UnicodeDecodeError, ...): one line
        first = (str(e).strip().splitlines() or [""])[0][:200]
        raise NadaError(f"{path} looks like a TorchScript archive but cannot be read ({type(e).__name__}: {first}); "
                        f"it may be truncated - download it again") from None
    try:
        tensors = _tensors_of(root, "", {})
    except _CustomState as e:
        raise NadaError(f"{path} keeps the state of {e} through code of its own (__setstate__), which nada never "
                        f"runs; re-save the model with torch.save(model.state_dict(), path)") from None
    if not tensors:
        raise NadaError(f"{path} is a TorchScript archive without tensors; pass the model's .pt file")
    return tensors


def restricted_load(path) -> object:
    """Unpickle `path` without executing anything from it. Raises NadaError on any malformed file."""
    try:
        with open(path, "rb") as f:
            check_pickle(f)
            return RestrictedUnpickler(f).load()
    except FileNotFoundError:
        raise NadaError(f"file not found: {path}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            RuntimeError, ImportError, UnicodeDecodeError, MemoryError, OverflowError) as e:
        # OverflowError: a damaged length field (FRAME, BINUNICODE, BINBYTES) larger than any size.
        raise NadaError(f"{path} is not a readable NVlabs pickle ({type(e).__name__}: {e}); "
                        f"re-download it or check that it is the right file") from None


def load_pt(path, *, not_torch: str | None = None):
    """`torch.load(path, weights_only=True)` on CPU, with every failure turned into a one-line NadaError.

    A file that stores Python objects beyond tensors and plain containers is refused, never
    unpickled. `not_torch` overrides the message for bytes that are no PyTorch file at all.
    """
    not_torch = not_torch or f"{path} is truncated or not a PyTorch checkpoint; re-download it or check the path"
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise NadaError(f"file not found: {path}") from None
    except pickle.UnpicklingError as exc:
        # weights_only reports every refusal as UnpicklingError; an unknown global is the unsafe case.
        if "Unsupported global" in str(exc):
            raise NadaError(f"{path} needs unsafe unpickling (it stores Python objects, not just tensors) and is "
                            f"refused; re-save it with torch.save(model.state_dict(), path)") from None
        raise NadaError(not_torch) from None
    except Exception:  # noqa: BLE001 - on non-checkpoint bytes torch.load raises KeyError, IndexError, EOFError, ...
        raise NadaError(not_torch) from None
