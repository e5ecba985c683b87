"""Property-based tests of the readers and writers: every input either works with its
documented meaning or fails with a UserError (one clear line in the CLI), never another
exception."""

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from lgdk.data.masks import VOID, MaskError, davis_palette, read_mask, write_mask
from lgdk.errors import UserError
from lgdk.eval.davis import evaluate
from lgdk.video.video_io import open_frames

FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
sizes = st.tuples(st.integers(1, 23), st.integers(1, 23))


@st.composite
def id_maps(draw, max_id=254):
    h, w = draw(sizes)
    ids = draw(st.lists(st.integers(1, max_id), min_size=1, max_size=6, unique=True))
    seed = draw(st.integers(0, 2 ** 16))
    values = np.array([0, *ids], np.uint8)
    return values[np.random.default_rng(seed).integers(0, len(values), (h, w))]


def encode(ids: np.ndarray, mode: str, seed: int) -> Image.Image:
    """The id map saved the way some tool would save it in `mode`."""
    rng = np.random.default_rng(seed)
    if mode == "P":
        img = Image.fromarray(ids, "P")
        img.putpalette(rng.integers(0, 256, 768).astype(np.uint8).tolist())
        return img
    if mode in ("L", "LA"):
        img = Image.fromarray(ids, "L")
        if mode == "LA":
            img.putalpha(Image.fromarray(rng.integers(0, 256, ids.shape, dtype=np.uint8)))
        return img
    if mode == "I;16":
        return Image.fromarray(ids.astype(np.uint16))  # mode I;16
    if mode in ("RGB", "RGBA"):
        img = Image.fromarray(davis_palette()[ids], "RGB")
        return img.convert("RGBA") if mode == "RGBA" else img
    raise AssertionError(mode)


def saved(tmp_path, img: Image.Image, name="m.png"):
    path = tmp_path / name
    img.save(path)
    return path


@FUZZ
@given(ids=id_maps(), mode=st.sampled_from(["P", "L", "LA", "I;16", "RGB", "RGBA"]),
       seed=st.integers(0, 1000))
def test_masks_in_every_mode_read_as_their_ids(tmp_path, ids, mode, seed):
    got = read_mask(saved(tmp_path, encode(ids, mode, seed)))
    expected = ids
    if mode != "P" and set(np.unique(ids).tolist()) <= {0, 255}:
        expected = (ids > 0).astype(np.uint8)  # a binary 0/255 mask is object 1
    assert got.dtype == np.uint8 and np.array_equal(got, expected)


@FUZZ
@given(size=sizes, seed=st.integers(0, 2 ** 16))
def test_one_bit_masks_are_object_one(tmp_path, size, seed):
    bits = np.random.default_rng(seed).random(size) < 0.5
    got = read_mask(saved(tmp_path, Image.fromarray(bits)))
    assert np.array_equal(got, bits.astype(np.uint8))


@FUZZ
@given(size=sizes, seed=st.integers(0, 2 ** 16),
       mode=st.sampled_from(["1", "L", "LA", "P", "RGB", "RGBA", "I;16", "I", "CMYK"]))
def test_any_image_is_an_id_map_or_a_mask_error(tmp_path, size, seed, mode):
    rng = np.random.default_rng(seed)
    channels = {"1": 1, "L": 1, "P": 1, "LA": 2, "RGB": 3, "RGBA": 4, "CMYK": 4}
    if mode in ("I;16", "I"):
        img = Image.fromarray(rng.integers(0, 70000 if mode == "I" else 65536, size)
                              .astype(np.int32 if mode == "I" else np.uint16))
    else:
        data = rng.integers(0, 256, (*size, channels[mode]), dtype=np.uint8)
        img = Image.frombytes(mode if mode != "1" else "L", size[::-1], data.tobytes())
        img = img.convert("1") if mode == "1" else img
    path = tmp_path / "m.tiff" if mode in ("CMYK", "I") else tmp_path / "m.png"
    img.save(path)
    try:
        got = read_mask(path)
    except MaskError:
        return
    assert got.shape == size and got.dtype == np.uint8


