"""The app's session logic without a browser: prompts to masks, propagation, corrections,
cancelling, uploads, and two sessions side by side."""

import threading
import time
import zipfile

import numpy as np
import pytest
from PIL import Image

from lgdk.app.limits import AppSettings
from lgdk.app.session import Session, SessionError
from lgdk.app.uploads import load_upload
from lgdk.data.masks import read_mask
from lgdk.eval.metrics import jaccard
from lgdk.prompts.spec import PromptError
from lgdk.video.video_io import VideoError
from tests.app.conftest import clip, tight_box


def session_on(tmp_path, make_predictor, c, name="s"):
    s = Session(tmp_path / name, make_predictor, AppSettings(prompt_method="grabcut"))
    s.load(iter(c.frames), fps=10)
    return s


def wait(session):
    session._thread.join(timeout=120)
    assert not session.progress.running


def painted_and_propagated(tmp_path, make_predictor, frame):
    """A session on an 8-frame clip, object 1 painted on `frame`, propagated."""
    s = session_on(tmp_path, make_predictor, clip())
    s.paint(frame, 1, [(20, 20), (40, 30)], radius=6)
    s.propagate()
    wait(s)
    assert s.progress.done == s.progress.total == 8 and s.progress.error is None
    return s


def test_a_box_gives_the_objects_mask_on_that_frame(tmp_path, make_tiny_predictor):
    c = clip()
    s = session_on(tmp_path, make_tiny_predictor, c)
    s.box(0, 1, tight_box(c.labels[0], 1))
    mask = s.labels(0)
    assert set(np.unique(mask)) <= {0, 1}
    assert jaccard(mask == 1, c.labels[0] == 1) > 0.6
    assert s.object_ids() == [1]
    s.box(0, 2, tight_box(c.labels[0], 2))
    assert s.object_ids() == [1, 2]


def test_a_box_on_a_frame_with_other_objects_tells_the_prompt_network_where_they_are(
        tmp_path, make_tiny_predictor, monkeypatch):
    import lgdk.prompts.learned as learned

    seen = []
    real = learned.learned_probability

    def spy(net, frame, prompt, others=()):
        seen.append((prompt.object_id, list(others)))
        return real(net, frame, prompt, others)

    monkeypatch.setattr(learned, "learned_probability", spy)
    c = clip()
    s = Session(tmp_path / "s", make_tiny_predictor)  # the learned method, the default
    s.load(iter(c.frames), fps=10)
    s.paint(0, 2, [(70, 40)], radius=8)
    painted = s.labels(0) == 2
    s.box(0, 1, tight_box(c.labels[0], 1))
    (object_id, others), = seen
    assert object_id == 1 and len(others) == 1
    assert (others[0].x0, others[0].y0) == (np.nonzero(painted)[1].min(),
                                            np.nonzero(painted)[0].min())


def test_another_objects_positive_click_is_a_negative_click_for_a_box(
        tmp_path, make_tiny_predictor, monkeypatch):
    import lgdk.prompts.learned as learned

    seen = []
    real = learned.learned_probability

    def spy(net, frame, prompt, others=()):
        seen.append((prompt.object_id, list(prompt.clicks)))
        return real(net, frame, prompt, others)

    monkeypatch.setattr(learned, "learned_probability", spy)
    c = clip()
    s = Session(tmp_path / "s", make_tiny_predictor)
    s.load(iter(c.frames), fps=10)
    s.box(0, 2, tight_box(c.labels[0], 2))
    s.click(0, 2, 70, 40, True)
    seen.clear()
    s.box(0, 1, tight_box(c.labels[0], 1))
    (object_id, clicks), = seen
    assert object_id == 1 and [(k.x, k.y, k.positive) for k in clicks] == [(70, 40, False)]


