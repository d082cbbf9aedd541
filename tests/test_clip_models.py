"""Tests for nada_utils.models.clip_models: tiny CLIP round trips, frozen gradients, and one-line errors.

Nothing here touches the network: named models are fetched from a local folder standing in for OpenAI.
"""

import dataclasses
import hashlib
import warnings

import pytest
import torch

from nada_utils.errors import NadaError
from nada_utils.models.clip_arch import make_tiny_clip
from nada_utils.models.clip_models import clip_input_resolution, load_clip
from nada_utils.weights import registry

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
    import clip


class Opaque:
    """A plain Python object: pickling it makes a checkpoint that needs unsafe unpickling."""


@pytest.fixture(scope="module")
def tiny():
    return make_tiny_clip()


@pytest.fixture(scope="module")
def inputs():
    gen = torch.Generator().manual_seed(1)
    img = torch.randn(2, 3, 32, 32, generator=gen)
    text = clip.tokenize(["a photo of a dog", "a sketch"])
    return img, text


def assert_same_outputs(a, b, img, text):
    with torch.no_grad():
        assert torch.equal(a.encode_image(img), b.encode_image(img))
        assert torch.equal(a.encode_text(text), b.encode_text(text))


def assert_frozen_float32(model):
    params = list(model.parameters())
    assert params and all(not p.requires_grad and p.dtype == torch.float32 for p in params)
    assert not model.training


def test_tiny_clip_is_frozen_deterministic_and_leaves_global_rng(tiny, inputs):
    img, text = inputs
    assert_frozen_float32(tiny)
    state = torch.get_rng_state()
    again = make_tiny_clip()
    assert torch.equal(torch.get_rng_state(), state)
    assert_same_outputs(tiny, again, img, text)
    other = make_tiny_clip(seed=1)
    assert not torch.equal(other.text_projection, tiny.text_projection)
    with torch.no_grad():
        assert tiny.encode_image(img).shape == (2, 32)
        assert tiny.encode_text(text).shape == (2, 32)


def test_tiny_clip_state_dict_rebuilds_same_architecture(tiny):
    sd = tiny.state_dict()
    rebuilt = clip.model.build_model({k: v.clone() for k, v in sd.items()})
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in sd.items()}
    assert rebuilt.visual.input_resolution == 32
    assert rebuilt.transformer.resblocks[0].attn.num_heads == 1
    assert len(rebuilt.visual.transformer.resblocks) == 2


@pytest.mark.parametrize("width", [32, 96])
def test_tiny_clip_rejects_widths_build_model_cannot_infer(width):
    with pytest.raises(ValueError, match="multiple of 64"):
        make_tiny_clip(transformer_width=width)


@pytest.mark.parametrize("wrap", [None, "state_dict", "model"])
def test_state_dict_file_round_trips(tiny, inputs, tmp_path, wrap):
    path = tmp_path / "tiny.pt"
    sd = tiny.state_dict()
    torch.save(sd if wrap is None else {wrap: sd, "step": 3}, path)
    model = load_clip(str(path))
    assert isinstance(model, clip.model.CLIP)
    assert_frozen_float32(model)
    # Exact: build_model's fp16 pass must not round the float32 weights.
    assert_same_outputs(tiny, model, *inputs)
    assert clip_input_resolution(model) == 32


def test_input_resolution_is_read_from_the_checkpoint(tmp_path):
    path = tmp_path / "tiny64.pt"
    torch.save(make_tiny_clip(image_resolution=64, vision_patch_size=16).state_dict(), path)
    model = load_clip(path)
    assert clip_input_resolution(model) == 64
    with torch.no_grad():
        assert model.encode_image(torch.zeros(1, 3, 64, 64)).shape == (1, 32)


def test_gradients_reach_the_image_but_not_the_parameters(tiny, tmp_path):
    path = tmp_path / "tiny.pt"
    torch.save(tiny.state_dict(), path)
    model = load_clip(path)
    img = torch.randn(2, 3, 32, 32).requires_grad_(True)
    model.encode_image(img).sum().backward()
    assert img.grad is not None and torch.isfinite(img.grad).all() and img.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.parameters())


