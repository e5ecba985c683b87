import numpy as np
import pytest
from PIL import Image

from lgdk.data.masks import MaskError, davis_palette, read_mask, write_mask


def test_palette_png_round_trip_keeps_ids(tmp_path):
    ids = np.array([[0, 1, 2], [3, 255, 7]], np.uint8)
    write_mask(tmp_path / "m.png", ids)
    assert np.array_equal(read_mask(tmp_path / "m.png"), ids)
    assert not list(tmp_path.glob(".*tmp"))


def test_binary_0_255_mask_is_object_1_with_or_without_alpha(tmp_path):
    gray = np.zeros((4, 5), np.uint8)
    gray[1:3, 1:4] = 255
    Image.fromarray(gray, "L").save(tmp_path / "l.png")
    Image.fromarray(gray, "L").convert("LA").save(tmp_path / "la.png")
    for name in ("l.png", "la.png"):
        assert np.array_equal(read_mask(tmp_path / name), (gray > 0).astype(np.uint8))


def test_grayscale_ids_are_kept(tmp_path):
    gray = np.array([[0, 1], [2, 3]], np.uint8)
    Image.fromarray(gray, "L").save(tmp_path / "g.png")
    assert np.array_equal(read_mask(tmp_path / "g.png"), gray)


def test_rgb_with_palette_colours_maps_to_ids_and_others_are_refused(tmp_path):
    pal = davis_palette()
    ids = np.array([[0, 1], [2, 0]], np.uint8)
    Image.fromarray(pal[ids]).save(tmp_path / "rgb.png")
    assert np.array_equal(read_mask(tmp_path / "rgb.png"), ids)
    Image.fromarray(np.full((2, 2, 3), (1, 2, 3), np.uint8)).save(tmp_path / "bad.png")
    with pytest.raises(MaskError, match="not DAVIS palette colours"):
        read_mask(tmp_path / "bad.png")


def test_missing_and_unreadable_masks(tmp_path):
    with pytest.raises(MaskError, match="not found"):
        read_mask(tmp_path / "none.png")
    (tmp_path / "x.png").write_bytes(b"nope")
    with pytest.raises(MaskError, match="not a readable image"):
        read_mask(tmp_path / "x.png")
