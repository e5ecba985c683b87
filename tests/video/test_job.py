"""The video job: which given frame labels each frame (plan), propagation both ways from
masks on any frame, results in frame order, frames decoded once and kept no longer than
needed, and the CLI's --prompt-frame / --mask folder filling every frame."""

import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from lgdk.config import InferenceConfig
from lgdk.data.masks import read_mask, write_mask
from lgdk.errors import UserError
from lgdk.infer.predictor import Predictor, Streaming
from lgdk.video.frames import Frames, Spill
from lgdk.video.job import AGREE_IOU, Reach, VideoJob, labels_agree, plan
from lgdk.video.video_io import FrameSource, open_frames
from lgdk.video.writer import VideoWriter


class Copying(Streaming):
    """Predicts that every frame looks like the last one it memorised: a given mask
    carries on unchanged, in whichever direction frames come."""

    made = 0

    def __init__(self) -> None:
        super().__init__(max_objects=8)
        self.last = None
        Copying.made += 1

    def predict(self, frame):
        if self.last is None:
            return torch.ones(1, *frame.shape[:2])
        return self.last

    def memorize(self, probs, given=False):
        self.last = probs


def frames_folder(tmp_path, count=12, height=24, width=32):
    folder = tmp_path / "frames"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 255, (height, width, 3), np.uint8)).save(
            folder / f"{i:05d}.png")
    return folder


def square(object_id, x, y, size=6, shape=(24, 32)):
    mask = np.zeros(shape, np.uint8)
    mask[y:y + size, x:x + size] = object_id
    return mask


@pytest.mark.parametrize("given_frames, direction, reaches", [
    ([0], "both", [Reach(0, None, None)]),
    ([10], "both", [Reach(10, 0, None)]),
    ([2, 8], "both", [Reach(2, 0, 6), Reach(8, 6, None)]),  # frame 5: a tie, the earlier
    ([2, 8], "forward", [Reach(2, None, None)]),
    ([2, 8], "backward", [Reach(2, 0, 3), Reach(8, 3, 9)]),
])
def test_each_frame_follows_the_nearer_given_frame(given_frames, direction, reaches):
    assert plan(given_frames, direction) == reaches


@settings(max_examples=60, deadline=None)
@given(st.sets(st.integers(0, 60), min_size=1, max_size=8))
def test_both_ways_every_frame_is_labelled_exactly_once_by_its_nearest(given_frames):
    reaches = plan(list(given_frames), "both")
    for t in range(80):
        covering = [r for r in reaches if r.covers(t)]
        assert len(covering) == 1
        distance = abs(covering[0].given - t)
        assert distance == min(abs(g - t) for g in given_frames)


def test_an_unknown_direction_is_refused():
    with pytest.raises(UserError, match="--direction must be one of"):
        plan([0], "sideways")


def test_a_mask_in_the_middle_fills_every_frame_both_ways(tmp_path):
    job = VideoJob(open_frames(frames_folder(tmp_path)), Copying)
    job.give(5, square(1, 4, 4))
    results = list(job.propagate("both"))
    assert [r.index for r in results] == list(range(12))
    assert all(np.array_equal(r.labels, square(1, 4, 4)) for r in results)
    job2 = VideoJob(open_frames(tmp_path / "frames"), Copying)
    job2.give(5, square(1, 4, 4))
    forward = list(job2.propagate("forward"))
    assert len(forward) == 12 and not any(r.labels.any() for r in forward[:5])
    assert all(r.labels.any() for r in forward[5:])


def test_between_two_given_frames_the_nearer_one_decides(tmp_path):
    job = VideoJob(open_frames(frames_folder(tmp_path)), Copying)
    job.give(2, square(1, 0, 0))
    job.give(8, square(2, 20, 10))  # introduces object 2; object 1 carries on from frame 2
    labels = [r.labels for r in job.propagate("both")]
    one, two = square(1, 0, 0), square(2, 20, 10)
    both = np.maximum(one, two)
    assert all(np.array_equal(labels[t], one) for t in range(0, 6))  # frame 5: a tie
    assert all(np.array_equal(labels[t], both) for t in range(6, 12))


