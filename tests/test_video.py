"""Videos: files that decode to the asked frames, closed loops, morphs that start at G_frozen, and
bad inputs refused in one line before anything is written."""

import sys

import numpy as np
import pytest
import torch

from conftest import make_tiny_generator
from nada_utils import save_generator
from nada_utils.cli.main import main
from nada_utils.errors import NadaError
from nada_utils.fileio import atomic_torch_save
from nada_utils.models.blending import GeneratorBlend
from nada_utils.models.stylegan2 import z_from_seeds
from nada_utils.video import motion
from nada_utils.video.encoders import read_video
from nada_utils.video.render import make_video, video_frames


@pytest.fixture
def gens():
    # Two "adapted" generators: the frozen one with every weight moved, as training would.
    G = make_tiny_generator(seed=0)
    adapted = {}
    for name, seed in (("a", 1), ("b", 2)):
        H = make_tiny_generator(seed=0)
        with torch.no_grad():
            for (k, p), q in zip(H.named_parameters(), make_tiny_generator(seed=seed).parameters()):
                if not k.startswith("style."):  # the mapping stays frozen, as in nada's default
                    p.lerp_(q, 0.5)
        adapted[name] = H
    return G, adapted


def all_frames(grid_frames_batches):
    grid, n, batches = grid_frames_batches
    frames = np.concatenate(list(batches))
    assert frames.shape == (n, grid.height, grid.width, 3)
    return grid, frames


def cells(grid, frame):
    """The pixels of each cell of one frame."""
    out = []
    for i in range(grid.n):
        y, x = grid.cell_origin(i)
        out.append(frame[y:y + grid.size, x:x + grid.size])
    return out


def expected(grid, images):
    """Pixels of `[1, 3, H, W]` images as the grid draws them."""
    return cells(grid, grid.compose(list(images))[0])[:len(images)]


def same(got, want) -> bool:
    """Equal pictures: at most one level apart (batched and single renders round differently)."""
    return all(np.abs(a.astype(int) - b.astype(int)).max() <= 1 for a, b in zip(got, want, strict=True))


def test_loop_closes_and_starts_at_the_first_point():
    points = torch.randn(3, 5)
    path = motion.loop(points, 12, spherical=False)
    torch.testing.assert_close(path[0], points[0])
    torch.testing.assert_close(path[4], points[1])  # every seed is a frame
    for spherical in (False, True):
        # Starting the loop at the second point gives the same frames, rotated: the step from the last
        # frame back to the first is an ordinary step in the middle of that loop, so there is no jump.
        path = motion.loop(points, 12, spherical=spherical)
        rolled = motion.loop(points[[1, 2, 0]], 12, spherical=spherical)
        torch.testing.assert_close(rolled, torch.roll(path, -4, dims=0))
    assert motion.bounce(8)[4] == 1 and motion.bounce(8)[2] == pytest.approx(0.5)
    assert motion.one_way(5).tolist() == [0, 0.25, 0.5, 0.75, 1]


def test_slerp_keeps_the_norm_of_gaussian_latents():
    a, b = torch.randn(1, 512), torch.randn(1, 512)
    mid = motion.slerp(a, b, torch.tensor([0.5]))
    assert abs(mid.norm() - (a.norm() + b.norm()) / 2) < 1e-3
    assert (a + b).norm() / 2 < 0.8 * mid.norm()  # a straight line would shrink it by about 1/sqrt(2)


@pytest.mark.parametrize("space", ["z", "w"])
def test_walk_frames_start_at_the_seeds_and_close_the_loop(gens, space):
    G, adapted = gens
    grid, frames = all_frames(video_frames(G, adapted, kind="walk", seeds=[3, 4], fps=6, seconds=2, size=32, space=space))
    z = z_from_seeds([3], G.z_dim)
    assert same(cells(grid, frames[0]), expected(grid, [g(z, noise_mode="const") for g in (G, *adapted.values())]))
    steps = np.abs(np.diff(frames.astype(float), axis=0)).mean(axis=(1, 2, 3))
    wrap = np.abs(frames[0].astype(float) - frames[-1]).mean()
    assert steps.max() > 1 and wrap <= steps.max()  # it moves, and the last frame leads back to the first


