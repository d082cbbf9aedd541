"""`python -m nada_utils train` and `generate --checkpoint`: results, and one-line errors with exit 2."""

import pytest

from nada_utils.cli import main
from nada_utils.models.identity import IRSE50, load_identity_loss


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_error(code, err):
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", "--preset", "tiny", "--out", str(run), "--steps", "6", "--quiet"]) == 0
    return run


def test_run_dir_rules(tmp_path, capsys, tiny_run):
    before = (tiny_run / "generator.pt").read_bytes()
    assert "already holds a run" in one_error(*run_cli(capsys, "train", "--preset", "tiny", "--out", tiny_run)[::2])
    assert (tiny_run / "generator.pt").read_bytes() == before  # never overwritten
    assert "nothing to resume" in one_error(*run_cli(capsys, "train", "--out", tmp_path / "empty", "--resume")[::2])
    line = one_error(*run_cli(capsys, "train", "--out", tiny_run, "--resume", "--generator", "random:64")[::2])
    assert "change generator" in line
    line = one_error(*run_cli(capsys, "train", "--out", tiny_run, "--resume", "--clip", "ViT-B/32")[::2])
    assert "change clip_models" in line
    line = one_error(*run_cli(capsys, "train", "--out", tiny_run, "--resume", "--target", "anime")[::2])
    assert "cannot change target_text" in line
    line = one_error(*run_cli(capsys, "train", "--out", tiny_run, "--resume", "--freeze-noise")[::2])
    assert "change freeze_noise" in line


def test_same_command_with_resume_continues(capsys, tiny_run):
    code, out, err = run_cli(capsys, "train", "--preset", "tiny", "--out", tiny_run, "--steps", "8", "--resume", "--quiet")
    assert code == 0, err
    assert "resumed" in out + err


def test_generate_from_run_with_compare(tmp_path, capsys, tiny_run):
    from PIL import Image

    code, _, err = run_cli(capsys, "generate", "--checkpoint", tiny_run, "--compare", "--seeds", "0-2", "--out", tmp_path / "c.png")
    assert code == 0, err
    assert Image.open(tmp_path / "c.png").size == (3 * 34 + 2, 2 * 34 + 2)  # 2 rows x 3 seeds, 32 px + gaps
    code, _, err = run_cli(capsys, "generate", "--checkpoint", tiny_run / "checkpoints" / "step_000006.pt",
                           "--seeds", "0", "--out", tmp_path / "d.png")
    assert code == 0, err
    assert "no generator.pt and no checkpoint" in one_error(*run_cli(capsys, "generate", "--checkpoint", tmp_path, "--out", tmp_path / "x.png")[::2])


def test_identity_loss_skipped_without_weights(tmp_path):
    loss, message = load_identity_loss(tmp_path / "missing.pth")
    assert loss is None and "identity loss skipped" in message and "fetch ir-se50" in message


def test_irse50_has_the_published_layout():
    net = IRSE50()
    keys = net.state_dict().keys()
    assert sum(p.numel() for p in net.parameters()) == 43_797_696  # 175 MB of float32, as the registry says
    for k in ("input_layer.0.weight", "body.3.shortcut_layer.0.weight", "body.1.res_layer.5.fc1.weight",
              "body.23.res_layer.4.running_var", "output_layer.3.weight", "output_layer.4.running_mean"):
        assert k in keys, k


def test_a_start_refused_before_its_first_checkpoint_can_be_corrected_in_place(tmp_path, capsys):
    out = tmp_path / "run"
    line = one_error(*run_cli(capsys, "train", "--preset", "tiny", "--out", out, "--quiet", "--steps", "4",
                              "--checkpoint-every", "0", "--lr", "1e30")[::2])
    assert "loss became nan at step" in line and "run the same command again with a lower --lr (now 1e+30)" in line
    assert not out.exists()  # nothing half-started to trip over
    code, _, err = run_cli(capsys, "train", "--preset", "tiny", "--out", out, "--quiet", "--steps", "4")
    assert code == 0 and (out / "generator.pt").is_file(), err


def test_a_damaged_checkpoint_is_named_and_the_one_before_it_resumes(tmp_path, capsys):
    out = tmp_path / "run"
    assert run_cli(capsys, "train", "--preset", "tiny", "--out", out, "--quiet", "--steps", "6", "--checkpoint-every", "2",
                   "--eval-samples", "0")[0] == 0
    newest = out / "checkpoints" / "step_000006.pt"
    newest.write_bytes(newest.read_bytes()[:1000])  # a disk or a partial copy hurt it after nada wrote it
    line = one_error(*run_cli(capsys, "train", "--out", out, "--resume", "--steps", "8", "--quiet")[::2])
    assert f"{newest} is damaged" in line and "delete it" in line
    newest.unlink()
    code, stdout, err = run_cli(capsys, "train", "--out", out, "--resume", "--steps", "8", "--quiet")
    assert code == 0 and "resumed" in stdout + err and "step_000004.pt" in stdout + err
