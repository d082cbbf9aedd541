"""Layer selection: the W+ table matches the forward pass, and every spec trains exactly its layers."""

import pytest
import torch

from nada_utils import NadaError
from nada_utils.adapt.freezing import (
    layers_for_ws_indices,
    parse_layer_spec,
    set_trainable,
    static_layers,
    ws_index_table,
)
from nada_utils.models.stylegan2 import Generator, default_channels


def small_G(res):
    return Generator(res, w_dim=8, n_mlp=1, channels=default_channels(res, 2, 4))


def ws_read_by_forward_pass(G):
    """Tag W+ slot i with the value i and record which slot each modulation layer actually receives."""
    seen = {}
    hooks = []
    for name, module in G.named_modules():
        if name.endswith(".conv.modulation"):
            prefix = name[: -len(".conv.modulation")]
            hooks.append(module.register_forward_hook(
                lambda m, inp, out, prefix=prefix: seen.setdefault(prefix, set()).update(inp[0][:, 0].round().long().tolist())))
    ws = torch.arange(G.num_ws, dtype=torch.float32)[None, :, None].expand(2, G.num_ws, G.w_dim).contiguous()
    with torch.no_grad():
        G.synthesis(ws, noise_mode="none")
    for h in hooks:
        h.remove()
    table = {i: set() for i in range(G.num_ws)}
    for prefix, indices in seen.items():
        assert len(indices) == 1, f"{prefix} read several W+ slots: {indices}"
        table[indices.pop()].add(prefix)
    return table


@pytest.mark.parametrize("res", [8, 16, 32, 64, 128, 256, 512, 1024])
def test_ws_index_table_matches_forward_pass(res):
    G = small_G(res)
    assert ws_index_table(G) == ws_read_by_forward_pass(G)


def test_table_shape_and_the_reference_off_by_one():
    G = small_G(1024)
    table = ws_index_table(G)
    assert len(table) == 18
    assert table[0] == {"conv1"} and table[1] == {"to_rgb1", "convs.0"} and table[2] == {"convs.1"}
    assert table[17] == {"to_rgbs.7"}
    # The reference maps index i to [conv1, to_rgb1, convs...][i]: index 2 -> convs.0, which reads index 1.
    reference = ["conv1", "to_rgb1"] + [f"convs.{i}" for i in range(16)]
    assert reference[2] == "convs.0" and "convs.0" not in table[2]


def test_static_specs_1024():
    G = small_G(1024)
    assert static_layers(parse_layer_spec("all", G), G) == ["input", "conv1"] + [f"convs.{i}" for i in range(16)]
    assert static_layers(parse_layer_spec("last:2", G), G) == ["convs.12", "convs.13", "convs.14", "convs.15"]
    assert static_layers(parse_layer_spec("last:2", G), G, include_torgb=True) == \
        ["convs.12", "convs.13", "to_rgbs.6", "convs.14", "convs.15", "to_rgbs.7"]
    assert static_layers(parse_layer_spec("all", G), G, include_torgb=True) == \
        ["input"] + [n for n, _ in G.ws_layout]
    assert static_layers(parse_layer_spec("phase:texture", G), G) == ["input", "conv1"] + [f"convs.{i}" for i in range(2, 10)]
    assert static_layers(parse_layer_spec("phase:shape", G), G) == ["input", "conv1", "convs.0", "convs.1"]
    assert static_layers(parse_layer_spec("phase:shape_expanded", G), G) == ["input", "conv1", "convs.0", "convs.1", "convs.2"]
    assert static_layers(parse_layer_spec("phase:no_fine", G), G) == ["input", "conv1"] + [f"convs.{i}" for i in range(10)]
    assert static_layers(parse_layer_spec("phase:all", G), G)[:2] == ["mapping", "input"]
    assert static_layers(parse_layer_spec("layers:convs.3,to_rgb1", G), G) == ["to_rgb1", "convs.3"]
    full = static_layers(parse_layer_spec("last:9", G), G)
    assert full == static_layers(parse_layer_spec("all", G), G)


def test_torgb_only_when_asked():
    G = small_G(32)
    with_rgb = static_layers(parse_layer_spec("last:1", G), G, include_torgb=True)
    assert with_rgb == ["convs.4", "convs.5", "to_rgbs.2"]
    assert static_layers(parse_layer_spec("last:1", G), G) == ["convs.4", "convs.5"]
    assert layers_for_ws_indices(G, [1]) == ["convs.0"]
    assert layers_for_ws_indices(G, [1, 0], include_torgb=True) == ["conv1", "to_rgb1", "convs.0"]


@pytest.mark.parametrize("spec,needle", [
    ("everything", "unknown layer spec"), ("last:0", "between 1 and 4"), ("last:x", "integer between 1 and 4"),
    ("auto:9", "between 1 and 8"), ("gradnorm:8", "between 1 and 7"), ("phase:colour", "unknown phase"),
    ("layers:convs.99", "unknown layer"), ("layers:", "unknown layer"),
])
def test_bad_specs_name_the_range(spec, needle):
    with pytest.raises(NadaError, match=needle):
        parse_layer_spec(spec, small_G(32))


def test_set_trainable_touches_exactly_the_layers():
    G = small_G(32)
    names = set_trainable(G, ["input", "convs.2"])
    trainable = {n for n, p in G.named_parameters() if p.requires_grad}
    assert trainable == set(names) == {"input.input", "convs.2.conv.weight", "convs.2.conv.modulation.weight",
                                       "convs.2.conv.modulation.bias", "convs.2.noise.weight", "convs.2.activate.bias"}
    set_trainable(G, ["mapping"])
    assert {n for n, p in G.named_parameters() if p.requires_grad} == {n for n, _ in G.named_parameters() if n.startswith("style.")}


def test_set_trainable_can_leave_the_noise_strengths_frozen():
    G = small_G(32)
    names = set_trainable(G, ["convs.2"], freeze_noise=True)
    assert {n for n, p in G.named_parameters() if p.requires_grad} == set(names) == {
        "convs.2.conv.weight", "convs.2.conv.modulation.weight", "convs.2.conv.modulation.bias", "convs.2.activate.bias"}