def test_morph_starts_at_the_frozen_generator_and_passes_the_blend(gens):
    G, adapted = gens
    z = z_from_seeds([5, 6], G.z_dim)
    grid, frames = all_frames(video_frames(G, adapted, kind="morph", seeds=[5, 6], fps=5, seconds=1, size=32,
                                           one_way=True))
    frozen = G(z, noise_mode="const")
    assert grid.n == 6 and grid.ncol == 3  # a row per seed, a column per generator
    assert same(cells(grid, frames[0]), expected(grid, [frozen[i:i + 1] for i in (0, 0, 0, 1, 1, 1)]))
    half = GeneratorBlend(G, adapted["a"]).at(0.5)(z, noise_mode="const")
    assert same(cells(grid, frames[2])[1:2], expected(grid, [half[:1]]))  # middle frame: alpha 0.5
    assert same(cells(grid, frames[-1])[5:], expected(grid, [adapted["b"](z, noise_mode="const")[1:]]))
    _, there_and_back = all_frames(video_frames(G, adapted, kind="morph", seeds=[5], fps=4, seconds=1, size=32))
    assert np.array_equal(there_and_back[2], np.asarray(list(video_frames(G, adapted, kind="morph", seeds=[5], fps=3,
                                                                                seconds=1, size=32, one_way=True)[2]))[-1][0])


def test_a_conditional_generators_seeds_take_their_classes_in_turn():
    from nada_utils.models.rendering import class_input

    G = make_tiny_generator(c_dim=3, seed=0)
    z = z_from_seeds([5, 6], G.z_dim)
    grid, frames = all_frames(video_frames(G, {}, kind="walk", seeds=[5, 6], fps=4, seconds=1, size=32,
                                           space="w", class_idx=[2, 0]))
    # A walk in w starts at the first seed's w, mapped with its own class (2), not the second's (0).
    assert same(cells(grid, frames[0]), expected(grid, [G(z[:1], class_input(G, torch.tensor([2])), noise_mode="const")]))
    assert not same(cells(grid, frames[0]), expected(grid, [G(z[:1], class_input(G, torch.tensor([0])), noise_mode="const")]))
    with pytest.raises(NadaError, match="between 0 and 2"):
        video_frames(G, {}, kind="walk", seeds=[5, 6], class_idx=[0, 7])


def test_photo_moves_along_the_edit_in_every_domain(gens):
    G, adapted = gens
    ws = G.mapping(torch.randn(1, G.z_dim)).detach()
    noise = [torch.randn_like(n) for n in G.make_noise(1, "const")]
    edited = ws + 0.5 * torch.randn_like(ws)
    grid, frames = all_frames(video_frames(G, adapted, kind="photo", latents={"ws": ws, "noise": noise},
                                           edit={"ws": edited}, fps=3, seconds=1, size=32, one_way=True))
    gs = [G, *adapted.values()]
    assert same(cells(grid, frames[0]), expected(grid, [g.synthesis(ws, noise=noise) for g in gs]))
    assert same(cells(grid, frames[-1]), expected(grid, [g.synthesis(edited, noise=noise) for g in gs]))
    # Without an edit the photo morphs: G_frozen's reconstruction first, each domain's at the middle.
    grid, frames = all_frames(video_frames(G, adapted, kind="photo", latents={"ws": ws, "noise": noise}, fps=4,
                                           seconds=1, size=32))
    assert same(cells(grid, frames[2])[2:], expected(grid, [adapted["b"].synthesis(ws, noise=noise)]))


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_files_decode_to_the_frames(gens, tmp_path, suffix):
    G, adapted = gens
    out = tmp_path / f"walk{suffix}"
    video = make_video(out, G, adapted, kind="walk", seeds=[0, 1, 2], fps=12, seconds=2, size=48, progress=False)
    grid, rendered = all_frames(video_frames(G, adapted, kind="walk", seeds=[0, 1, 2], fps=12, seconds=2, size=48))
    frames, fps = read_video(out)
    assert frames.shape == (24, grid.height, grid.width, 3) == (video.frames, video.height, video.width, 3)
    assert fps == pytest.approx(12, rel=0.05)
    mse = np.mean((frames.astype(float) - rendered) ** 2)
    assert 10 * np.log10(255 ** 2 / mse) > 25  # lossy (H.264, a 256-colour palette), but the same pictures
    assert np.abs(frames[0].astype(float) - frames[-1]).mean() < 12  # a closed loop: the end leads to the start
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temporary file left beside it