def test_propagate_then_correct_a_frame_and_propagate_again_from_there(
        tmp_path, make_tiny_predictor):
    s = painted_and_propagated(tmp_path, make_tiny_predictor, 0)
    first_run = [s.labels(i).copy() for i in range(8)]
    s.paint(5, 2, [(70, 40)], radius=8)  # a second object appears on frame 5
    corrected = s.labels(5).copy()
    assert (corrected == 2).any() and s.edited == {5}
    s.propagate()
    wait(s)
    assert s.progress.total == 5  # frames 3-7: nearer to frame 5 than to frame 0
    assert all(np.array_equal(s.labels(i), first_run[i]) for i in range(3))  # earlier kept
    assert all((s.labels(i) == 2).any() for i in range(3, 8))
    assert np.array_equal(read_mask(tmp_path / "s/results/00005.png"), corrected)
    names = sorted(zipfile.ZipFile(s.masks_zip()).namelist())
    assert names == [f"{i:05d}.png" for i in range(8)]


def test_cancel_stops_and_keeps_the_frames_done(tmp_path, tiny_model):
    from lgdk.config import InferenceConfig
    from lgdk.infer.predictor import Predictor

    gate = threading.Event()

    class Gated(Predictor):  # waits at frame 3 until the test has cancelled
        def step(self, frame, mask=None):
            if self.frame_index == 2:
                gate.wait(30)
            return super().step(frame, mask)

    c = clip()
    s = session_on(tmp_path, lambda: Gated(tiny_model, InferenceConfig(size=0)), c)
    s.paint(0, 1, [(20, 20)], radius=6)
    s.propagate()
    with pytest.raises(SessionError, match="propagation is running"):
        s.paint(0, 1, [(30, 30)], radius=3)
    for _ in range(600):  # frames 0-2 done, frame 3 waiting at the gate
        if s.progress.done == 3:
            break
        time.sleep(0.05)
    s.cancel()
    gate.set()
    wait(s)
    assert s.progress.cancelled and s.progress.done == 4 < s.progress.total
    assert sorted(p.name for p in (tmp_path / "s/results").iterdir()) == [
        f"{i:05d}.png" for i in range(4)]


def test_two_sessions_keep_their_videos_and_results_apart(tmp_path, make_tiny_predictor):
    a, b = clip(seed=1), clip(seed=2)
    sa = session_on(tmp_path, make_tiny_predictor, a, "a")
    sb = session_on(tmp_path, make_tiny_predictor, b, "b")
    sa.paint(0, 1, [(20, 20)], radius=10)
    sb.paint(0, 3, [(60, 40)], radius=12)
    sa.propagate()
    sb.propagate()  # both at once
    wait(sa)
    wait(sb)
    assert np.array_equal(sa.frame(4), a.frames[4])  # exactly, as the model sees it
    assert np.abs(np.asarray(Image.open(sa.frames[4])).astype(int) - a.frames[4]).mean() < 5
    assert not np.array_equal(sa.frame(4), sb.frame(4))
    assert set(np.unique(sa.labels(7))) <= {0, 1} and set(np.unique(sb.labels(7))) <= {0, 3}
    assert sa.object_ids() == [1] and sb.object_ids() == [3]


def test_bad_requests_are_clear_errors(tmp_path, make_tiny_predictor):
    c = clip()
    s = session_on(tmp_path, make_tiny_predictor, c)
    with pytest.raises(SessionError, match="no object yet"):
        s.propagate()
    with pytest.raises(PromptError):
        s.click(0, 1, 10, 10, positive=False)  # a negative click alone starts nothing
    with pytest.raises(SessionError, match="frame 99 does not exist"):
        s.box(99, 1, (1, 1, 5, 5))
    short = Session(tmp_path / "short", make_tiny_predictor, AppSettings(max_frames=3))
    with pytest.raises(VideoError, match="more than 3 frames"):
        short.load(iter(c.frames), fps=10)


