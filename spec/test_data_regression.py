"""Image regression data (BIWI head pose): layout, img2pose, get_ctr, PIL vs tensor shapes, person split, points in
[-1, 1], batch shapes, augmentation that moves the point with the image (REG-1..7, REG-9..11, REG-13)."""

import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import fixtures

CAL = [[517.679, 0, 320], [0, 517.679, 240.5], [0, 0, 1]]  # rgb.cal intrinsics (FB06 printout)
BOOK_FRAME, BOOK_CTR = "13/frame_00349_rgb.jpg", (384.6370, 259.4787)  # FB06


def plain(t):
    return torch.as_tensor(t).as_subclass(torch.Tensor).float()


@pytest.fixture(scope="module")
def biwi(data_dir):
    return data_dir / "biwi_head_pose"


@pytest.fixture(scope="module")
def truth(data_dir):
    return fixtures.truth(data_dir, "biwi_head_pose")


# ---------------------------------------------------------------- REG-1 .. REG-3: files
@pytest.mark.claim("REG-1")
def test_layout(biwi, truth):
    top = sorted(p.name for p in biwi.iterdir())
    want = sorted([p for p in truth["persons"]] + [f"{p}.obj" for p in truth["persons"]])
    assert top == want and top[:2] == ["01", "01.obj"], f"top level {top}"
    assert "13" in top, "no validation person 13"
    for p in truth["persons"]:
        names = sorted(f.name for f in (biwi / p).iterdir())
        frames = sorted(n for n in names if n.startswith("frame_"))
        rgb = [n for n in frames if n.endswith("_rgb.jpg")]
        assert {"rgb.cal", "depth.cal"} <= set(names) and len(frames) == 2 * len(rgb), f"{p}: {names[:6]}"
        assert all(n[:-7] + "pose.txt" in frames and len(n) == len("frame_00003_rgb.jpg") for n in rgb), f"{p}"
    first = sorted(f.name for f in (biwi / "01").iterdir())[:3]
    assert first == ["depth.cal", "frame_00003_pose.txt", "frame_00003_rgb.jpg"], f"01 starts {first}"


@pytest.mark.claim("REG-1")
@pytest.mark.real_data
def test_real_layout(real_data):
    p = real_data / "biwi_head_pose"
    top = sorted(f.name for f in p.iterdir())
    assert len(top) == 50 and top[:4] == ["01", "01.obj", "02", "02.obj"], f"{len(top)} entries {top[:4]}"
    first = sorted(f.name for f in (p / "01").iterdir())
    assert len(first) == 1000, f"01 has {len(first)} entries"
    assert first[:4] == ["depth.cal", "frame_00003_pose.txt", "frame_00003_rgb.jpg", "frame_00004_pose.txt"], first[:4]


@pytest.mark.claim("REG-2")
@given(d=st.from_regex(r"/?([a-z0-9_]{1,8}/){0,3}[0-9]{2}", fullmatch=True), n=st.integers(0, 99999))
def test_img2pose(backend, d, n):
    f = Path(d) / f"frame_{n:05d}_rgb.jpg"
    assert Path(backend.img2pose(f)) == Path(d) / f"frame_{n:05d}_pose.txt", f"{f} -> {backend.img2pose(f)}"


@pytest.mark.claim("REG-2", "REG-3")
def test_image_files_recursive(backend, biwi, truth):
    fs = backend.get_image_files(biwi)
    got = sorted(f.relative_to(biwi).as_posix() for f in fs)
    assert got == sorted(truth["frames"]), f"{len(got)} files, truth {truth['n_frames']}; extra {got[:3]}"
    assert not [f for f in fs if f.suffix in (".txt", ".cal", ".obj")], "non-images listed"
    assert all(Path(backend.img2pose(f)).is_file() for f in fs), "a frame's pose file is missing"


# ---------------------------------------------------------------- REG-4, REG-5: images and centres
@pytest.mark.claim("REG-4")
def test_pil_size_vs_tensor_shape(backend, biwi, truth):
    f = biwi / next(iter(truth["frames"]))
    img = backend.load_image(f)
    x = backend.image2tensor(img)
    assert img.mode == "RGB" and img.size == (640, 480), f"mode {img.mode}, size {img.size}"
    assert tuple(backend.image_shape(img)) == (480, 640), f"shape {backend.image_shape(img)}"
    assert tuple(x.shape) == (3, 480, 640) and np.asarray(img).shape == (480, 640, 3), f"{tuple(x.shape)}"


