import numpy as np
import pytest
from PIL import Image

from lgdk.cli import main
from lgdk.data.masks import read_mask
from lgdk.video.cutout import read_rgba_video
from tests.conftest import write_clip


@pytest.fixture
def segmented(tmp_path, tiny_checkpoint):
    write_clip(tmp_path / "clip", num_frames=4, height=64, width=96)

    def run(*flags):
        return main(["segment", str(tmp_path / "clip/frames"), "--mask",
                     str(tmp_path / "clip/gt/00000.png"), "--checkpoint", str(tiny_checkpoint),
                     "--size", "0", "--no-progress", "--out", str(tmp_path / "masks"), *flags])

    return tmp_path, run


def labels(folder):
    return [read_mask(p) for p in sorted(folder.glob("*.png"))]


def test_transparent_webm_carries_the_masks_in_its_alpha(segmented):
    tmp_path, run = segmented
    assert run("--cutout", str(tmp_path / "cut.webm")) == 0
    frames = read_rgba_video(tmp_path / "cut.webm")
    truth = labels(tmp_path / "masks")
    assert len(frames) == len(truth) == 4
    for rgba, ids in zip(frames, truth):
        assert rgba.shape == (64, 96, 4)
        agree = (rgba[..., 3] > 127) == (ids > 0)
        assert agree.mean() > 0.97  # VP9 codes the alpha plane lossily


def test_png_folder_is_exact_and_a_colour_background_fills_the_rest(segmented):
    tmp_path, run = segmented
    assert run("--cutout", str(tmp_path / "pngs")) == 0
    truth = labels(tmp_path / "masks")
    pngs = sorted((tmp_path / "pngs").glob("*.png"))
    assert len(pngs) == 4
    for path, ids in zip(pngs, truth):
        rgba = np.array(Image.open(path))
        assert rgba.shape == (64, 96, 4)
        assert np.array_equal(rgba[..., 3] > 0, ids > 0)
    assert run("--cutout", str(tmp_path / "green.mp4"), "--background", "0,255,0") == 0
    assert (tmp_path / "green.mp4").stat().st_size > 0


@pytest.mark.parametrize("flags, message", [
    (["--cutout", "x.mp4"], "only WebM (VP9) and .mov (ProRes 4444) keep transparency"),
    (["--cutout", "x.webm", "--background", "0,300,0"], "--background must be R,G,B"),
    (["--background", "0,255,0"], "give --cutout PATH with it"),
    (["--cutout", "x.txt"], "give a .webm (transparent)"),
])
def test_bad_cutout_requests_are_one_line_errors(segmented, capsys, flags, message):
    tmp_path, run = segmented
    flags = [str(tmp_path / f) if f.startswith("x.") else f for f in flags]
    assert run(*flags) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "masks").exists()
