"""Adapting StyleGAN3 generators: layer specs over its layers, training from an NVlabs pickle, exact
resume after a SIGKILL, and the exported file rendering through `generate`."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nvlabs_sg3_fixtures import make_tiny_sg3, write_sg3_pickle

from nada_utils import load_generator
from nada_utils.adapt.freezing import (
    parameters_of,
    parse_layer_spec,
    selectable_layers,
    set_trainable,
    static_layers,
    ws_index_table,
)
from nada_utils.adapt.run_dir import read_jsonl
from nada_utils.cli.main import main
from nada_utils.errors import NadaError

ROOT = Path(__file__).resolve().parent.parent
ARGS = ["train", "--preset", "tiny", "--steps", "6", "--checkpoint-every", "2", "--sample-every", "3",
        "--eval-samples", "4", "--quiet"]


@pytest.fixture(params=["T", "R"])
def G(request):
    return make_tiny_sg3(request.param)


def names(G):
    return [n for n, _ in G.ws_layout]


def test_last_k_counts_layers_and_leaves_the_torgb_frozen(G):
    layers = names(G)  # synthesis.input, L0 ... L{n-1}, the toRGB L{n}
    assert G.synthesis_blocks()[-1] == layers[-2:] and len(G.synthesis_blocks()) == len(layers) - 1
    assert static_layers(parse_layer_spec("last:1", G), G) == [layers[-2]]
    assert static_layers(parse_layer_spec("last:1", G), G, include_torgb=True) == layers[-2:]
    assert static_layers(parse_layer_spec("last:3", G), G) == layers[-4:-1]
    every = len(G.synthesis_blocks())
    assert static_layers(parse_layer_spec(f"last:{every}", G), G) == layers[:-1]
    assert static_layers(parse_layer_spec("all", G), G) == layers[:-1]  # the input layer too, never the toRGB
    assert selectable_layers(G, include_torgb=False) == layers[:-1]
    with pytest.raises(NadaError, match=f"between 1 and {every}"):
        parse_layer_spec(f"last:{every + 1}", G)


def test_each_layer_reads_one_ws_index_and_trains_its_own_weights(G):
    table = ws_index_table(G)
    assert all(len(v) == 1 for v in table.values()) and len(table) == G.num_ws
    trained = set(set_trainable(G, ["synthesis.input", names(G)[3]]))
    assert trained == {n for n, p in G.named_parameters() if n.startswith(("synthesis.input.", names(G)[3] + "."))}
    assert {n for n, p in G.named_parameters() if p.requires_grad} == trained
    assert all(n.startswith("mapping.") for n, _ in parameters_of(G, ["mapping"]))


@pytest.mark.parametrize("spec", ["official", "phase:texture", "auto-official:2"])
def test_the_official_stylegan2_sets_are_one_clear_error(G, spec):
    with pytest.raises(NadaError, match="StyleGAN3 does not have"):
        parse_layer_spec(spec, G)


def run(capsys, *argv):
    code = main(list(argv))
    return code, capsys.readouterr().err


@pytest.mark.parametrize("spec", ["all", "last:2", "auto:2", "gradnorm:2"])
def test_every_spec_trains_a_stylegan3_from_its_pickle(tmp_path, capsys, spec):
    path, G0, marker = write_sg3_pickle(tmp_path, "R")
    out = tmp_path / "run"
    code, err = run(capsys, *ARGS, "--steps", "2", "--eval-samples", "0", "--layers", spec,
                    "--generator", str(path), "--out", str(out))
    assert code == 0, err
    A = load_generator(out / "generator.pt")
    changed = {n for (n, a), b in zip(A.state_dict().items(), G0.state_dict().values()) if not torch.equal(a, b)}
    assert changed and all(n.startswith("synthesis.") and not n.startswith(f"synthesis.{G0.synthesis.layer_names[-1]}")
                           for n in changed), changed  # never the mapping network or the toRGB
    assert not marker.exists()


def test_a_stylegan3_run_resumes_bitwise_after_sigkill_and_renders(tmp_path, capsys):
    path, G0, marker = write_sg3_pickle(tmp_path, "T")
    gen = ["--generator", str(path), "--layers", "last:2"]
    ref = tmp_path / "ref"
    assert run(capsys, *ARGS, *gen, "--out", str(ref))[0] == 0
    killed = tmp_path / "killed"
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "kill_points.py"), "save", "2", "--",
                           *ARGS, *gen, "--out", str(killed)],
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert run(capsys, *ARGS, *gen, "--out", str(killed), "--resume")[0] == 0
    a, b = load_generator(ref / "generator.pt"), load_generator(killed / "generator.pt")
    assert type(a).__name__ == "StyleGAN3Generator"
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in read_jsonl(ref / "log.jsonl")]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in read_jsonl(killed / "log.jsonl")]
    assert len(read_jsonl(ref / "eval.jsonl")) == 3  # every checkpoint evaluated
    code, err = run(capsys, "generate", "--checkpoint", str(ref), "--compare", "--seeds", "0-3",
                    "--out", str(tmp_path / "cmp.png"))
    assert code == 0 and (tmp_path / "cmp.png").is_file(), err
    assert not marker.exists()


def test_a_study_of_a_stylegan3_offers_no_stylegan2_phases(G):
    from nada_utils.experiments.study import default_strategies

    for fast in (False, True):
        specs = default_strategies(G, fast=fast)
        assert "all" in specs and not any(s.startswith("phase:") for s in specs)
        for spec in specs:
            parse_layer_spec(spec, G)


def test_the_benchmark_counts_and_times_a_stylegan3_step(monkeypatch):
    """`bench --generator-arch sg3-t` on the tiny StyleGAN3 (the real sizes take minutes on a CPU: docs/BENCHMARKS.md)."""
    from nada_utils.adapt.config import make_config
    from nada_utils.experiments import bench

    def tiny(size, batch, clip, layers, device, fast, arch="sg2"):
        assert arch == "sg3-t"
        return make_config(None, generator="random:sg3-t-tiny", clip_models=("random:tiny",), clip_weights=(1.0,),
                           layers=layers, batch=batch, device=str(device), fast=fast)

    monkeypatch.setattr(bench, "_config", tiny)
    r = bench.run_bench(size=16, batch=2, clip=("tiny",), layers="last:2", device="cpu", steps=2, warmup=0,
                        arch="sg3-t", log=lambda _: None)
    assert r["arch"] == "sg3-t" and r["flops_per_step"] > 0 and len(r["step_seconds_all"]) == 2
    assert r["peak_memory_estimated_checkpointing"] < r["peak_memory_estimated"]
    assert bench.format_result(r).startswith("StyleGAN3-T, 16 px")