def test_uploaded_zip_of_frames_loads_in_order_and_never_writes_outside(tmp_path,
                                                                       make_tiny_predictor):
    c = clip(frames=3)
    upload = tmp_path / "up" / "upload.bin"
    upload.parent.mkdir()
    with zipfile.ZipFile(upload, "w") as archive:
        for i, frame in enumerate(c.frames):
            name = f"../../escape/frame_{[10, 2, 1][i]}.png"  # natural order: 1, 2, 10
            Image.fromarray(frame).save(tmp_path / "f.png")
            archive.write(tmp_path / "f.png", name)
        archive.writestr("notes.txt", "not a frame")
    s = Session(tmp_path / "s", make_tiny_predictor)
    load_upload(s, upload, "frames.zip")
    assert len(s.frames) == 3 and s.size == (64, 96)
    errors = [np.abs(s.frame(0).astype(int) - f).mean() for f in c.frames]
    assert int(np.argmin(errors)) == 2 and errors[2] < 5  # frame_1 first (JPEG)
    assert not (tmp_path.parent / "escape").exists() and not (tmp_path / "escape").exists()
    (tmp_path / "bad.bin").write_bytes(b"not a zip")
    with pytest.raises(VideoError, match="not a readable zip"):
        load_upload(s, tmp_path / "bad.bin", "frames.zip")


def test_the_app_the_cli_and_the_python_api_give_the_same_masks(tmp_path, tiny_checkpoint):
    """One video job behind all three: the same frames, box and model give the same
    masks, on every frame (frames before the prompted one included)."""
    from lgdk.cli import main
    from lgdk.infer.loading import load_models
    from lgdk.infer.tta import make_predictor
    from lgdk.prompts.spec import Box, ObjectPrompt
    from lgdk.video.prompted import segment_from_prompts
    from lgdk.video.video_io import open_frames

    c = clip(frames=6)
    (tmp_path / "frames").mkdir()
    for i, frame in enumerate(c.frames):
        Image.fromarray(frame).save(tmp_path / "frames" / f"{i:05d}.png")
    box = tight_box(c.labels[2], 1)
    assert main(["segment", str(tmp_path / "frames"), "--box", ",".join(map(str, box)),
                 "--prompt-frame", "2", "--prompt-method", "grabcut", "--checkpoint",
                 str(tiny_checkpoint), "--size", "0", "--out", str(tmp_path / "cli"),
                 "--no-progress"]) == 0
    models, settings = load_models([str(tiny_checkpoint)], "cpu", size=0)
    make = lambda: make_predictor(models, settings, "cpu")  # noqa: E731
    segment_from_prompts(make, tmp_path / "frames", [ObjectPrompt(1, box=Box(*box))],
                         tmp_path / "api", 2, "grabcut", progress=False)
    s = Session(tmp_path / "app", make, AppSettings(prompt_method="grabcut"))
    s.load_source(open_frames(tmp_path / "frames"))
    s.box(2, 1, box)
    s.propagate()
    wait(s)
    for i in range(6):
        cli = read_mask(tmp_path / "cli" / f"{i:05d}.png")
        assert np.array_equal(cli, read_mask(tmp_path / "api" / f"{i:05d}.png")), i
        assert np.array_equal(cli, s.labels(i)), i
    assert read_mask(tmp_path / "cli" / "00000.png").any()  # filled backwards


def test_a_box_on_a_middle_frame_fills_the_frames_before_it(tmp_path, make_tiny_predictor):
    s = painted_and_propagated(tmp_path, make_tiny_predictor, 4)
    assert all(s.labels(i) is not None and (s.labels(i) == 1).any() for i in range(4))
    s.clear(4)  # nothing given any more: no result stands
    assert all(s.labels(i) is None for i in range(8))
    s.paint(6, 1, [(20, 20)], radius=6)
    s.propagate("forward")
    wait(s)
    assert s.progress.total == 2 and all(s.labels(i) is None for i in range(6))