def run(capsys, *argv):
    code = main(list(argv))
    _, err = capsys.readouterr()
    return code, err


@pytest.fixture
def saved(gens, tmp_path):
    G, adapted = gens
    save_generator(G, tmp_path / "frozen.pt")
    for name, H in adapted.items():
        save_generator(H, tmp_path / f"{name}.pt")
    return tmp_path


def test_cli_writes_a_labelled_video(saved, capsys):
    out = saved / "v" / "walk.mp4"
    code, err = run(capsys, "video", "--generator", str(saved / "frozen.pt"), "--adapted", str(saved / "a.pt"),
                    str(saved / "b.pt"), "--out", str(out), "--seconds", "1", "--fps", "8", "--size", "32")
    assert code == 0, err
    assert read_video(out)[0].shape[0] == 8


@pytest.mark.parametrize("case", ["no generators", "odd size", "wrong latents", "bad suffix", "one seed", "morph alone"])
def test_bad_inputs_are_one_line_and_write_nothing(saved, capsys, case):
    g = ["--generator", str(saved / "frozen.pt")]
    a = ["--adapted", str(saved / "a.pt")]
    other = make_tiny_generator(16)  # another generator's latents: 16 px has fewer ws
    atomic_torch_save({"ws": other.mapping(torch.randn(1, other.z_dim)).detach(), "noise": []}, saved / "latents.pt")
    args = {"no generators": [],
            "odd size": g + a + ["--size", "33"],
            "wrong latents": g + a + ["--kind", "photo", "--latents", str(saved / "latents.pt")],
            "bad suffix": g + a,
            "one seed": g + a + ["--seeds", "4"],
            "morph alone": g + ["--kind", "morph"]}[case]
    out = saved / "out" / ("walk.avi" if case == "bad suffix" else "walk.gif")
    code, err = run(capsys, "video", *args, "--out", str(out))
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: "), err
    assert not (saved / "out").exists()


def test_without_pyav_mp4_says_how_to_install_and_gif_still_works(gens, tmp_path, monkeypatch):
    G, adapted = gens
    monkeypatch.setitem(sys.modules, "av", None)  # `import av` now raises ImportError
    with pytest.raises(NadaError, match="pip install av"):
        make_video(tmp_path / "v.mp4", G, adapted, fps=4, seconds=1, size=32, progress=False)
    assert not (tmp_path / "v.mp4").exists()
    make_video(tmp_path / "v.gif", G, adapted, fps=4, seconds=1, size=32, progress=False)
    assert read_video(tmp_path / "v.gif")[0].shape[0] == 4


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_a_video_that_fails_leaves_no_file(gens, tmp_path, monkeypatch, suffix):
    from nada_utils.video import encoders

    G, adapted = gens
    out = tmp_path / f"v{suffix}"

    def frames_then_stop(*args, **kwargs):  # rendering stopped half-way (a KeyboardInterrupt, a crash)
        grid, n, batches = video_frames(*args, **kwargs)
        return grid, n, (b if i < 1 else (_ for _ in ()).throw(KeyboardInterrupt) for i, b in enumerate(batches))

    monkeypatch.setattr("nada_utils.video.render.video_frames", frames_then_stop)
    with pytest.raises(KeyboardInterrupt):
        make_video(out, G, adapted, fps=8, seconds=2, size=32, batch=4, progress=False)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()

    def full_disk(self):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(encoders.VideoWriter, "_finish", full_disk)  # the file's end cannot be written
    with pytest.raises(OSError):
        make_video(out, G, adapted, fps=8, seconds=1, size=32, progress=False)
    assert list(tmp_path.iterdir()) == []
