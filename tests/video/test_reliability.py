"""Odd inputs and failing outputs: checked before any work, clear errors, nothing lost."""

import errno
import shutil
import subprocess
from collections import namedtuple

import av
import numpy as np
import pytest
from PIL import Image

from lgdk.cli import main
from lgdk.config import InferenceConfig
from lgdk.data.masks import MaskError, read_mask, write_mask
from lgdk.infer.predictor import Predictor
from lgdk.video import engine
from lgdk.video.engine import segment_path
from lgdk.video.video_io import VideoError, open_frames
from tests.conftest import write_clip


class CountingPredictor(Predictor):
    steps = 0

    def step(self, frame, mask=None):
        CountingPredictor.steps += 1
        return super().step(frame, mask)


def run_cli(tmp_path, checkpoint, *args):
    size = [] if "--size" in args else ["--size", "0"]  # the tiny frames' own size
    return main(["segment", *map(str, args), "--checkpoint", str(checkpoint), *size,
                 "--no-progress"])


def one_clear_line(capsys, *fragments):
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for fragment in fragments:
        assert fragment in err, err


def write_video(path, frames=12, codec="mjpeg", size=(48, 64)):
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=10)
        stream.height, stream.width = size
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        for _ in range(frames):
            image = rng.integers(0, 255, (*size, 3), dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_out_naming_a_file_is_refused_before_any_frame(tmp_path, tiny_model):
    write_clip(tmp_path)
    (tmp_path / "out").write_text("a file")
    CountingPredictor.steps = 0
    with pytest.raises(engine.preflight.OutputError, match="is a file, not a folder"):
        segment_path(CountingPredictor(tiny_model, InferenceConfig(size=0)),
                     tmp_path / "frames", tmp_path / "gt" / "00000.png", tmp_path / "out",
                     progress=False)
    assert CountingPredictor.steps == 0 and (tmp_path / "out").read_text() == "a file"


def test_out_under_a_file_and_missing_overlay_folder_are_one_line_errors(
        tmp_path, tiny_checkpoint, capsys):
    write_clip(tmp_path, num_frames=2, height=32, width=48)
    (tmp_path / "f").write_text("x")
    frames, mask = tmp_path / "frames", tmp_path / "gt" / "00000.png"
    assert run_cli(tmp_path, tiny_checkpoint, frames, "--mask", mask, "--out",
                   tmp_path / "f" / "out") == 2
    one_clear_line(capsys, "no folder can be made there")
    assert run_cli(tmp_path, tiny_checkpoint, frames, "--mask", mask, "--out", tmp_path / "o",
                   "--overlay", tmp_path / "nowhere" / "o.mp4") == 2
    one_clear_line(capsys, "does not exist")
    assert not (tmp_path / "o").exists()


def test_dataset_out_naming_a_file_is_a_clear_error(tmp_path, tiny_checkpoint, capsys):
    (tmp_path / "JPEGImages" / "s").mkdir(parents=True)
    (tmp_path / "Annotations" / "s").mkdir(parents=True)
    (tmp_path / "pred").write_text("x")
    code = main(["segment", "--dataset", str(tmp_path), "--out", str(tmp_path / "pred"),
                 "--checkpoint", str(tiny_checkpoint), "--no-progress"])
    assert code == 2
    one_clear_line(capsys, "is a file, not a folder")


def test_a_frame_of_another_size_is_resized_with_a_warning_naming_it(tmp_path, tiny_model,
                                                                      caplog):
    write_clip(tmp_path, num_frames=4, height=32, width=48)
    odd = tmp_path / "frames" / "00002.png"
    Image.open(odd).resize((96, 64)).save(odd)  # same aspect ratio, twice the size
    segment_path(Predictor(tiny_model, InferenceConfig(size=0)), tmp_path / "frames",
                 tmp_path / "gt" / "00000.png", tmp_path / "out", progress=False)
    assert "00002.png is 96x64, the sequence 48x32: resized" in caplog.text
    assert {read_mask(p).shape for p in (tmp_path / "out").glob("*.png")} == {(32, 48)}


def test_a_frame_of_another_aspect_ratio_is_refused_before_any_frame(tmp_path, tiny_model):
    write_clip(tmp_path, num_frames=4, height=32, width=48)
    odd = tmp_path / "frames" / "00003.png"
    Image.open(odd).resize((48, 48)).save(odd)
    CountingPredictor.steps = 0
    with pytest.raises(VideoError, match="00003.png is 48x48 but the sequence"):
        segment_path(CountingPredictor(tiny_model, InferenceConfig(size=0)),
                     tmp_path / "frames", tmp_path / "gt" / "00000.png", tmp_path / "out",
                     progress=False)
    assert CountingPredictor.steps == 0 and not (tmp_path / "out").exists()


def test_a_mask_folder_with_a_mask_of_another_shape_is_refused_first(tmp_path, tiny_model):
    write_clip(tmp_path, num_frames=4, height=32, width=48)
    write_mask(tmp_path / "gt" / "00003.png", np.ones((40, 40), np.uint8))
    CountingPredictor.steps = 0
    with pytest.raises(MaskError, match="00003.png is 40x40 but the frames are 48x32"):
        segment_path(CountingPredictor(tiny_model, InferenceConfig(size=0)),
                     tmp_path / "frames", tmp_path / "gt", tmp_path / "out", progress=False)
    assert CountingPredictor.steps == 0


def test_too_little_free_space_is_refused_before_any_frame(tmp_path, tiny_model,
                                                           monkeypatch):
    write_clip(tmp_path, num_frames=4, height=32, width=48)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(engine.preflight.shutil, "disk_usage", lambda p: usage(10, 10, 100))
    CountingPredictor.steps = 0
    with pytest.raises(engine.preflight.OutputError, match="MB free; free some space"):
        segment_path(CountingPredictor(tiny_model, InferenceConfig(size=0)),
                     tmp_path / "frames", tmp_path / "gt" / "00000.png", tmp_path / "out",
                     progress=False)
    assert CountingPredictor.steps == 0


@pytest.mark.parametrize("damage", ["truncated_avi", "corrupt_mp4"])
def test_a_damaged_video_gives_the_decoded_frames_warns_and_exits_3(
        tmp_path, tiny_checkpoint, capsys, damage):
    if damage == "truncated_avi":
        video = tmp_path / "v.avi"
        write_video(video)
        data = video.read_bytes()
        video.write_bytes(data[: len(data) // 2])
    else:
        video = tmp_path / "v.mp4"
        write_video(video, frames=20, codec="libx264")
        data = bytearray(video.read_bytes())
        middle = len(data) // 2
        data[middle:middle + 200] = bytes(200)
        video.write_bytes(bytes(data))
    write_mask(tmp_path / "m.png", np.pad(np.ones((10, 10), np.uint8), ((10, 28), (20, 34))))
    out = tmp_path / "out"
    code = run_cli(tmp_path, tiny_checkpoint, video, "--mask", tmp_path / "m.png", "--out", out)
    err = capsys.readouterr().err
    assert code == 3 and "Traceback" not in err
    written = sorted(p.stem for p in out.glob("*.png"))
    first_bad = len(written)
    assert 0 < first_bad < 20 and written == [f"{i:05d}" for i in range(first_bad)]
    assert f"frame {first_bad} and after could not be decoded" in err
    shutil.rmtree(out)
    code = run_cli(tmp_path, tiny_checkpoint, video, "--mask", tmp_path / "m.png", "--out", out,
                   "--allow-partial")
    assert code == 0 and len(list(out.glob("*.png"))) == first_bad


def test_a_write_error_mid_run_keeps_nothing_half_written(tmp_path, tiny_checkpoint, capsys,
                                                          monkeypatch):
    write_clip(tmp_path, num_frames=6, height=32, width=48)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "earlier.png").write_bytes(b"kept")  # an earlier complete output
    calls = []

    def full_disk(path, ids):
        calls.append(path)
        if len(calls) > 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        write_mask(path, ids)

    monkeypatch.setattr(engine, "write_mask", full_disk)
    code = run_cli(tmp_path, tiny_checkpoint, tmp_path / "frames", "--mask",
                   tmp_path / "gt" / "00000.png", "--out", tmp_path / "out")
    assert code == 2
    one_clear_line(capsys, "No space left on device", "00003.png")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["earlier.png"]
    assert not list(tmp_path.glob(".*partial*"))


def _mount_tmpfs(folder, size):
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True)
    if done.returncode != 0:
        pytest.skip("this machine does not allow mounting a tmpfs")


@pytest.fixture
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    _mount_tmpfs(disk, "1m")
    yield disk
    subprocess.run(["umount", str(disk)], check=False)


def test_too_little_space_on_a_real_small_filesystem_is_refused_first(
        small_disk, tmp_path, tiny_checkpoint, capsys):
    write_clip(tmp_path, num_frames=30, height=64, width=96)  # probs: ~1.1 MB
    code = run_cli(tmp_path, tiny_checkpoint, tmp_path / "frames", "--mask",
                   tmp_path / "gt" / "00000.png", "--out", small_disk / "out", "--save-probs")
    assert code == 2
    one_clear_line(capsys, "MB free; free some space")
    assert not list(small_disk.iterdir())


def test_a_disk_that_fills_up_mid_run_on_a_real_small_filesystem(
        small_disk, tmp_path, tiny_checkpoint, capsys, monkeypatch):
    write_clip(tmp_path, num_frames=8, height=64, width=96)  # probs: ~0.3 MB, fits
    (small_disk / "out").mkdir()
    (small_disk / "out" / "earlier.txt").write_text("an earlier complete output")
    step = Predictor.step

    def step_then_fill_the_disk(self, frame, mask=None):
        if len(self.frame_names_seen) == 3:  # another program fills the disk
            with open(small_disk / "filler", "wb") as fh:
                try:
                    fh.write(bytes(2 ** 21))
                except OSError:
                    pass
        self.frame_names_seen.append(None)
        return step(self, frame, mask)

    monkeypatch.setattr(Predictor, "frame_names_seen", [], raising=False)
    monkeypatch.setattr(Predictor, "step", step_then_fill_the_disk)
    code = run_cli(tmp_path, tiny_checkpoint, tmp_path / "frames", "--mask",
                   tmp_path / "gt" / "00000.png", "--out", small_disk / "out", "--save-probs")
    assert code == 2
    one_clear_line(capsys, "No space left on device", "earlier complete outputs are untouched")
    assert sorted(p.name for p in (small_disk / "out").iterdir()) == ["earlier.txt"]
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler", "out"]  # no partial


@pytest.mark.parametrize("flags, message", [
    (["--size", "-5"], "--size must be a positive"),
    (["--max-memory", "-1"], "--max-memory must be 0 or more"),
    (["--top-k", "-3"], "--top-k must be 0"),
    (["--scales", "0"], "--scales must be shorter sides of 16"),
    (["--overlay", "OUT.txt"], "give a video file name ending in"),
    (["--mask", "JPEG"], "is a JPEG: its lossy compression"),
])
def test_bad_settings_are_one_line_errors(tmp_path, tiny_checkpoint, capsys, flags, message):
    write_clip(tmp_path, num_frames=2, height=32, width=48)
    jpeg = tmp_path / "m.jpg"
    Image.fromarray((read_mask(tmp_path / "gt" / "00000.png") > 0).astype(np.uint8) * 255
                    ).save(jpeg)
    flags = [str(jpeg) if f == "JPEG" else str(tmp_path / f) if f.startswith("OUT") else f
             for f in flags]
    mask = [] if "--mask" in flags else ["--mask", tmp_path / "gt" / "00000.png"]
    code = run_cli(tmp_path, tiny_checkpoint, tmp_path / "frames", *mask, "--out",
                   tmp_path / "out", *flags)
    assert code == 2
    one_clear_line(capsys, message)
    assert not (tmp_path / "out").exists()


def test_a_webm_overlay_is_written_with_vp9(tmp_path, tiny_checkpoint):
    write_clip(tmp_path, num_frames=3, height=32, width=48)
    assert run_cli(tmp_path, tiny_checkpoint, tmp_path / "frames", "--mask",
                   tmp_path / "gt" / "00000.png", "--out", tmp_path / "out", "--overlay",
                   tmp_path / "o.webm") == 0
    with av.open(str(tmp_path / "o.webm")) as container:
        assert container.streams.video[0].codec_context.name in ("vp9", "libvpx-vp9", "vp8")
        assert sum(1 for _ in container.decode(video=0)) == 3


@pytest.mark.parametrize("out", ["frames", "gt"])
def test_out_in_an_input_folder_is_refused(tmp_path, tiny_model, out):
    write_clip(tmp_path, num_frames=3, height=32, width=48)
    before = sorted((tmp_path / out).iterdir())
    with pytest.raises(engine.preflight.OutputError, match="would overwrite its files"):
        segment_path(Predictor(tiny_model, InferenceConfig(size=0)), tmp_path / "frames",
                     tmp_path / "gt" / "00000.png", tmp_path / out, progress=False)
    assert sorted((tmp_path / out).iterdir()) == before


def test_frames_are_read_in_natural_order(tmp_path, tiny_model):
    write_clip(tmp_path, num_frames=3, height=32, width=48)
    folder = tmp_path / "named"
    folder.mkdir()
    for i, name in enumerate(["frame_2", "frame_10", "frame_1"]):
        (tmp_path / "frames" / f"{i:05d}.png").rename(folder / f"{name}.png")
    names = [name for name, _ in open_frames(folder)]
    assert names == ["frame_1", "frame_2", "frame_10"]


def test_out_beside_a_mask_file_not_named_like_a_frame_is_fine(tmp_path, tiny_model):
    write_clip(tmp_path, num_frames=3, height=32, width=48)
    (tmp_path / "gt" / "00000.png").rename(tmp_path / "gt" / "first.png")
    segment_path(Predictor(tiny_model, InferenceConfig(size=0)), tmp_path / "frames",
                 tmp_path / "gt" / "first.png", tmp_path / "gt", progress=False)
    assert (tmp_path / "gt" / "first.png").is_file() and (tmp_path / "gt" / "00000.png").is_file()
