"""Bad input through the CLI, every command: exit 2, one `error:` line naming the problem, no traceback,
and nothing left behind. The table below is the input-limits part of docs/RELIABILITY.md.

Files that are not loadable generators are tried in test_cli.py; damaged downloads in test_download.py.
"""

import pytest
from PIL import Image

from nada_utils.cli import main

LONG = "a watercolour painting with " + "very " * 80 + "soft edges"  # about 85 tokens
TRAIN = ["train", "--preset", "tiny", "--quiet", "--steps", "2", "--out", "{tmp}/run"]
GENERATE = ["generate", "--generator", "random:tiny", "--out", "{tmp}/g"]
INVERT = ["invert", "--generator", "random:tiny", "--out", "{tmp}/i", "--steps", "1", "--image"]

CASES = [
    # prompts
    (TRAIN + ["--source", ""], "must not be empty"),
    (TRAIN + ["--target", "   "], "must not be empty"),
    (TRAIN + ["--source", "sketch", "--target", "sketch"], "the same text"),
    (TRAIN + ["--target", LONG], "--target 'a watercolour painting with very very ve...' is longer than CLIP's 77 tokens, in the longest of the 79 prompt templates; shorten it (or pass --no-templates)"),
    (TRAIN + ["--no-templates", "--source", LONG], "--source 'a watercolour painting with very very ve...' is longer than CLIP's 77 tokens; shorten it"),
    (["edit", "--latents", "{tmp}/nope.pt", "--out", "{tmp}/e", "--text", LONG], "prompt too long for CLIP"),
    # numbers out of range
    (TRAIN + ["--steps", "0"], "--steps must be > 0"),
    (TRAIN + ["--steps", "abc"], "invalid int value: 'abc'"),
    (TRAIN + ["--steps", "1e9"], "invalid int value: '1e9'"),
    (TRAIN + ["--batch", "-1"], "--batch must be > 0"),
    (TRAIN + ["--lr", "0"], "--lr must be > 0"),
    (TRAIN + ["--lr", "nan"], "--lr must be a finite number, got nan"),
    (TRAIN + ["--lr", "inf"], "--lr must be a finite number, got inf"),
    (TRAIN + ["--lr", "1e39"], "--lr must be at most 3.4e38"),
    (TRAIN + ["--mixing", "2"], "--mixing must be in [0, 1], got 2.0"),
    (TRAIN + ["--mixing", "-0.1"], "--mixing must be in [0, 1]"),
    (TRAIN + ["--l2", "-1"], "loss weights must be >= 0"),
    (TRAIN + ["--id-weight", "inf"], "--id-weight must be a finite number"),
    (TRAIN + ["--seed", "-1"], "--seed must be between 0 and 2**63 - 1, got -1"),
    (TRAIN + ["--seed", "99999999999999999999999"], "--seed must be between 0 and 2**63 - 1"),
    (TRAIN + ["--keep", "0"], "--keep must be >= 1"),
    (TRAIN + ["--auto-every", "0"], "--auto-every must be >= 1"),
    (TRAIN + ["--sample-every", "-3"], "--sample-every and --checkpoint-every must be >= 0"),
    (TRAIN + ["--checkpoint-every", "-1"], "--sample-every and --checkpoint-every must be >= 0"),
    (TRAIN + ["--eval-samples", "1"], "--eval-samples must be 0 (off) or >= 2"),
    (TRAIN + ["--clip-weights", "1,2"], "2 values for 1 CLIP models"),
    (TRAIN + ["--clip-weights", "a,b"], "bad --clip-weights 'a,b'"),
    (TRAIN + ["--clip-weights", "-1"], "--clip-weights must be >= 0"),
    (TRAIN + ["--clip-weights", "inf"], "--clip-weights must be a finite number"),
    (TRAIN + ["--layers", "last:9"], "between 1 and 4"),
    (TRAIN + ["--layers", "auto:0"], "between 1 and 8"),
    (TRAIN + ["--layers", "auto:99"], "between 1 and 8 for this 32 px generator"),
    (GENERATE + ["--truncation", "2"], "truncation must be in [0, 1], got 2.0"),
    (GENERATE + ["--truncation", "nan"], "truncation must be in [0, 1], got nan"),
    (GENERATE + ["--seeds", "a-b"], "bad seeds"),
    (GENERATE + ["--seeds", "5-1"], "give between 1 and 10000 seeds"),
    (GENERATE + ["--seeds", "0-100000"], "give between 1 and 10000 seeds"),
    (GENERATE + ["--class", "3"], "--class 3 given, but this generator has no classes"),
    (INVERT + ["{tmp}/ok.png", "--steps", "-5"], "--steps must be >= 1"),
    (["evaluate", "--run", "{tmp}/run0", "--n", "1"], "--n must be >= 2"),
    (["bench", "--size", "33"], "invalid choice: 33"),
    (["bench", "--batch", "0"], "--batch and --steps must be >= 1"),
    (["bench", "--size", "32", "--warmup", "-1"], "--warmup >= 0"),
    (["study", "--preset", "tiny", "--out", "{tmp}/s", "--steps", "0"], "--steps must be > 0"),
    # names that mean nothing
    (TRAIN + ["--preset", "ffhq-anime"], "unknown preset 'ffhq-anime'"),
    (TRAIN + ["--layers", "top:3"], "unknown layer spec"),
    (TRAIN + ["--layers", "layers:nope"], "unknown layer(s) nope"),
    (TRAIN + ["--layers", "phase:nope"], "unknown phase 'nope'"),
    (TRAIN + ["--clip", "ViT-Q/1"], "unknown CLIP model 'ViT-Q/1'"),
    (TRAIN + ["--clip", ""], "--clip '' has an empty name"),
    (TRAIN + ["--clip", "random:tiny,"], "--clip 'random:tiny,' has an empty name"),
    (TRAIN + ["--fast", "bf16,turbo"], "unknown fast path 'turbo'"),
    (TRAIN + ["--device", "gpu"], "unknown device 'gpu'"),
    (GENERATE + ["--device", "tpu9"], "unknown device 'tpu9'"),
    (["generate", "--generator", "no-such-model", "--out", "{tmp}/g"], "no-such-model"),
    (["bench", "--size", "32", "--clip", "ViT-Q/1"], "unknown built-in CLIP 'random:ViT-Q/1'"),
    (["bench", "--size", "32", "--layers", "nope"], "unknown layer spec 'nope'"),
    (["bench", "--size", "32", "--fast", "turbo"], "unknown fast path 'turbo'"),
    (["fetch", "nope"], "unknown weight name 'nope'"),
    (["study", "--preset", "nope", "--out", "{tmp}/s"], "unknown preset 'nope'"),
    (["study", "--preset", "tiny", "--out", "{tmp}/s", "--layers", "nope"], "unknown layer spec 'nope'"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    # missing or contradictory arguments
    (["train", "--preset", "tiny"], "the following arguments are required: --out"),
    (["generate", "--out", "{tmp}/g"], "pass --generator"),
    (["generate", "--generator", "random:tiny"], "the following arguments are required: --out"),
    (["convert", "--generator", "x.pt", "--out", "{tmp}/y.pkl"], "--out must be a .pt file"),
    # images, files and folders
    (INVERT + ["{tmp}/notimage.png"], "notimage.png is not an image PIL can read"),
    (INVERT + ["{tmp}/small.png"], "small.png is 15x200 px; images need at least 16 px a side"),
    (INVERT + ["{tmp}/missing.png"], "image not found"),
    (INVERT + ["{tmp}/emptydir"], "emptydir is a folder, not an image"),
    (TRAIN + ["--style-images", "{tmp}/nope"], "style image folder not found"),
    (TRAIN + ["--style-images", "{tmp}/ok.png"], "ok.png is a file; --style-images takes a folder"),
    (TRAIN + ["--style-images", "{tmp}/emptydir"], "no images (.png"),
    (TRAIN + ["--style-images", "{tmp}/badstyles"], "a.png is not an image PIL can read"),
    (TRAIN + ["--generator", "{tmp}/notimage.png"], "is truncated or not a PyTorch checkpoint"),
    (TRAIN + ["--sync-dir", "{tmp}/afile"], "sync dir {tmp}/afile is a file"),
    (["train", "--preset", "tiny", "--out", "{tmp}/afile"], "{tmp}/afile is a file, not a run directory"),
    (["train", "--preset", "tiny", "--out", "{tmp}/afile/run"], "cannot create the run directory {tmp}/afile/run"),
    (["train", "--out", "{tmp}/nothing", "--resume"], "nothing to resume"),
    (GENERATE[:-1] + ["{tmp}/afile/g"], "a file and a folder are mixed up in that path"),
    (["generate", "--checkpoint", "{tmp}/nope", "--out", "{tmp}/g"], "checkpoint not found"),
    (["edit", "--latents", "{tmp}/nope.pt", "--text", "blue hair", "--out", "{tmp}/e"], "file not found"),
    (["edit", "--latents", "{tmp}/ok.png", "--text", "blue hair", "--out", "{tmp}/e"], "not a PyTorch checkpoint"),
    (["evaluate", "--run", "{tmp}/nope"], "is not a run directory"),
    (["evaluate", "--run", "{tmp}/afile"], "is not a run directory"),
    (["convert", "--generator", "{tmp}/nope.pt", "--out", "{tmp}/x.pt"], "checkpoint not found"),
]


@pytest.fixture
def place(tmp_path):
    """The files the cases name, in a fresh folder."""
    Image.new("RGB", (64, 64), (90, 120, 200)).save(tmp_path / "ok.png")
    Image.new("RGB", (15, 200)).save(tmp_path / "small.png")
    (tmp_path / "notimage.png").write_text("these are words, not pixels")
    (tmp_path / "afile").write_text("a file where a folder is expected")
    (tmp_path / "emptydir").mkdir()
    (tmp_path / "badstyles").mkdir()
    (tmp_path / "badstyles" / "a.png").write_text("not an image either")
    (tmp_path / "run0").mkdir()
    (tmp_path / "run0" / "config.json").write_text("{}")
    return tmp_path


def tree(folder):
    return sorted((str(p.relative_to(folder)), p.stat().st_size if p.is_file() else -1) for p in folder.rglob("*"))


def case_id(case):
    argv, _ = case
    return " ".join(a if len(a) < 25 else a[:22] + "..." for a in argv if "{tmp}/run" != a)[:80]


@pytest.mark.parametrize("argv,needle", CASES, ids=[case_id(c) for c in CASES])
def test_bad_input_is_one_error_line_and_leaves_nothing(place, capsys, argv, needle):
    before = tree(place)
    code = main([a.replace("{tmp}", str(place)) for a in argv])
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    assert needle.replace("{tmp}", str(place)) in lines[0]
    assert tree(place) == before, "a refused command left files behind"


@pytest.mark.parametrize("target", ["スケッチ", "aquarelle façon Monet, pâle", "🎨 a watercolour", "эскиз карандашом"])
def test_non_ascii_prompts_train(tmp_path, capsys, target):
    out = tmp_path / "run"
    code = main(["train", "--preset", "tiny", "--quiet", "--steps", "2", "--eval-samples", "0", "--target", target,
                 "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert (out / "generator.pt").is_file()
    import json

    assert json.loads((out / "config.json").read_text(encoding="utf-8"))["target_text"] == target


def test_the_longest_prompt_that_fits_is_accepted(tmp_path, capsys):
    from nada_utils.adapt.clip_guide import check_prompts

    words = "a watercolour painting with " + "very " * 50 + "soft edges"
    assert check_prompts("photo", words, templates=True)[1] == words
    with pytest.raises(Exception, match="longer than CLIP's 77 tokens"):
        check_prompts("photo", LONG, templates=True)