def test_torchscript_archive_loads_like_openai_files(tiny, inputs, tmp_path, monkeypatch):
    path = _traced_archive(tiny, inputs, tmp_path / "tiny_jit.pt")
    monkeypatch.setattr(torch.jit, "load", _never_jit_load)
    model = load_clip(path)
    assert_frozen_float32(model)
    assert_same_outputs(tiny, model, *inputs)


def test_state_dict_with_archive_extras_and_fp16_weights_loads(tiny, inputs, tmp_path):
    # OpenAI's files hold fp16 weights plus scalar tensors that are not parameters.
    sd = {k: v.half() for k, v in tiny.state_dict().items()}
    sd.update(input_resolution=torch.tensor(32), context_length=torch.tensor(77), vocab_size=torch.tensor(49408))
    path = tmp_path / "half.pt"
    torch.save(sd, path)
    model = load_clip(path)
    assert_frozen_float32(model)
    assert torch.equal(model.text_projection, tiny.text_projection.half().float())


def assert_one_line_error(excinfo, *fragments):
    message = str(excinfo.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def test_missing_file(tmp_path):
    path = tmp_path / "nope.pt"
    with pytest.raises(NadaError) as excinfo:
        load_clip(path)
    assert_one_line_error(excinfo, str(path), "does not exist")


def test_unknown_name_lists_available_models():
    with pytest.raises(NadaError) as excinfo:
        load_clip("ViT-Q/99")
    assert_one_line_error(excinfo, "ViT-Q/99", "ViT-B/32", "RN50")


def test_text_file_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("these are not weights\n")
    with pytest.raises(NadaError) as excinfo:
        load_clip(path)
    assert_one_line_error(excinfo, str(path), "neither")


def test_random_bytes_are_not_a_checkpoint(tmp_path):
    path = tmp_path / "noise.pt"
    path.write_bytes(torch.randint(0, 256, (4096,), generator=torch.Generator().manual_seed(0),
                                   dtype=torch.uint8).numpy().tobytes())
    with pytest.raises(NadaError) as excinfo:
        load_clip(path)
    assert_one_line_error(excinfo, str(path), "neither")


def test_other_layout_is_not_clip(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"weight": torch.zeros(3)}, path)
    with pytest.raises(NadaError) as excinfo:
        load_clip(path)
    assert_one_line_error(excinfo, str(path), "not a CLIP checkpoint", "visual.conv1.weight")


def test_truncated_clip_state_dict_is_not_rebuildable(tiny, tmp_path):
    sd = dict(tiny.state_dict())
    del sd["visual.proj"]  # without it build_model takes the ResNet branch and fails
    path = tmp_path / "cut.pt"
    torch.save(sd, path)
    with pytest.raises(NadaError) as excinfo:
        load_clip(path)
    assert_one_line_error(excinfo, str(path), "not a CLIP checkpoint")


def test_unsafe_pickle_is_refused(tmp_path):
    path = tmp_path / "object.pt"
    torch.save({"state_dict": Opaque()}, path)
    with pytest.raises(NadaError) as excinfo:
        load_clip(path)
    assert_one_line_error(excinfo, str(path), "unsafe unpickling", "refused")