@FUZZ
@given(data=st.binary(max_size=300), keep=st.floats(0.05, 0.95))
def test_damaged_and_random_files_are_mask_errors(tmp_path, data, keep):
    png = io.BytesIO()
    write_mask(tmp_path / "ok.png", np.eye(8, dtype=np.uint8))
    png.write((tmp_path / "ok.png").read_bytes())
    for content in (data, png.getvalue()[: int(len(png.getvalue()) * keep)]):
        (tmp_path / "bad.png").write_bytes(content)
        with pytest.raises(MaskError):
            read_mask(tmp_path / "bad.png")


@FUZZ
@given(ids=id_maps(max_id=VOID - 1))
def test_written_masks_read_back_the_same(tmp_path, ids):
    write_mask(tmp_path / "w.png", ids)
    assert np.array_equal(read_mask(tmp_path / "w.png"), ids)
    assert not list(tmp_path.glob(".*tmp"))


@st.composite
def frame_folders(draw):
    """Frames of random sizes (mostly the first's, some scaled, some of another shape),
    some files damaged or empty, some not images at all."""
    h, w = draw(st.tuples(st.integers(2, 20), st.integers(2, 20)))
    kinds = draw(st.lists(st.sampled_from(["same", "same", "scaled", "other", "damaged",
                                           "empty", "text"]), min_size=1, max_size=5))
    return h, w, ["same", *kinds]


@FUZZ
@given(folder=frame_folders())
def test_frame_folders_give_same_size_frames_or_a_user_error(tmp_path_factory, folder):
    h, w, kinds = folder
    root = tmp_path_factory.mktemp("frames")
    for i, kind in enumerate(kinds):
        path = root / f"{i:03d}.png"
        size = {"scaled": (2 * w, 2 * h), "other": (w + 3, h)}.get(kind, (w, h))
        if kind in ("damaged", "empty", "text"):
            good = io.BytesIO()
            Image.new("RGB", (w, h)).save(good, format="PNG")
            path.write_bytes({"damaged": good.getvalue()[:30], "empty": b"",
                              "text": b"hello"}[kind])
        else:
            Image.new("RGB", size, (i * 30 % 256, 0, 0)).save(path)
    try:
        frames = [f for _, f in open_frames(root)]
    except UserError:
        assert any(k in ("other", "damaged", "empty", "text") for k in kinds)
        return
    assert all(f.shape == (h, w, 3) for f in frames) and len(frames) == len(kinds)


@FUZZ
@given(seed=st.integers(0, 2 ** 16),
       damage=st.sampled_from(["none", "size", "missing", "extra_id", "non_png", "corrupt",
                               "no_folder"]))
def test_eval_scores_or_names_the_problem(tmp_path_factory, seed, damage):
    rng = np.random.default_rng(seed)
    root = tmp_path_factory.mktemp("eval")
    gt, pred = root / "gt" / "s", root / "pred" / "s"
    gt.mkdir(parents=True)
    pred.mkdir(parents=True)
    for t in range(4):
        truth = (rng.random((12, 16)) < 0.3).astype(np.uint8)
        write_mask(gt / f"{t:05d}.png", truth)
        guess = (rng.random((12, 16)) < 0.3).astype(np.uint8)
        if t == 1 and damage == "size":
            guess = np.zeros((10, 16), np.uint8)
        if t == 2 and damage == "extra_id":
            guess[0, 0] = 7
        if not (t == 1 and damage == "missing"):
            write_mask(pred / f"{t:05d}.png", guess)
    if damage == "non_png":
        (pred / "notes.txt").write_text("x")
    if damage == "corrupt":
        (pred / "00002.png").write_bytes(b"\x89PNG broken")
    if damage == "no_folder":
        for p in pred.iterdir():
            p.unlink()
        pred.rmdir()
    try:
        results = evaluate(root / "pred", root / "gt", workers=1)
    except UserError as exc:
        assert damage != "none"
        assert "s" in str(exc)
        return
    assert damage == "none" and 0 <= results["J&F-Mean"] <= 1


def test_sixteen_bit_ids_above_254_are_refused(tmp_path):
    ids = np.zeros((4, 4), np.uint16)
    ids[0, 0], ids[1, 1] = 3, 300
    with pytest.raises(MaskError, match="values up to 300"):
        read_mask(saved(tmp_path, Image.fromarray(ids)))
    ids[1, 1] = 0
    assert read_mask(saved(tmp_path, Image.fromarray(ids)))[0, 0] == 3
