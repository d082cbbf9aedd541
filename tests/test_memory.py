"""The meta-device peak-memory tracker against peaks derived by hand, and CPU against meta."""

import threading

import pytest
import torch
from torch.utils.checkpoint import checkpoint

from nada_utils.experiments.memory import tensor_bytes, track_memory

B, D = 128, 64
A = B * D * 4  # one fp32 activation (B, D)
W = D * D * 4  # one fp32 weight (D, D)
SCALARS = 8  # the loss and the scalar grad autograd seeds backward with


def mlp(n_layers: int, device: str, width: int = D) -> list[torch.nn.Module]:
    with torch.device(device):
        torch.manual_seed(0)
        return [torch.nn.Sequential(torch.nn.Linear(width, width, bias=False), torch.nn.ReLU())
                for _ in range(n_layers)]


class ThreadRecorder(track_memory):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.threads = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.threads.add(threading.get_ident())
        return super().__torch_dispatch__(func, types, args, kwargs)


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_mlp_forward_backward_peak_matches_hand_count(device):
    # L layers of Linear (no bias) + ReLU on an input that needs no grad. Forward keeps the L ReLU
    # outputs (saved by ReLU and by the next mm); each mm output dies once its ReLU has run.
    # Backward peaks in the mm of the last layer: ReLU outputs 1..L-1 still saved, the incoming grad,
    # the weight grad and the new input grad: (L-1)A + A + W + A = (L+1)A + W, plus the scalars.
    # Every later layer has one activation fewer and one weight grad more, and A = 2W.
    L = 3
    layers = mlp(L, device)
    x = torch.randn(B, D, device=device)
    with ThreadRecorder(round_to=1) as m:
        loss = torch.nn.Sequential(*layers)(x).sum()
        assert m.live_bytes == L * A + 4
        loss.backward()
    assert m.peak_bytes == (L + 1) * A + W + SCALARS
    assert m.peak_at == "aten.mm.default"
    assert m.threads == {threading.get_ident()}  # backward ran where the thread-local mode is set
    assert m.live_bytes == L * W + 4  # what is left: the .grad fields and the loss
    del loss
    for layer in layers:
        layer[0].weight.grad = None
    assert m.live_bytes == 0  # frees after the block are still counted


def test_rounds_each_allocation_like_the_cuda_allocator():
    x = torch.ones(3, device="meta")
    with track_memory() as m:
        y, z = x + 1, torch.empty(1000, device="meta")
    assert m.live_bytes == 512 + 4096 and tensor_bytes(y, z) == 12 + 4000


def test_meta_and_cpu_give_the_same_peak():
    peaks = []
    for device in ("cpu", "meta"):
        layers = mlp(4, device)
        x = torch.randn(B, D, device=device, requires_grad=True)
        with track_memory() as m:
            h = x
            for layer in layers:
                h = layer(h * 0.5).tanh()
            (h.square().mean() + x.sum()).backward()
        peaks.append((m.peak_bytes, m.peak_at))
    assert peaks[0] == peaks[1] and peaks[0][0] > 5 * A


def test_freed_intermediates_lower_live_bytes():
    x = torch.randn(B, D, requires_grad=True)
    with track_memory(round_to=1) as m:
        y = x * 2
        assert m.live_bytes == A
        del y
        assert m.live_bytes == 0
        # ReLU saves its output as another TensorImpl on the same storage: the memory stays
        # until the graph goes, which a weakref on the user's tensor would miss.
        y = torch.relu(x)
        loss = y.sum()
        del y
        assert m.live_bytes == A + 4
        del loss
        assert m.live_bytes == 0
    assert m.peak_bytes == A + 4


def test_views_and_inplace_ops_add_nothing():
    x, buf = torch.randn(B, D), torch.empty(B, D)
    with track_memory(round_to=1) as m:
        v = x.view(D, B).t()[1:]
        x.add_(1).relu_()
        torch.mul(x, 2, out=buf)
        x.detach().unsqueeze(0).expand(3, B, D)
        assert m.live_bytes == 0
        y = x * 2
        y.mul_(3).view(-1)[::2].zero_()
        torch.add(x, y, out=y)
        assert m.live_bytes == A
    assert m.peak_bytes == A and v.shape == (B - 1, D)


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_checkpointing_lowers_the_peak_by_the_recomputed_activations(device):
    # L layers in S checkpointed segments of K. Without checkpointing the peak is (L+1)A + W, as in
    # the first test. With it, forward keeps only the inputs of segments 2..S; the peak comes while
    # segment S-1 is recomputed: inputs of segments 2..S-1 (S-2), the grad from segment S (1),
    # K recomputed ReLU outputs plus the last mm output (K+1), and the K weight grads of segment S.
    L, K, width, batch = 16, 4, 32, 1024
    S, a, w = L // K, batch * width * 4, width * width * 4
    layers = mlp(L, device, width)
    segments = [torch.nn.Sequential(*layers[i:i + K]) for i in range(0, L, K)]
    x = torch.randn(batch, width, device=device)
    peaks = {}
    for use_checkpoint in (False, True):
        with track_memory(round_to=1) as m:
            h = x
            for segment in segments:
                h = checkpoint(segment, h, use_reentrant=False) if use_checkpoint else segment(h)
            loss = h.sum()
            del h
            forward = m.live_bytes
            loss.backward()
        peaks[use_checkpoint] = m.peak_bytes
        assert forward == (S - 1 if use_checkpoint else L) * a + 4
        for layer in layers:
            layer[0].weight.grad = None
    assert peaks[False] == (L + 1) * a + w + SCALARS
    assert peaks[True] == (S + K) * a + K * w + SCALARS  # 9a - 3w less, about half


def test_tensor_bytes_counts_shared_storage_once_and_module_state():
    t = torch.zeros(10)
    assert tensor_bytes(t, t.view(2, 5), [t[3:], {"a": t.t()}]) == 40
    bn = torch.nn.BatchNorm1d(8)  # weight, bias, running mean and var (fp32), num_batches_tracked (int64)
    assert tensor_bytes(bn) == 4 * 8 * 4 + 8
    tied = torch.nn.Sequential(torch.nn.Linear(4, 4, bias=False), torch.nn.Linear(4, 4, bias=False))
    tied[1].weight = tied[0].weight
    assert tensor_bytes(tied, tied[0].weight) == 64
    with torch.device("meta"):
        assert tensor_bytes(torch.nn.Linear(1000, 1000)) == (1000 * 1000 + 1000) * 4