def _traced_archive(model, inputs, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # Tracing CLIP warns about data-dependent branches and torch.jit's deprecation; both harmless here.
        warnings.simplefilter("ignore")
        # OpenAI's archives are traced the same way: forward on an (image, text) pair.
        torch.jit.save(torch.jit.trace(model, inputs), str(path))
    return path


def _never_jit_load(*args, **kwargs):
    raise AssertionError("torch.jit.load ran: it compiles and can execute the archive's code")


def test_named_model_is_fetched_like_any_weight_and_read_without_jit(monkeypatch, tmp_path, tiny, inputs):
    # OpenAI's server, played by a local folder: the registry entry keeps its URL layout, the sha256
    # is the served archive's own.
    served = _traced_archive(tiny, inputs, tmp_path / "mirror" / "RN50.pt")
    monkeypatch.setitem(registry.REGISTRY, "RN50", dataclasses.replace(registry.REGISTRY["RN50"],
                        sha256=hashlib.sha256(served.read_bytes()).hexdigest()))
    monkeypatch.setenv("NADA_MIRROR", (tmp_path / "mirror").as_uri())
    monkeypatch.setenv("NADA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(torch.jit, "load", _never_jit_load)
    model = load_clip("RN50")
    assert (tmp_path / "cache" / "RN50.pt").read_bytes() == served.read_bytes()
    assert_frozen_float32(model)
    assert_same_outputs(tiny, model, *inputs)


def test_named_model_download_failure_names_the_manual_way_out(monkeypatch, tmp_path):
    monkeypatch.setenv("NADA_MIRROR", (tmp_path / "empty").as_uri())
    monkeypatch.setenv("NADA_CACHE", str(tmp_path / "cache"))
    with pytest.raises(NadaError) as excinfo:
        load_clip("ViT-B/32")
    assert_one_line_error(excinfo, "ViT-B-32.pt", "by hand", str(tmp_path / "cache" / "ViT-B-32.pt"))
    assert not (tmp_path / "cache" / "ViT-B-32.pt").exists()


def test_archive_that_runs_code_on_load_is_refused_unrun(tmp_path, capfd):
    path = tmp_path / "hostile.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit's deprecation
        torch.jit.save(torch.jit.script(SetsItsOwnState()), str(path))
        # The archive really carries live code: torch.jit.load runs it.
        assert torch.equal(torch.jit.load(str(path)).weight, torch.full((3,), -7.0))
    assert "code from the archive ran" in capfd.readouterr().out
    with pytest.raises(NadaError) as excinfo:
        load_clip(path)
    assert_one_line_error(excinfo, str(path), "__setstate__", "never runs")
    assert "code from the archive ran" not in capfd.readouterr().out


class SetsItsOwnState(torch.nn.Module):
    """A module whose TorchScript `__setstate__` prints and rewrites its weights when loaded."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(3))

    def forward(self, x):
        return x * self.weight

    @torch.jit.export
    def __getstate__(self) -> tuple[torch.Tensor, bool]:
        return (self.weight, self.training)

    @torch.jit.export
    def __setstate__(self, state: tuple[torch.Tensor, bool]) -> None:
        print("code from the archive ran")
        self.weight = state[0] * 0 - 7
        self.training = state[1]


class TypedAttributes(torch.nn.Module):
    """A plain module with typed container attributes: TorchScript tags them (restore_type_tag, build_intlist)."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.arange(3.0))
        self.register_buffer("scale", torch.full((2,), 0.5))
        self.table: dict[str, torch.Tensor] = {"a": torch.zeros(2)}
        self.sizes: list[int] = [1, 2]
        self.tensors: list[torch.Tensor] = [torch.ones(1)]

    def forward(self, x):
        return x * self.weight


class DictState(torch.nn.Module):
    """Its whole pickled state is a typed Dict[str, Tensor], which only its own __setstate__ code reads."""

    def __init__(self):
        super().__init__()
        self.register_buffer("weight", torch.ones(3))

    def forward(self, x):
        return x * self.weight

    @torch.jit.export
    def __getstate__(self) -> dict[str, torch.Tensor]:
        return {"weight": self.weight}

    @torch.jit.export
    def __setstate__(self, state: dict[str, torch.Tensor]) -> None:
        print("code from the archive ran")
        self.weight = state["weight"] * 0 - 7


def test_archive_with_typed_containers_gives_the_state_dict_jit_would(tmp_path):
    from nada_utils.weights.safe_pickle import torchscript_tensors

    path = tmp_path / "typed.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(TypedAttributes()), str(path))
        expected = torch.jit.load(str(path)).state_dict()
    got = torchscript_tensors(path)
    assert set(got) == set(expected) == {"weight", "scale"}
    assert all(torch.equal(got[k], expected[k]) for k in expected)


def test_archive_whose_state_is_a_typed_dict_is_refused_unrun(tmp_path, capfd):
    path = tmp_path / "dict_state.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(DictState()), str(path))
    capfd.readouterr()
    with pytest.raises(NadaError) as excinfo:
        load_clip(path)
    assert_one_line_error(excinfo, str(path), "__setstate__", "never runs")
    assert "code from the archive ran" not in capfd.readouterr().out
