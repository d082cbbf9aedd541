"""drive_sync: Colab mounting (with a fake google.colab), run mirrors, and resuming a wiped VM."""

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import types

import pytest

from drive_sync import copy_atomic, in_colab, mount, storage_root, use_local_copy
from drive_sync.mirror import RunMirror, mirrored, restore_run
from nada_utils import NadaError
from nada_utils.adapt.config import make_config
from nada_utils.adapt.trainer import train
from nada_utils.weights import registry
from nada_utils.weights.registry import WeightSpec


@pytest.fixture
def fake_colab(monkeypatch, tmp_path):
    """A google.colab whose drive.mount records calls and creates MyDrive, as Colab's does."""
    calls = []
    google, colab, drive = types.ModuleType("google"), types.ModuleType("google.colab"), types.ModuleType("google.colab.drive")

    def fake_mount(mountpoint, **kwargs):
        calls.append(mountpoint)
        os.makedirs(os.path.join(mountpoint, "MyDrive"))

    drive.mount = fake_mount
    colab.drive, google.colab = drive, colab
    for name, mod in (("google", google), ("google.colab", colab), ("google.colab.drive", drive)):
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.delenv("NADA_ROOT", raising=False)
    return calls, tmp_path / "content" / "drive"


def test_mount_once_and_paths_in_colab(fake_colab, monkeypatch, tmp_path):
    calls, mountpoint = fake_colab
    assert in_colab()
    assert mount(str(mountpoint)) == mountpoint / "MyDrive"
    assert mount(str(mountpoint)) == mountpoint / "MyDrive"
    assert calls == [str(mountpoint)]
    assert storage_root(str(mountpoint)) == mountpoint / "MyDrive" / "nada"
    assert calls == [str(mountpoint)]
    monkeypatch.setenv("NADA_ROOT", str(tmp_path / "mine"))
    assert storage_root(str(mountpoint)) == tmp_path / "mine"