def test_a_correction_reaches_only_as_far_as_the_neighbours(tmp_path):
    job = VideoJob(open_frames(frames_folder(tmp_path)), Copying)
    job.give(0, square(1, 0, 0))
    job.give(10, square(1, 20, 10))
    job.give(6, square(1, 10, 5))
    out = {r.index: r.labels for r in job.propagate("both", only={6}, in_order=False)}
    assert sorted(out) == [4, 5, 6, 7, 8]  # (0+6)//2+1 .. (6+10)//2
    assert all(np.array_equal(out[t], square(1, 10, 5)) for t in out)


def test_a_video_is_decoded_once_and_frames_are_let_go(tmp_path):
    frames = [np.full((32, 48, 3), 10 * i, np.uint8) for i in range(20)]
    writer = VideoWriter(tmp_path / "v.mp4", fps=10)
    for frame in frames:
        writer.write(frame)
    writer.close()
    decoded = []

    class Counting(FrameSource):  # counts what the job asks the decoder for
        def __iter__(self):
            for item in super().__iter__():
                decoded.append(item[0])
                yield item

    video = open_frames(tmp_path / "v.mp4")
    source = Counting(**{f.name: getattr(video, f.name) for f in dataclasses.fields(video)})
    job = VideoJob(source, Copying, Spill(budget=3 * 32 * 48 * 3))  # 3 frames in memory
    job.give(12, square(1, 4, 4, shape=(32, 48)))
    results = list(job.propagate("both"))
    assert [r.index for r in results] == list(range(20)) and len(decoded) == 20
    assert all(r.labels[6, 6] == 1 for r in results)
    assert abs(int(results[3].frame.mean()) - 30) <= 3  # the right frame, in order
    assert job.frames.spill.folder is not None  # frames 0-12 did not fit in memory
    assert job.frames.spill.keys() == []  # all let go at the end
    job.close()


def test_a_released_frame_is_not_read_again():
    class Endless:
        files, path, fps = None, "v", 10.0

        def __iter__(self):
            for i in range(5):
                yield f"{i:05d}", np.zeros((2, 2, 3), np.uint8)

    frames = Frames(Endless())
    assert frames.get(3) is not None and frames.get(9) is None and frames.count == 5
    frames.release(1)
    with pytest.raises(RuntimeError, match="released"):
        frames.get(1)
    frames.close()


def test_cli_prompt_on_a_middle_frame_fills_the_frames_before_it(tmp_path, tiny_checkpoint):
    from lgdk.cli import main

    folder = frames_folder(tmp_path, count=6)
    code = main(["segment", str(folder), "--box", "2,2,14,14", "--prompt-frame", "3",
                 "--prompt-method", "grabcut", "--out", str(tmp_path / "out"),
                 "--checkpoint", str(tiny_checkpoint), "--size", "0", "--no-progress"])
    assert code == 0
    names = sorted(p.name for p in (tmp_path / "out").glob("0*.png"))
    assert names == [f"{i:05d}.png" for i in range(6)]
    code = main(["segment", str(folder), "--box", "2,2,14,14", "--prompt-frame", "3",
                 "--prompt-method", "grabcut", "--out", str(tmp_path / "fwd"),
                 "--checkpoint", str(tiny_checkpoint), "--size", "0", "--no-progress",
                 "--direction", "forward"])
    assert code == 0
    assert not read_mask(tmp_path / "fwd" / "00000.png").any()
    assert read_mask(tmp_path / "fwd" / "00003.png").any()


def test_a_mask_folder_with_a_later_mask_fills_every_frame(tmp_path, tiny_model):
    from lgdk.video.engine import segment_path

    folder = frames_folder(tmp_path, count=6)
    (tmp_path / "masks").mkdir()
    write_mask(tmp_path / "masks" / "00004.png", square(3, 8, 8))
    make = lambda: Predictor(tiny_model, InferenceConfig(size=0))  # noqa: E731
    summary = segment_path(make, folder, tmp_path / "masks", tmp_path / "out", progress=False)
    assert summary.frames == 6 and summary.objects == 1
    assert np.array_equal(read_mask(tmp_path / "out" / "00004.png"), square(3, 8, 8))
    assert set(np.unique(read_mask(tmp_path / "out" / "00000.png"))) <= {0, 3}
    with pytest.raises(UserError, match="more than one pass"):
        segment_path(make(), folder, tmp_path / "masks", tmp_path / "out2", progress=False)