def test_downloads_carry_the_uploads_rate_and_sound_and_prores_keeps_alpha(
        tmp_path, make_tiny_predictor):
    from tests.video.test_writer import RATE, probe, prores_alpha, source_with_sound

    src = source_with_sound(tmp_path / "clip.mp4")
    s = Session(tmp_path / "s", make_tiny_predictor, AppSettings(prompt_method="grabcut"))
    load_upload(s, src, "clip.mp4")
    s.paint(0, 1, [(30, 20)], radius=8)
    s.propagate()
    wait(s)
    for kind, codec in (("cutout_mov", "prores"), ("overlay", "h264"), ("cutout", "vp9")):
        info = probe(s.video(kind))
        assert info["codec"] == codec and info["frames"] == 24 and info["rate"] == RATE
        assert info["audio"] in ("aac", "opus") and info["loudness"] > 0.05
    alpha = np.stack(prores_alpha(s.video("cutout_mov")))
    masks = np.stack([s.labels(i) > 0 for i in range(24)])
    assert ((alpha > 127) == masks).mean() > 0.97


def test_each_propagated_frame_has_a_doubt_and_a_given_frame_is_sure(
        tmp_path, make_tiny_predictor):
    s = painted_and_propagated(tmp_path, make_tiny_predictor, 0)
    doubts = s.doubts()
    assert [d.frame for d in doubts] == list(range(8))
    assert doubts[0].why == "given" and doubts[0].doubt == 0.0
    assert all(d.object_id == 1 and 0.0 <= d.doubt <= 1.0 for d in doubts[1:])
    s.paint(4, 1, [(30, 30)], radius=5)  # a correction: sure from now on
    assert s.doubts()[4].why == "given"


def test_a_whole_mask_given_replaces_the_frames_prompts_and_void_is_background(
        tmp_path, make_tiny_predictor):
    s = session_on(tmp_path, make_tiny_predictor, clip())
    s.box(2, 1, (10, 10, 40, 40))
    mask = np.zeros((64, 96), np.uint8)
    mask[5:20, 5:20], mask[30:40, 60:80], mask[0, :] = 1, 3, 255
    s.give_mask(2, mask)
    assert np.array_equal(s.labels(2), np.where(mask == 255, 0, mask))
    assert not s.prompts and s.edited == {2} and s.object_ids() == [1, 3]
    with pytest.raises(SessionError, match="the mask is 10x10 but the frames are 96x64"):
        s.give_mask(2, np.zeros((10, 10), np.uint8))
    limited = Session(tmp_path / "t", make_tiny_predictor, AppSettings(max_objects=1))
    limited.load(iter(clip().frames), fps=10)
    with pytest.raises(SessionError, match="over this app's limit of 1"):
        limited.give_mask(0, mask)


def test_a_click_on_a_propagated_mask_changes_it_only_around_the_click(
        tmp_path, make_tiny_predictor, monkeypatch):
    """The prompt network's mask from the clicks (here a fixed one) decides the piece a
    click adds or removes; the rest of the propagated mask stays."""
    from lgdk.app import session as session_module
    from lgdk.data.masks import write_mask

    s = painted_and_propagated(tmp_path, make_tiny_predictor, 0)
    result = np.zeros((64, 96), np.uint8)
    result[10:40, 10:40] = 1  # what the propagation gave frame 5
    write_mask(tmp_path / "s/results/00005.png", result)
    proposal = np.zeros((64, 96), np.uint8)
    proposal[10:40, 10:40] = 1
    proposal[42:55, 42:60] = 1  # a missed piece, beside it
    proposal[20:30, 20:30] = 0  # a hole the propagation filled
    asked = []
    monkeypatch.setattr(session_module, "mask_from_object_prompts",
                        lambda frame, prompts, *a, **k: (asked.append(prompts), proposal)[1])
    s.click(5, 1, 50.5, 48.5, True)
    after = s.labels(5)
    assert (after[10:40, 10:40] == 1).all() and (after[42:55, 42:60] == 1).all()
    assert 5 in s.given and s.edited == {5}
    s.click(5, 1, 25.5, 25.5, False)
    after = s.labels(5)
    assert (after[20:30, 20:30] == 0).all() and (after[42:55, 42:60] == 1).all()
    assert after[10:40, 10:40].sum() == 900 - 100
    box = asked[-1][0].box  # the prompt network saw the mask's box and the clicks
    assert box.x0 < 10 and box.x1 > 59 and len(asked[-1][0].clicks) == 2


