"""Fuzzing every kind of file nada reads: valid seeds, mutations of them, and the rule each case must keep.

Used by tests/test_fuzz_files.py (a few hundred cases in CI, fixed seed) and scripts/fuzz_files.py
(10,000 or more). A case writes one mutated file and hands it to the loader users reach it through.
It passes when the loader returns an object or raises NadaError within the time limit, and no code
from the file ran (the NVlabs seed carries source that writes a marker file; torch.jit.load, which
would compile an archive's code, is made to fail for the whole run).
"""

from __future__ import annotations

import io
import pickletools
import random
import signal
import time
import traceback
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch

TIME_LIMIT_S = 10
KINDS = ("generator_pt", "nvlabs_pkl", "stylegan3_pkl", "stylegan3_pt", "clip_archive", "e4e", "ir_se50", "lpips_heads",
         "checkpoint", "png", "jpeg")
MUTATIONS = ("flip_bytes", "truncate", "pickle_opcode", "zip_remove_member", "zip_swap_members", "zip_mutate_member")


@dataclass
class Seeds:
    """The valid files to mutate, one per kind, and what the loaders need beside them."""

    files: dict[str, Path]
    vgg16: Path  # a valid VGG16 file: LPIPS needs it beside the heads being fuzzed
    marker: Path  # written if the NVlabs seed's embedded source ever runs


def make_seeds(folder: Path) -> Seeds:
    """Write one small valid file of every kind into `folder`."""
    from nvlabs_fixtures import nvlabs_pickle_bytes, rosinality_to_nvlabs
    from test_e4e import e4e_checkpoint, tiny_encoder

    from conftest import make_tiny_generator
    from nada_utils.adapt.checkpoint import save_checkpoint
    from nada_utils.images import save_image
    from nada_utils.models.builtin_models import builtin_clip
    from nada_utils.models.generator_io import save_generator
    from nada_utils.models.identity import IRSE50
    from nada_utils.models.lpips import LPIPS

    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / "code_ran.txt"
    files = {}
    G = make_tiny_generator(32)
    files["generator_pt"] = save_generator(G, folder / "generator.pt")
    (folder / "nvlabs.pkl").write_bytes(nvlabs_pickle_bytes(rosinality_to_nvlabs(G.state_dict(), G.w_avg), marker))
    files["nvlabs_pkl"] = folder / "nvlabs.pkl"
    from nvlabs_sg3_fixtures import make_tiny_sg3, sg3_pickle_bytes, tiny_init_kwargs

    G3 = make_tiny_sg3("R")
    (folder / "stylegan3.pkl").write_bytes(sg3_pickle_bytes(G3, tiny_init_kwargs("R"), marker))
    files["stylegan3_pkl"] = folder / "stylegan3.pkl"
    files["stylegan3_pt"] = save_generator(G3, folder / "stylegan3.pt")
    clip_model = builtin_clip("random:tiny")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracing CLIP warns about data-dependent branches; harmless here
        traced = torch.jit.trace(clip_model, (torch.zeros(1, 3, 32, 32), torch.zeros(1, 77, dtype=torch.long)))
        torch.jit.save(traced, str(folder / "clip.pt"))
    files["clip_archive"] = folder / "clip.pt"
    torch.save(e4e_checkpoint(tiny_encoder()), folder / "e4e.pt")
    files["e4e"] = folder / "e4e.pt"
    torch.manual_seed(0)
    torch.save(IRSE50(widths=(16, 16, 32, 32)).state_dict(), folder / "ir_se50.pth")
    files["ir_se50"] = folder / "ir_se50.pth"
    lpips = LPIPS()
    torch.save({f"features.{k}": v for k, v in lpips.features.state_dict().items()}, folder / "vgg16.pth")
    torch.save({f"lin{i}.model.1.weight": lin.weight for i, lin in enumerate(lpips.lins)}, folder / "lpips_heads.pth")
    files["lpips_heads"] = folder / "lpips_heads.pth"
    run = folder / "run"
    files["checkpoint"] = save_checkpoint(run, {
        "step": 1, "G_train": {k: v.clone() for k, v in G.state_dict().items()}, "latent_avg": G.w_avg.clone(),
        "arch": G.arch, "optimizer": {"state": {}, "param_groups": []}, "rng": {"sampler": torch.get_rng_state()},
        "config": {}, "directions": [torch.ones(4)], "selected_layers": ["conv1"], "selected_ws": []}, keep=1)
    image = torch.rand(3, 40, 48) * 2 - 1
    files["png"] = save_image(image, folder / "image.png")
    from PIL import Image

    Image.open(files["png"]).convert("RGB").save(folder / "image.jpg", quality=90)
    files["jpeg"] = folder / "image.jpg"
    return Seeds(files, folder / "vgg16.pth", marker)


