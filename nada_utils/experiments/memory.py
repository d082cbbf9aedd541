"""Peak-memory estimates of PyTorch computations, exact on the `meta` device (no memory, no compute).

The point is to answer "does a training step of a 1024 px StyleGAN2 + two CLIP ViTs at batch 2 fit on
a 24/40/80 GB GPU, with or without gradient checkpointing?" on a CPU-only machine: build the models
under `with torch.device("meta"):`, run the step inside `track_memory()`, and add the bytes of what
existed before the block (`tensor_bytes(G, clip, ...)`: weights, optimiser state, inputs).

`track_memory` is a TorchDispatchMode, so it sees every aten op that runs, including the ones autograd
runs during `loss.backward()` (gradients, `.grad` accumulation) and the forward ops that
`torch.utils.checkpoint.checkpoint(..., use_reentrant=False)` recomputes. For every op it counts
the output storages that are new (not the storage of an input, not already counted) and watches each
one until its StorageImpl is freed. It watches storages, not tensors, because several TensorImpls
share one storage: autograd saves an op's output as a fresh TensorImpl on the same storage
(`SavedVariable` stores `tensor_data()`), so the memory outlives the tensor the user holds.
A weakref to the storage's Python object fires exactly when the last owner of the StorageImpl lets
go: torch keeps that Python object alive (PyObject preservation) for as long as C++ still holds the
StorageImpl, whether that is a view, a saved tensor in the graph, or a `.grad` field.

What the estimate includes: every storage allocated by the ops in the block, each rounded up to
512 bytes like CUDA's caching allocator (`round_to`), at the moment it is allocated.
What it excludes: the allocator's caching and fragmentation (`torch.cuda.max_memory_reserved` runs
above `max_memory_allocated`), temporary buffers inside a kernel (cuDNN/cuBLAS workspaces, up to
hundreds of MB for convolutions), memory that kernels on a real GPU free early or keep for longer
than Python does, and the CUDA context itself (about 0.3-0.5 GB per process, outside PyTorch's
allocator). On CPU the same count comes out, since it depends only on shapes, dtypes and lifetimes.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

__all__ = ["tensor_bytes", "track_memory"]


def _storages(obj, out: dict) -> None:
    if isinstance(obj, torch.Tensor):
        storage = obj.untyped_storage()
        out[storage._cdata] = storage.nbytes()
    elif isinstance(obj, torch.nn.Module):
        for t in (*obj.parameters(), *obj.buffers()):
            _storages(t, out)
    elif isinstance(obj, Iterable) and not isinstance(obj, (str, bytes)):
        for item in obj.values() if isinstance(obj, dict) else obj:
            _storages(item, out)


def tensor_bytes(*objs) -> int:
    """Bytes of the distinct storages of tensors, modules (parameters and buffers) and iterables
    or dicts of them. A storage shared by several tensors (views, tied weights) is counted once.
    This is what a `track_memory()` block does not see: what existed before it started."""
    found: dict[int, int] = {}
    for obj in objs:
        _storages(obj, found)
    return sum(found.values())


class track_memory(TorchDispatchMode):
    """Counts the bytes of storages allocated inside the block that are still alive.

    `live_bytes` is the current count, `peak_bytes` the largest seen and `peak_at` the aten op that
    reached it. Storages that existed before the block are not counted, and neither are outputs that
    share an input's storage (views, in-place and `out=` ops). `live_bytes` keeps falling after the
    block as its tensors die, so `with track_memory() as m: ...` then `m.live_bytes` tells what the
    block left behind (e.g. `.grad` fields).

    The mode is thread-local. CPU and meta backward passes run on the calling thread (the tests
    check this), and for CUDA the autograd engine runs its device threads under the caller's
    `ThreadLocalState`, which carries the dispatch-mode stack, so `loss.backward()` is seen.
    Not seen: `resize_` growing a storage that already exists (no new storage to count).
    """

    def __init__(self, round_to: int = 512):
        super().__init__()
        self.round_to = max(1, round_to)
        self.live_bytes = 0
        self.peak_bytes = 0
        self.peak_at: str | None = None
        self._live: dict[int, weakref.ref] = {}  # StorageImpl address -> weakref to its PyObject

    def _freed(self, key: int, nbytes: int) -> None:
        self._live.pop(key, None)
        self.live_bytes -= nbytes

    def _track(self, storage: torch.UntypedStorage) -> int:
        key = storage._cdata
        nbytes = -(-storage.nbytes() // self.round_to) * self.round_to
        if key in self._live or nbytes == 0:
            return 0
        self._live[key] = weakref.ref(storage, lambda _, key=key, n=nbytes: self._freed(key, n))
        self.live_bytes += nbytes
        return nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        seen = {a.untyped_storage()._cdata if isinstance(a, torch.Tensor) else a._cdata
                for a in tree_flatten((args, kwargs))[0]
                if isinstance(a, torch.UntypedStorage)
                or isinstance(a, torch.Tensor) and a.layout == torch.strided}
        added = 0
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.layout == torch.strided:
                storage = t.untyped_storage()
                if storage._cdata not in seen:
                    seen.add(storage._cdata)
                    added += self._track(storage)
        if added and self.live_bytes > self.peak_bytes:
            self.peak_bytes, self.peak_at = self.live_bytes, str(func)
        return out