@pytest.mark.claim("REG-5")
def test_calibration(backend, biwi, truth):
    for p in truth["persons"]:
        cal = np.asarray(backend.read_cal(biwi / p / "rgb.cal"))
        assert cal.shape == (3, 3) and np.allclose(cal, CAL), f"{p}/rgb.cal -> {cal.tolist()}"
        assert np.allclose(np.genfromtxt(biwi / p / "rgb.cal", skip_footer=6), CAL), (
            "genfromtxt(skip_footer=6)"
        )


@pytest.mark.claim("REG-5", "IMPL-14")
def test_get_ctr_recovers_the_drawn_centre(backend, biwi, truth):
    for name, fr in truth["frames"].items():
        c = plain(backend.get_ctr(biwi / name))
        assert c.shape == (2,) and torch.allclose(c, torch.tensor(fr["ctr"]), atol=1e-3), (
            f"{name}: {c.tolist()}"
        )
    c = plain(backend.get_ctr(biwi / BOOK_FRAME))
    assert torch.allclose(c, torch.tensor(BOOK_CTR), atol=1e-3), (
        f"{BOOK_FRAME} -> {c.tolist()}, book {BOOK_CTR}"
    )


@pytest.mark.claim("REG-5")
@given(
    t=st.tuples(st.floats(-500, 500), st.floats(-500, 500), st.floats(300, 3000)).map(lambda v: v),
    f=st.floats(100, 1000),
)
def test_get_ctr_is_the_pinhole_projection(backend, t, f):
    "For any pose and focal length: (tx f/tz + cx, ty f/tz + cy), from the files as written."
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        (d / "rgb.cal").write_text(
            f"{f!r} 0 320 \n0 {f!r} 240.5 \n0 0 1 \n\n0 0 0 0 \n\n1 0 0 \n0 1 0 \n0 0 1 \n\n0 0 0 \n\n640 480\n"
        )
        (d / "frame_00001_pose.txt").write_text("1 0 0 \n0 1 0 \n0 0 1 \n\n" + " ".join(map(repr, t)) + " \n\n")
        c = plain(backend.get_ctr(d / "frame_00001_rgb.jpg"))
    want = torch.tensor([t[0] * f / t[2] + 320, t[1] * f / t[2] + 240.5])
    assert torch.allclose(c, want, rtol=1e-5, atol=1e-3), f"t={t}, f={f}: {c.tolist()} != {want.tolist()}"


@pytest.mark.claim("REG-5")
@pytest.mark.real_data
def test_real_book_centre(backend, real_data):
    c = plain(backend.get_ctr(real_data / "biwi_head_pose" / BOOK_FRAME))
    assert torch.allclose(c, torch.tensor(BOOK_CTR), atol=1e-3), f"{c.tolist()}, book {BOOK_CTR}"


# ---------------------------------------------------------------- REG-6, REG-7: points and the person split
@pytest.mark.claim("REG-6")
def test_point_target_shape(backend, biwi, truth):
    ds = backend.biwi_datasets(biwi)
    x, y = ds.valid[0]
    assert tuple(y.shape) == (1, 2) and y.dtype == torch.float32, f"y {tuple(y.shape)} {y.dtype}"
    assert x.size == (640, 480), f"x size {x.size}"


@pytest.mark.claim("REG-7")
def test_person_split(backend, biwi, truth):
    fs = backend.get_image_files(biwi)
    for p in truth["persons"]:
        tr, va = backend.person_splitter(p)(fs)
        tr, va = [fs[int(i)] for i in tr], [fs[int(i)] for i in va]
        assert va and all(f.parent.name == p for f in va), (
            f"person {p}: valid has {[f.parent.name for f in va]}"
        )
        assert tr and not [f for f in tr if f.parent.name == p], f"person {p} leaks into training"
        want = sum(fr["person"] == p for fr in truth["frames"].values())
        assert len(va) == want and len(tr) + len(va) == len(fs), f"person {p}: {len(tr)}/{len(va)}"


@pytest.mark.claim("REG-7")
def test_person_13_is_the_validation_set(backend, biwi, truth):
    ds = backend.biwi_datasets(biwi)
    n13 = sum(fr["person"] == "13" for fr in truth["frames"].values())
    assert (len(ds.train), len(ds.valid)) == (truth["n_frames"] - n13, n13), f"{len(ds.train)}/{len(ds.valid)}"


# ---------------------------------------------------------------- REG-9 .. REG-11, REG-13: batches
@pytest.fixture(scope="module")
def dls(backend, biwi):
    torch.manual_seed(0)
    return backend.biwi_dls(biwi, bs=4)


