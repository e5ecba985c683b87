import numpy as np
import pytest
from PIL import Image

from lgdk.cli import main
from lgdk.config import InferenceConfig
from lgdk.data.masks import read_mask, write_mask
from lgdk.infer.predictor import Predictor
from lgdk.video.engine import MaskProvider, segment_path
from lgdk.video.video_io import VideoError, open_frames
from lgdk.video.writer import VideoWriter
from tests.conftest import write_clip


def test_whole_video_equals_streaming_steps(tmp_path, tiny_model):
    clip = write_clip(tmp_path)
    p = Predictor(tiny_model, InferenceConfig(size=0))
    summary = segment_path(p, tmp_path / "frames", tmp_path / "gt" / "00000.png",
                           tmp_path / "out", progress=False)
    assert summary.frames == 6 and summary.objects == 2
    stream = Predictor(tiny_model, InferenceConfig(size=0))
    for t, frame in enumerate(clip.frames):
        probs = stream.step(frame, clip.labels[0] if t == 0 else None)
        saved = read_mask(tmp_path / "out" / f"{t:05d}.png")
        assert np.array_equal(saved, stream.labels(probs))
    assert not list(tmp_path.glob(".*partial*"))


def test_a_bad_frame_midway_leaves_no_output_behind(tmp_path, tiny_model):
    write_clip(tmp_path)
    (tmp_path / "frames" / "00003.png").write_bytes(b"not an image")
    with pytest.raises(VideoError, match="00003.png is not a readable image"):
        segment_path(Predictor(tiny_model, InferenceConfig(size=0)), tmp_path / "frames",
                     tmp_path / "gt" / "00000.png", tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.glob(".*partial*"))


def test_output_is_indexed_png_with_davis_palette(tmp_path, tiny_model):
    write_clip(tmp_path, num_frames=2)
    segment_path(Predictor(tiny_model), tmp_path / "frames", tmp_path / "gt" / "00000.png",
                 tmp_path / "out", progress=False)
    img = Image.open(tmp_path / "out" / "00001.png")
    assert img.mode == "P"
    assert img.getpalette()[3:6] == [128, 0, 0]  # DAVIS colour of object 1


def test_video_round_trip_through_pyav(tmp_path):
    rng = np.random.default_rng(0)
    frames = [np.full((48, 64, 3), v, np.uint8) for v in (20, 120, 220)]
    frames[1][10:20, 10:30] = rng.integers(0, 255, size=(10, 20, 3))
    writer = VideoWriter(tmp_path / "v.mp4", fps=10)
    for f in frames:
        writer.write(f)
    writer.close()
    read = list(open_frames(tmp_path / "v.mp4"))
    assert [name for name, _ in read] == ["00000", "00001", "00002"]
    assert read[0][1].shape == (48, 64, 3)
    assert abs(read[2][1].astype(int).mean() - 220) < 4  # lossy codec: close, not equal


def test_segment_cli_on_a_video_with_overlay_and_probs(tmp_path, tiny_checkpoint, capsys):
    clip = write_clip(tmp_path, num_frames=4, height=48, width=64)
    writer = VideoWriter(tmp_path / "in.mp4", fps=5)
    for f in clip.frames:
        writer.write(f)
    writer.close()
    code = main(["segment", str(tmp_path / "in.mp4"), "--mask", str(tmp_path / "gt/00000.png"),
                 "--out", str(tmp_path / "out"), "--checkpoint", str(tiny_checkpoint),
                 "--overlay", str(tmp_path / "ov.mp4"), "--save-probs", "--no-progress"])
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == [
        f"{i:05d}.png" for i in range(4)]
    probs = np.load(tmp_path / "out" / "probs" / "00003.npy")
    assert probs.dtype == np.float16 and probs.shape == (3, 48, 64)
    assert len(list(open_frames(tmp_path / "ov.mp4"))) == 4
    assert "4 frames, 2 object(s)" in capsys.readouterr().out


def test_segment_dataset_is_resumable(tmp_path, tiny_checkpoint):
    for seq in ("a", "b"):
        write_clip(tmp_path / "tmp" / seq, num_frames=3, height=32, width=48)
        (tmp_path / "ds" / "JPEGImages").mkdir(parents=True, exist_ok=True)
        (tmp_path / "ds" / "Annotations").mkdir(exist_ok=True)
        (tmp_path / "tmp" / seq / "frames").rename(tmp_path / "ds" / "JPEGImages" / seq)
        (tmp_path / "tmp" / seq / "gt").rename(tmp_path / "ds" / "Annotations" / seq)
    args = ["segment", "--dataset", str(tmp_path / "ds"), "--out", str(tmp_path / "pred"),
            "--checkpoint", str(tiny_checkpoint), "--no-progress"]
    assert main(args) == 0
    done = tmp_path / "pred" / "a" / "00001.png"
    stamp = done.stat().st_mtime_ns
    assert main(args) == 0
    assert done.stat().st_mtime_ns == stamp  # complete sequences are skipped
    assert main(["eval", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "ds")]) == 0