def load(kind: str, path: Path, seeds: Seeds) -> list:
    """Every loader a user reaches this kind of file through; each must load it or raise NadaError."""
    from nada_utils.adapt.checkpoint import load_checkpoint
    from nada_utils.images import load_image
    from nada_utils.invert.e4e import load_e4e
    from nada_utils.models.clip_models import load_clip
    from nada_utils.models.generator_io import load_generator
    from nada_utils.models.identity import load_identity_loss
    from nada_utils.models.lpips import load_lpips

    calls = {
        "generator_pt": [lambda: load_generator(path)],
        "nvlabs_pkl": [lambda: load_generator(path)],
        "stylegan3_pkl": [lambda: load_generator(path)],
        "stylegan3_pt": [lambda: load_generator(path)],
        "clip_archive": [lambda: load_clip(path)],
        "e4e": [lambda: load_e4e(path)],
        "ir_se50": [lambda: load_identity_loss(path)],
        "lpips_heads": [lambda: load_lpips(vgg16_path=seeds.vgg16, heads_path=path)],
        "checkpoint": [lambda: load_checkpoint(path), lambda: load_generator(path)],
        "png": [lambda: load_image(path, 32)],
        "jpeg": [lambda: load_image(path, 32)],
    }[kind]
    return [call() for call in calls]


# ------------------------------------------------------------------------------------------- mutations