def test_a_mask_past_the_videos_end_is_a_clear_error(tmp_path):
    job = VideoJob(open_frames(frames_folder(tmp_path, count=4)), Copying)
    job.give(9, square(1, 0, 0))
    with pytest.raises(UserError, match="only 4 frames; give a frame number below 4"):
        list(job.propagate())


class Recording(Copying):
    """Copying, and every step (which frame, which ids given) kept in `steps`."""

    steps: list = []

    def step(self, frame, mask=None):
        ids = None if mask is None else sorted(int(v) for v in np.unique(mask))
        Recording.steps.append((frame.tobytes(), ids, Copying.made))
        return super().step(frame, mask)


def recorded_steps(tmp_path, direction):
    """(frame number, ids given, pass) of every step, object 1 given on frame 2, objects 1
    and 2 on frame 8."""
    source = open_frames(frames_folder(tmp_path))
    pixels = [source._read_image(f).tobytes() for f in source.files]
    Recording.steps = []
    job = VideoJob(source, Recording)
    job.give(2, square(1, 0, 0))
    job.give(8, np.maximum(square(1, 20, 10), square(2, 0, 16)))
    list(job.propagate(direction))
    return [(pixels.index(pixel), ids, made) for pixel, ids, made in Recording.steps]


def test_every_pass_holds_the_given_frames_on_both_sides(tmp_path):
    """A frame between two given frames reads both: each pass starts with the other given
    frame in memory; a later frame's objects not known yet are void there (not claimed
    before they are given)."""
    by_pass: dict = {}
    for index, ids, made in recorded_steps(tmp_path, "both"):
        by_pass.setdefault(made, []).append((index, ids))
    passes = list(by_pass.values())
    assert passes[0][:2] == [(8, [0, 1, 255]), (2, [0, 1])]  # from 2: frame 8 first
    assert passes[1][:2] == [(8, [0, 1, 255]), (2, [0, 1])]  # backward from 2 too
    assert passes[2][:2] == [(2, [0, 1]), (8, [0, 1, 2])]  # from 8: frame 2 first
    assert passes[3][:2] == [(2, [0, 1]), (8, [0, 1, 2])]


def test_going_forward_alone_reads_no_later_given_frame(tmp_path):
    """The benchmarks' protocol: one pass; a later mask is taken when its frame comes."""
    order = [index for index, _, _ in recorded_steps(tmp_path, "forward")]
    assert order == list(range(2, 12))


@pytest.mark.parametrize("later, steps", [(0, 16), (1, 18)])
def test_later_seeds_can_be_turned_off(tmp_path, later, steps):
    source = open_frames(frames_folder(tmp_path))
    Recording.steps = []
    job = VideoJob(source, Recording, later_seeds=later)
    job.give(2, square(1, 0, 0))
    job.give(8, square(1, 20, 10))
    list(job.propagate("both"))
    # 12 frames, the given frame again at the start of each of the 2 backward passes,
    # frame 2 in both passes from 8, and (with later seeds) frame 8 in both from 2
    assert len(Recording.steps) == steps


def test_a_corrections_passes_stop_where_the_frames_are_as_they_were(tmp_path):
    job = VideoJob(open_frames(frames_folder(tmp_path, count=30)), Copying)
    job.give(0, square(1, 0, 0))
    job.give(29, square(1, 0, 0))
    old = {r.index: r.labels for r in job.propagate("both")}
    job.unchanged = lambda r: labels_agree(old[r.index], r.labels, AGREE_IOU)
    job.give(14, square(1, 0, 0))  # the same as before: 3 frames each way show it
    out = {r.index for r in job.propagate("both", only={14}, in_order=False)}
    assert out == {11, 12, 13, 14, 15, 16, 17}
    job.give(14, square(1, 10, 10))  # a real change carries to the reach's ends
    out = {r.index for r in job.propagate("both", only={14}, in_order=False)}
    assert out == set(range(8, 22))  # (0+14)//2+1 .. (14+29)//2