def test_a_lone_negative_click_on_a_propagated_mask_removes_a_piece(
        tmp_path, make_tiny_predictor):
    from lgdk.data.masks import write_mask

    s = painted_and_propagated(tmp_path, make_tiny_predictor, 0)
    result = np.zeros((64, 96), np.uint8)
    result[10:40, 10:40] = 1
    write_mask(tmp_path / "s/results/00005.png", result)
    s.click(5, 1, 25.5, 25.5, False)
    after = s.labels(5)
    assert after[25, 25] == 0 and (after == 1).sum() < 900
    with pytest.raises(PromptError, match="outside"):
        s.click(5, 1, float("nan"), 3.0, True)


def two_objects_propagated(tmp_path, make_predictor):
    """A session whose frame 0 is given objects 1 and 2 whole, propagated; the mask."""
    s = session_on(tmp_path, make_predictor, clip())
    first = np.zeros((64, 96), np.uint8)
    first[5:20, 5:20], first[30:50, 50:80] = 1, 2
    s.give_mask(0, first)
    s.propagate()
    wait(s)
    return s, first


def test_a_corrected_frame_vouches_only_for_the_objects_edited_there(
        tmp_path, make_tiny_predictor, monkeypatch):
    """Propagation takes a corrected frame's other objects (the results it showed) as
    void: predicted again from memory, not frozen as given."""
    from lgdk.data.masks import write_mask
    from lgdk.video.job import VideoJob

    s, first = two_objects_propagated(tmp_path, make_tiny_predictor)
    result = np.zeros((64, 96), np.uint8)
    result[10:30, 10:30], result[35:55, 60:90] = 1, 2
    write_mask(tmp_path / "s/results/00005.png", result)
    s.paint(5, 1, [(70, 10)], radius=4)
    given = {}
    monkeypatch.setattr(VideoJob, "give", lambda job, i, mask: given.__setitem__(i, mask))
    s.propagate()
    wait(s)
    assert np.array_equal(given[0], first)  # a whole mask given: every object vouched
    assert (given[5][10:30, 10:30] == 1).all() and given[5][10, 70] == 1
    assert (given[5][35:55, 60:90] == 255).all()  # object 2: not edited on frame 5
    assert (s.labels(5)[35:55, 60:90] == 2).all()  # shown as it was


def test_a_correction_of_one_object_leaves_the_others_results_as_they_were(
        tmp_path, make_tiny_predictor):
    s, _ = two_objects_propagated(tmp_path, make_tiny_predictor)
    before = [s.labels(i).copy() for i in range(8)]
    s.paint(5, 1, [(70, 10)], radius=4)
    s.propagate()
    wait(s)
    for i in range(3, 8):  # frame 5's reach
        now = s.labels(i)
        kept = (before[i] == 2) & (now != 1)
        assert (now[kept] == 2).all() and not ((now == 2) & (before[i] != 2)).any()
    assert all(np.array_equal(s.labels(i), before[i]) for i in range(3))


def test_a_positive_click_far_from_the_propagated_mask_starts_the_object_there(
        tmp_path, make_tiny_predictor, monkeypatch):
    from lgdk.app import session as session_module
    from lgdk.data.masks import write_mask

    s = painted_and_propagated(tmp_path, make_tiny_predictor, 0)
    result = np.zeros((64, 96), np.uint8)
    result[5:15, 5:15] = 1  # astray: the object is at the bottom right
    write_mask(tmp_path / "s/results/00005.png", result)
    there = np.zeros((64, 96), np.uint8)
    there[40:60, 70:90] = 1
    asked = []
    monkeypatch.setattr(session_module, "mask_from_object_prompts",
                        lambda frame, prompts, *a, **k: (asked.append(prompts), there)[1])
    s.click(5, 1, 80.5, 50.5, True)
    assert np.array_equal(s.labels(5), there)
    assert asked[0][0].box is None and len(asked[0][0].clicks) == 1
