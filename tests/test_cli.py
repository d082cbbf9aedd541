"""The CLI: real outputs for good input; one `error:` line, exit 2 and nothing written for bad input."""

import os
import subprocess
import sys

import pytest
import torch
from nvlabs_fixtures import nvlabs_pickle_bytes, rosinality_to_nvlabs

from conftest import make_tiny_generator
from nada_utils import load_generator, save_generator
from nada_utils.cli import main
from nada_utils.models.rendering import parse_seeds
from nada_utils.weights import registry
from nada_utils.weights.registry import WeightSpec


class Custom:
    pass


def bad_inputs(tmp_path):
    """(file name, bytes or None) pairs of everything that is not a loadable generator."""
    G = make_tiny_generator()
    save_generator(G, tmp_path / "good.pt")
    good = (tmp_path / "good.pt").read_bytes()
    torch.save({"weight": torch.zeros(3)}, tmp_path / "other_layout.pt")
    torch.save({"g_ema": Custom()}, tmp_path / "unsafe.pt")
    sd = G.state_dict()
    sd.pop("convs.1.conv.weight")
    torch.save(sd, tmp_path / "incomplete.pt")
    sd = G.state_dict()
    sd["convs.1.conv.weight"] = torch.zeros(1, 2, 2, 3, 3)
    torch.save(sd, tmp_path / "wrong_shape.pt")
    return {
        "missing.pt": None,
        "truncated.pt": good[: len(good) // 2],
        "not_a_checkpoint.pt": b"hello, I am a text file\n",
        "random.pkl": os.urandom(5000),
        "other_layout.pt": (tmp_path / "other_layout.pt").read_bytes(),
        "unsafe.pt": (tmp_path / "unsafe.pt").read_bytes(),
        "incomplete.pt": (tmp_path / "incomplete.pt").read_bytes(),
        "wrong_shape.pt": (tmp_path / "wrong_shape.pt").read_bytes(),
    }


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("case", ["missing.pt", "truncated.pt", "not_a_checkpoint.pt", "random.pkl", "other_layout.pt",
                                  "unsafe.pt", "incomplete.pt", "wrong_shape.pt", "no-such-model"])
def test_bad_generator_input_gives_one_error_line(tmp_path, capsys, case):
    inputs = bad_inputs(tmp_path / "src")
    src = tmp_path / case
    if case in inputs and inputs[case] is not None:
        src.write_bytes(inputs[case])
    arg = case if case == "no-such-model" else str(src)
    out_dir = tmp_path / "out"
    code, out, err = run_cli(capsys, "generate", "--generator", arg, "--out", str(out_dir), "--seeds", "0-1")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    assert not out_dir.exists(), "nothing may be written on bad input"
    if case != "no-such-model":
        assert case in lines[0]
    else:
        assert "ffhq-1024" in lines[0]


def test_generate_writes_images_and_grid(tmp_path, capsys):
    save_generator(make_tiny_generator(), tmp_path / "g.pt")
    code, out, err = run_cli(capsys, "generate", "--generator", str(tmp_path / "g.pt"), "--seeds", "3,5-6",
                             "--out", str(tmp_path / "imgs"), "--truncation", "0.7", "--device", "cpu")
    assert code == 0, err
    names = sorted(p.name for p in (tmp_path / "imgs").iterdir())
    assert names == ["grid.png", "seed0003.png", "seed0005.png", "seed0006.png"]
    from PIL import Image

    assert Image.open(tmp_path / "imgs" / "seed0003.png").size == (32, 32)
    code, _, err = run_cli(capsys, "generate", "--generator", str(tmp_path / "g.pt"), "--seeds", "0-3", "--out", str(tmp_path / "g.png"))
    assert code == 0, err
    assert Image.open(tmp_path / "g.png").size == (4 * 34 + 2, 34 + 2)  # 4 tiles of 32 px with 2 px gaps


def test_conditional_generate_needs_class(tmp_path, capsys):
    save_generator(make_tiny_generator(c_dim=10), tmp_path / "c.pt")
    code, _, err = run_cli(capsys, "generate", "--generator", str(tmp_path / "c.pt"), "--out", str(tmp_path / "o"))
    assert code == 2 and "--class between 0 and 9" in err and not (tmp_path / "o").exists()
    code, _, err = run_cli(capsys, "generate", "--generator", str(tmp_path / "c.pt"), "--out", str(tmp_path / "o"), "--class", "3")
    assert code == 0, err


def test_convert_pickle_to_rosinality_pt(tmp_path, capsys):
    G = make_tiny_generator()
    (tmp_path / "net.pkl").write_bytes(nvlabs_pickle_bytes(rosinality_to_nvlabs(G.state_dict(), G.w_avg), tmp_path / "m"))
    code, _, err = run_cli(capsys, "convert", "--generator", str(tmp_path / "net.pkl"), "--out", str(tmp_path / "net.pt"))
    assert code == 0, err
    z = torch.randn(2, G.z_dim)
    assert torch.equal(load_generator(tmp_path / "net.pt")(z), G(z))


def test_registry_name_resolves_to_cached_file(tmp_path, monkeypatch):
    spec = WeightSpec(name="tiny-test", filename="tiny.pt", kind="generator-rosinality", gdrive_id=None,
                      url="http://127.0.0.1:9/never-contacted", size=None, sha256=None, description="test")
    monkeypatch.setitem(registry.REGISTRY, "tiny-test", spec)
    G = make_tiny_generator()
    save_generator(G, registry.local_path("tiny-test"))
    z = torch.randn(2, G.z_dim)
    assert torch.equal(load_generator("tiny-test")(z), G(z))


def test_parse_seeds():
    assert parse_seeds("0-3,10") == [0, 1, 2, 3, 10]


def test_module_entry_point_exit_code(tmp_path):
    """The real `python -m nada_utils` process: exit 2 and one line on stderr."""
    proc = subprocess.run([sys.executable, "-m", "nada_utils", "generate", "--generator", str(tmp_path / "nope.pt"),
                           "--out", str(tmp_path / "o")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and proc.stderr.startswith("error: checkpoint not found")


@pytest.mark.parametrize("error", [
    torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 15.77 GiB total capacity)"),
    RuntimeError("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: "
                 "you tried to allocate 3686400000 bytes. Error code 12 (Cannot allocate memory)"),
])
def test_out_of_memory_is_one_line_with_the_fix(tmp_path, capsys, monkeypatch, error):
    # A real one needs a GPU or a machine without overcommit; the allocators' own errors are raised instead.
    import nada_utils.adapt.trainer

    def train(*args, **kwargs):
        raise error

    monkeypatch.setattr(nada_utils.adapt.trainer, "train", train)
    code, _, err = run_cli(capsys, "train", "--preset", "tiny", "--out", str(tmp_path / "run"))
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: out of memory (") and "--batch" in err


def test_a_bug_is_not_dressed_up_as_a_user_error(tmp_path, monkeypatch):
    import nada_utils.adapt.trainer

    def train(*args, **kwargs):
        raise RuntimeError("shape mismatch in our own code")

    monkeypatch.setattr(nada_utils.adapt.trainer, "train", train)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        main(["train", "--preset", "tiny", "--out", str(tmp_path / "run")])