@pytest.mark.parametrize("problem,message", [
    ("missing_input", "not found"),
    ("empty_video", "is empty"),
    ("bad_video", "not a readable video"),
    ("mask_size", "give a mask of the frame's size"),
    ("empty_mask", "contains no object"),
    ("rgb_mask", "not DAVIS palette colours"),
    ("too_many", "exceed the limit"),
    ("bad_checkpoint", "not an lgdk checkpoint"),
])
def test_bad_inputs_give_one_clear_line_and_exit_2(tmp_path, tiny_checkpoint, capsys,
                                                   problem, message):
    write_clip(tmp_path, num_frames=2, height=32, width=48)
    video, mask = tmp_path / "frames", tmp_path / "gt" / "00000.png"
    extra, checkpoint = [], tiny_checkpoint
    if problem == "missing_input":
        video = tmp_path / "nope.mp4"
    elif problem == "empty_video":
        video = tmp_path / "e.mp4"
        video.write_bytes(b"")
    elif problem == "bad_video":
        video = tmp_path / "b.mp4"
        video.write_bytes(b"garbage" * 100)
    elif problem == "mask_size":
        mask = tmp_path / "m.png"
        write_mask(mask, np.ones((10, 40), np.uint8))
    elif problem == "empty_mask":
        mask = tmp_path / "m.png"
        write_mask(mask, np.zeros((32, 48), np.uint8))
    elif problem == "rgb_mask":
        mask = tmp_path / "m.png"
        Image.fromarray(np.full((32, 48, 3), (10, 200, 30), np.uint8)).save(mask)
    elif problem == "too_many":
        extra = ["--max-objects", "1"]
    elif problem == "bad_checkpoint":
        checkpoint = tmp_path / "c.safetensors"
        checkpoint.write_bytes(b"junk")
    code = main(["segment", str(video), "--mask", str(mask), "--out", str(tmp_path / "out"),
                 "--checkpoint", str(checkpoint), "--no-progress", *extra])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_mask_with_the_frame_aspect_ratio_is_resized(tmp_path):
    write_mask(tmp_path / "m.png", np.kron(np.eye(2, dtype=np.uint8), np.ones((4, 6),
                                                                             np.uint8)))
    ids = MaskProvider(tmp_path / "m.png").get(0, "00000", (16, 24))
    assert ids.shape == (16, 24) and ids[0, 0] == 1 and ids[0, -1] == 0


def test_the_report_gives_each_frames_doubt_from_the_same_run(tmp_path, tiny_model):
    """`--report`: every frame in order, the given one sure, the others' objects measured
    from the probabilities the masks came from."""
    import json

    write_clip(tmp_path)
    segment_path(Predictor(tiny_model, InferenceConfig(size=0)), tmp_path / "frames",
                 tmp_path / "gt" / "00000.png", tmp_path / "out", progress=False,
                 report=tmp_path / "report.json")
    content = json.loads((tmp_path / "report.json").read_text())
    assert [f["name"] for f in content["frames"]] == [f"{i:05d}" for i in range(6)]
    assert content["given"] == [0] and content["frames"][0]["why"] == "given"
    for row in content["frames"][1:]:
        assert set(row["objects"]) == {"1", "2"}
        assert 0.0 <= row["doubt"] <= 1.0 and row["why"] in ("unsure", "area jump", "vanished")
    assert all(0 < f <= 5 for f in content["worst"])


@pytest.mark.parametrize("name, problem", [("report.txt", "ending in .json"),
                                           ("missing/report.json", "does not exist")])
def test_a_bad_report_path_is_refused_before_any_work(tmp_path, capsys, name, problem):
    write_clip(tmp_path)
    code = main(["segment", str(tmp_path / "frames"), "--mask", str(tmp_path / "gt/00000.png"),
                 "--out", str(tmp_path / "out"), "--report", str(tmp_path / name)])
    assert code != 0 and not (tmp_path / "out").exists()
    assert problem in capsys.readouterr().err