@pytest.mark.claim("REG-9", "REG-13")
def test_batch_shapes_and_loss(backend, dls):
    for dl in (dls.train, dls.valid):
        x, y = next(iter(dl))
        assert tuple(x.shape) == (4, 3, 240, 320), f"x {tuple(x.shape)}"
        assert tuple(y.shape) == (4, 1, 2) and y.dtype == torch.float32, f"y {tuple(y.shape)} {y.dtype}"
    assert repr(dls.loss_func) == "FlattenedLoss of MSELoss()", f"loss {dls.loss_func!r}"
    assert backend.n_outputs(dls) == 2, f"{backend.n_outputs(dls)} outputs for one point"


@pytest.mark.claim("REG-10")
@given(
    size=st.tuples(st.integers(1, 2000), st.integers(1, 2000)),
    u=st.tuples(st.floats(0, 1), st.floats(0, 1)),
)
def test_point_scaling(backend, size, u):
    "x' = 2x/W - 1, y' = 2y/H - 1: edges at -1 and 1; unscaling inverts it."
    p = torch.tensor([[u[0] * size[0], u[1] * size[1]]])
    s = plain(backend.scale_points(p, size)).view(1, 2)
    want = p * 2 / torch.tensor(size, dtype=torch.float32) - 1
    assert torch.allclose(s, want, atol=1e-5) and (s.abs() <= 1 + 1e-6).all(), f"{p.tolist()} in {size} -> {s}"
    back = plain(backend.unscale_points(s, size)).view(1, 2)
    assert torch.allclose(back, p, rtol=1e-5, atol=1e-3), f"round trip {p.tolist()} -> {back.tolist()}"
    for corner in ((0, 0), size):
        c = plain(backend.scale_points(torch.tensor([corner], dtype=torch.float32), size)).view(2)
        assert c.tolist() == ([-1.0, -1.0] if corner == (0, 0) else [1.0, 1.0]), f"corner {corner} -> {c}"


@pytest.mark.claim("REG-10", "REG-11")
def test_validation_points_are_the_scaled_centres(dls, biwi, truth):
    "Validation items are not augmented: y is exactly get_ctr scaled by (640, 480), in the order of the items."
    want = sorted(
        ((np.array(fr["ctr"]) * 2 / [640, 480] - 1).tolist() for fr in truth["frames"].values() if fr["person"] == "13")
    )
    got = sorted(plain(y).view(2).tolist() for _, yb in dls.valid for y in yb)
    assert np.allclose(got, want, atol=2e-3), f"valid points {got} != scaled truth {want}"


def blob_centre(x):
    "Centroid of the head blob (the pixels brighter than halfway between median and max), in [-1, 1] coordinates."
    b = plain(x).mean(0)
    m = (b > (b.max() + b.median()) / 2).float()
    h, w = b.shape
    ys, xs = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    return torch.stack([(m * xs).sum() / m.sum() * 2 / w - 1, (m * ys).sum() / m.sum() * 2 / h - 1])


@pytest.mark.claim("REG-11")
def test_augmentation_moves_the_point_with_the_image(dls, truth):
    "In augmented training batches the target still sits on the head drawn in the image (within 4% of the range)."
    ctrs = [np.array(fr["ctr"]) * 2 / [640, 480] - 1 for fr in truth["frames"].values() if fr["person"] != "13"]
    moved, n = 0, 0
    for _ in range(2):
        for x, y in dls.train:
            for xi, yi in zip(x, y):
                yi = plain(yi).view(2)
                err = (blob_centre(xi) - yi).abs().max().item()
                assert err < 0.04, f"point {yi.tolist()} is {err:.3f} away from the head at {blob_centre(xi)}"
                moved += min(np.abs(c - yi.numpy()).max() for c in ctrs) > 0.02
                n += 1
    assert moved > 0, f"none of {n} training points moved: no augmentation happened"


@pytest.mark.claim("REG-11")
def test_flip_mirrors_image_and_point(backend, dls):
    x, y = dls.valid.one_batch()
    xf, yf = backend.flip_lr(x, y)
    assert torch.allclose(plain(xf), plain(x).flip(-1), atol=1e-5), "flipped image is not the mirror image"
    assert torch.allclose(plain(yf), plain(y) * torch.tensor([-1.0, 1.0])), f"{plain(y)} -> {plain(yf)}"
    for xi, yi in zip(xf, yf):
        err = (blob_centre(xi) - plain(yi).view(2)).abs().max().item()
        assert err < 0.04, f"after the flip the point is {err:.3f} away from the head"