def test_outside_colab(monkeypatch, tmp_path):
    monkeypatch.delenv("NADA_ROOT", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert not in_colab()
    assert mount() is None
    assert storage_root() == tmp_path / "nada_runs"


def train_mirrored(cfg, run, mirror, *, resume=False, retries=3, backoff=1.0, log=None, on_save=None):
    """`train` with its run mirrored, as the CLI and the notebook attach the mirror."""
    with mirrored(run, mirror, resume=resume, retries=retries, backoff=backoff, log=log or (lambda m: None)) as push:
        def both(path):
            push(path)
            if on_save:
                on_save(path)

        return train(cfg, run, resume=resume, progress=False, log=log, on_save=both)


def tiny_cmd(run, mirror, *extra):
    return [sys.executable, "-m", "nada_utils", "train", "--preset", "tiny", "--out", str(run), "--steps", "12",
            "--checkpoint-every", "3", "--sample-every", "4", "--keep", "2", "--quiet", "--sync-dir", str(mirror), *extra]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    run = tmp_path_factory.mktemp("ref") / "run"
    return train(make_config("tiny", steps=12, checkpoint_every=3, sample_every=4, keep=2), run, progress=False)


def test_disconnect_wipe_and_resume_from_mirror(tmp_path, uninterrupted):
    run, mirror = tmp_path / "vm" / "run", tmp_path / "drive" / "run"
    proc = subprocess.Popen(tiny_cmd(run, mirror), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not list(mirror.glob("checkpoints/step_*.pt")):
        time.sleep(0.05)  # kill right after the first checkpoint reached the mirror
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert list((mirror / "checkpoints").glob("step_*.pt")), "no checkpoint reached the mirror"
    shutil.rmtree(run.parent)  # the VM is wiped
    done = subprocess.run(tiny_cmd(run, mirror, "--resume"), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (run / "generator.pt").read_bytes() == uninterrupted.read_bytes()
    assert (mirror / "generator.pt").read_bytes() == uninterrupted.read_bytes()
    names = {p.name for p in (mirror / "checkpoints").glob("step_*.pt")}
    assert names == {p.name for p in (run / "checkpoints").glob("step_*.pt")}  # pruned as locally:
    assert len(names) <= 3  # the newest 2 (--keep), plus the best one when it is older


def test_local_run_older_than_mirror_is_restored(tmp_path, uninterrupted):
    run, mirror = tmp_path / "run", tmp_path / "mirror"

    def stop_at_9(path):
        if path.name == "step_000009.pt":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_mirrored(make_config("tiny", steps=12, checkpoint_every=3, sample_every=4, keep=2), run, mirror,
                       on_save=stop_at_9)
    # The local copy is older: it lost its last checkpoints (an old VM snapshot, say).
    for p in (run / "checkpoints").glob("step_*.pt"):
        p.unlink()
    assert restore_run(mirror, run, log=lambda m: None)
    out = train_mirrored(None, run, mirror, resume=True)
    assert out.read_bytes() == uninterrupted.read_bytes()


def test_restore_cut_short_is_redone_not_taken_for_complete(tmp_path, uninterrupted, monkeypatch):
    import drive_sync.mirror as mirror_module

    # A finished run dir holds what its mirror holds (minus the lock, which is never pushed).
    mirror = tmp_path / "mirror"
    shutil.copytree(uninterrupted.parent, mirror, ignore=shutil.ignore_patterns(".lock"))
    files = sorted(p.relative_to(mirror) for p in mirror.rglob("*") if p.is_file())
    real_copy = mirror_module.copy_atomic
    for cut in range(len(files)):
        run, copies = tmp_path / f"vm{cut}" / "run", []

        def copy_then_vanish(src, dst):
            if len(copies) == cut:
                raise KeyboardInterrupt("VM gone mid-restore")
            copies.append(src)
            return real_copy(src, dst)

        monkeypatch.setattr(mirror_module, "copy_atomic", copy_then_vanish)
        with pytest.raises(KeyboardInterrupt):
            restore_run(mirror, run, log=lambda m: None)
        monkeypatch.setattr(mirror_module, "copy_atomic", real_copy)
        # The half-restored run must not pass for a complete one: the next start restores again.
        assert restore_run(mirror, run, log=lambda m: None), f"cut after {cut} files"
        assert [(run / f).read_bytes() for f in files] == [(mirror / f).read_bytes() for f in files]


def test_a_new_mirror_catches_up_on_what_a_killed_process_never_pushed(tmp_path, uninterrupted):
    run, mirror = uninterrupted.parent, tmp_path / "mirror"
    shutil.copytree(run, mirror, ignore=shutil.ignore_patterns(".lock"))
    newest = sorted((mirror / "checkpoints").glob("step_*.pt"))[-1]
    newest.unlink()  # saved locally, then the VM died before its push
    (mirror / "checkpoints" / "step_000005.pt").write_bytes(b"pruned locally, still in the mirror")
    (mirror / "log.jsonl").write_text((mirror / "log.jsonl").read_text().splitlines(keepends=True)[0])
    RunMirror(run, mirror, keep=2, log=lambda m: None).close()
    local = sorted(p.relative_to(run) for p in run.rglob("*") if p.is_file() and p.name != ".lock")
    assert sorted(p.relative_to(mirror) for p in mirror.rglob("*") if p.is_file()) == local
    assert all((run / f).read_bytes() == (mirror / f).read_bytes() for f in local)


def test_copy_cut_short_never_leaves_a_final_name(tmp_path, monkeypatch):
    src, dst = tmp_path / "src.bin", tmp_path / "m" / "dst.bin"
    src.write_bytes(os.urandom(3 << 20))

    def half_then_die(fin, fout, length=0):
        fout.write(fin.read(1 << 20))
        raise KeyboardInterrupt("VM gone")

    monkeypatch.setattr(shutil, "copyfileobj", half_then_die)
    with pytest.raises(KeyboardInterrupt):
        copy_atomic(src, dst)
    assert not dst.exists() and not list(dst.parent.iterdir())


def test_sigkill_during_a_push_leaves_whole_files_only(tmp_path):
    src = tmp_path / "big.pt"
    src.write_bytes(os.urandom(150 << 20))
    dst = tmp_path / "mirror" / "checkpoints" / "step_000001.pt"
    code = f"from drive_sync import copy_atomic; from pathlib import Path; copy_atomic(Path({str(src)!r}), Path({str(dst)!r}))"
    for delay in (0.3, 0.6, 0.9):
        dst.unlink(missing_ok=True)
        proc = subprocess.Popen([sys.executable, "-c", code])
        time.sleep(delay)
        proc.kill()
        proc.wait()
        assert not dst.exists() or dst.read_bytes() == src.read_bytes()
    # A new mirror clears the temporaries that killed copies leave behind.
    RunMirror(tmp_path, tmp_path / "mirror", keep=1).close()
    assert not [p for p in (tmp_path / "mirror").rglob("*") if ".tmp-" in p.name]


def test_unwritable_or_full_sync_dir_warns_once_per_kind(tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    warnings = []
    out = train_mirrored(make_config("tiny", steps=6, checkpoint_every=2, sample_every=2), tmp_path / "run1",
                         blocker / "mirror", retries=2, backoff=0.001, log=warnings.append)
    assert out.is_file()
    assert len([w for w in warnings if "not writable" in w]) == 1, warnings

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shutil, "copyfileobj", full)  # every mirror copy goes through fileio.copy_atomic
    warnings.clear()
    out = train_mirrored(make_config("tiny", steps=6, checkpoint_every=2, sample_every=2), tmp_path / "run2",
                         tmp_path / "mirror2", retries=2, backoff=0.001, log=warnings.append)
    assert out.is_file()
    assert len([w for w in warnings if "full" in w]) == 1, warnings


def test_new_run_refuses_a_mirror_of_another_run(tmp_path):
    mirror = tmp_path / "mirror"
    (mirror / "checkpoints").mkdir(parents=True)
    (mirror / "config.json").write_text("{}")
    (mirror / "checkpoints" / "step_000010.pt").write_bytes(b"another run's work")
    with pytest.raises(NadaError, match="already mirrors a run"):
        train_mirrored(make_config("tiny", steps=2), tmp_path / "run", mirror)
    # A mirror of a start that failed before its first checkpoint holds no work: a new run takes it over.
    (mirror / "checkpoints" / "step_000010.pt").unlink()
    train_mirrored(make_config("tiny", steps=2, eval_samples=0), tmp_path / "run2", mirror)
    assert json.loads((mirror / "config.json").read_text())["steps"] == 2


def test_use_local_copy_links_a_verified_drive_copy(tmp_path, monkeypatch):
    data = os.urandom(1000)
    import hashlib

    spec = WeightSpec(name="w", filename="w.pt", kind="generator-rosinality", gdrive_id="abc", url=None, size=1000,
                      sha256=hashlib.sha256(data).hexdigest(), description="test")
    monkeypatch.setitem(registry.REGISTRY, "w", spec)
    mine = tmp_path / "MyDrive" / "w.pt"
    mine.parent.mkdir()
    mine.write_bytes(data)
    dest = use_local_copy("w", mine)
    assert dest == registry.local_path("w") and dest.read_bytes() == data
    from nada_utils.weights.download import fetch

    assert fetch("w") == dest  # found, verified by its sidecar, never downloaded
    (tmp_path / "bad.pt").write_bytes(b"x" * 1000)
    with pytest.raises(NadaError, match="checksum"):
        use_local_copy("w", tmp_path / "bad.pt")


def test_gdown_too_many_users_message(tmp_path, monkeypatch):
    spec = WeightSpec(name="d", filename="d.pt", kind="generator-rosinality", gdrive_id="xyz", url=None, size=None,
                      sha256=None, description="test")
    monkeypatch.setitem(registry.REGISTRY, "d", spec)
    fake = types.ModuleType("gdown")

    def download(*, id, output, quiet):
        raise RuntimeError("Too many users have viewed or downloaded this file recently.")

    fake.download = download
    monkeypatch.setitem(sys.modules, "gdown", fake)
    from nada_utils.weights.download import fetch

    with pytest.raises(NadaError, match="Too many users.*copy the file into your own Drive") as info:
        fetch("d", quiet=True)
    assert str(registry.local_path("d")) in str(info.value) and "\n" not in str(info.value)