def _flip_bytes(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    out = bytearray(data)
    n = rng.choice((1, 1, 2, 4, 8, 32))
    for _ in range(n):
        i = rng.randrange(len(out))
        out[i] ^= rng.randrange(1, 256)
    return bytes(out), f"{n} byte(s) flipped"


def _truncate(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    cut = rng.choice((0, 1, rng.randrange(len(data)), len(data) - 1, len(data) // 2))
    return data[:cut], f"truncated to {cut} of {len(data)} bytes"


def _replace_opcode(pkl: bytes, rng: random.Random) -> tuple[bytes, str] | None:
    """One opcode of a pickle stream replaced by another opcode byte."""
    try:
        positions = [pos for _, _, pos in pickletools.genops(pkl)]
    except Exception:  # noqa: BLE001 - not a pickle stream
        return None
    codes = [op.code.encode("latin1") for op in pickletools.opcodes]
    pos = rng.choice(positions)
    new = rng.choice(codes)
    return pkl[:pos] + new + pkl[pos + 1:], f"opcode at {pos} -> {new!r}"


def _members(data: bytes) -> list[tuple[zipfile.ZipInfo, bytes]] | None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            return [(info, z.read(info)) for info in z.infolist()]
    except Exception:  # noqa: BLE001 - not a zip
        return None


def _rezip(members) -> bytes:
    buf = io.BytesIO()
    # Stored, like torch.save and torch.jit.save write them (their readers need aligned, uncompressed members).
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for info, content in members:
            z.writestr(info.filename, content)
    return buf.getvalue()


def mutate(data: bytes, rng: random.Random, mutation: str) -> tuple[bytes, str]:
    """`data` mutated by `mutation` (falling back to byte flips where it does not apply)."""
    members = _members(data)
    if mutation == "truncate":
        return _truncate(data, rng)
    if mutation == "pickle_opcode":
        if members:  # the pickle inside a zip-format .pt or TorchScript archive
            idx = [i for i, (info, _) in enumerate(members) if info.filename.endswith(".pkl")]
            if idx:
                i = rng.choice(idx)
                replaced = _replace_opcode(members[i][1], rng)
                if replaced:
                    members[i] = (members[i][0], replaced[0])
                    return _rezip(members), f"{members[i][0].filename}: {replaced[1]}"
        else:
            replaced = _replace_opcode(data, rng)
            if replaced:
                return replaced
    if mutation.startswith("zip_") and members and len(members) > 1:
        if mutation == "zip_remove_member":
            i = rng.randrange(len(members))
            name = members[i][0].filename
            return _rezip(members[:i] + members[i + 1:]), f"member {name} removed"
        if mutation == "zip_swap_members":
            i, j = rng.sample(range(len(members)), 2)
            (a, ca), (b, cb) = members[i], members[j]
            members[i], members[j] = (a, cb), (b, ca)
            return _rezip(members), f"contents of {a.filename} and {b.filename} swapped"
        i = rng.randrange(len(members))
        flipped, what = _flip_bytes(members[i][1], rng) if members[i][1] else (b"\0", "empty member filled")
        members[i] = (members[i][0], flipped)
        return _rezip(members), f"{members[i][0].filename}: {what}"
    return _flip_bytes(data, rng)


# ------------------------------------------------------------------------------------------- running

@dataclass
class Outcome:
    kind: str
    mutation: str
    what: str
    result: str  # "loaded", "refused" (NadaError) or "FAILED"
    seconds: float
    detail: str = ""


class _TimeLimit(Exception):
    pass


def _alarm(signum, frame):
    raise _TimeLimit()


def _caused_by(error: BaseException, kind: type) -> bool:
    """Whether `error` was raised while handling a `kind` (raise ... from None keeps `__context__`)."""
    seen = error.__context__
    while seen is not None:
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def run_case(kind: str, mutation: str, rng: random.Random, seeds: Seeds, work: Path) -> Outcome:
    """Mutate the seed of `kind`, load it, and judge the result."""
    from nada_utils.errors import NadaError

    seed = seeds.files[kind]
    data, what = mutate(seed.read_bytes(), rng, mutation)
    path = work / f"case{seed.suffix}"
    path.write_bytes(data)
    start = time.perf_counter()
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, TIME_LIMIT_S)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            load(kind, path, seeds)
        result, detail = "loaded", ""
    except NadaError as e:
        result, detail = "refused", str(e)
        if "\n" in detail:
            result, detail = "FAILED", f"NadaError of several lines: {detail!r}"
        if _caused_by(e, MemoryError):  # refused, but only because an address-space limit stopped a huge allocation
            result, detail = "FAILED", f"a loader tried to allocate past the memory limit: {detail}"
    except _TimeLimit:
        result, detail = "FAILED", f"no answer within {TIME_LIMIT_S} s"
    except BaseException as e:  # noqa: BLE001 - anything but NadaError is the bug this looks for
        result, detail = "FAILED", "".join(traceback.format_exception(type(e), e, e.__traceback__)[-3:])
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    seconds = time.perf_counter() - start
    if seeds.marker.exists():
        result, detail = "FAILED", "code from the file ran"
        seeds.marker.unlink()
    return Outcome(kind, mutation, what, result, seconds, detail)


def never_jit_load(*args, **kwargs):
    raise AssertionError("torch.jit.load ran: it compiles and can execute an archive's code")


def run_cases(n: int, seed: int, folder: Path, *, progress=None) -> list[Outcome]:
    """`n` cases, kinds and mutations in turn, from one RNG seed (the same seed gives the same cases)."""
    seeds = make_seeds(folder / "seeds")
    work = folder / "work"
    work.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    jit_load, torch.jit.load = torch.jit.load, never_jit_load
    try:
        outcomes = []
        for i in range(n):
            kind, mutation = KINDS[i % len(KINDS)], MUTATIONS[(i // len(KINDS)) % len(MUTATIONS)]
            outcomes.append(run_case(kind, mutation, rng, seeds, work))
            if progress:
                progress(outcomes[-1])
        return outcomes
    finally:
        torch.jit.load = jit_load


def summary(outcomes: list[Outcome]) -> dict:
    """Counts per kind and result, and the slowest case."""
    table: dict = {}
    for o in outcomes:
        row = table.setdefault(o.kind, {"loaded": 0, "refused": 0, "FAILED": 0})
        row[o.result] += 1
    slowest = max(outcomes, key=lambda o: o.seconds)
    return {"cases": len(outcomes), "per_kind": table, "failed": sum(o.result == "FAILED" for o in outcomes),
            "slowest_s": round(slowest.seconds, 3), "slowest": f"{slowest.kind} / {slowest.what}"}

