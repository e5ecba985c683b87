import numpy as np
import pytest
import torch
from scipy import ndimage

from lgdk.cli import main
from lgdk.config import InferenceConfig
from lgdk.data.masks import read_mask
from lgdk.eval.metrics import jaccard
from lgdk.infer.predictor import Predictor, Streaming
from lgdk.prompts import DEFAULT_METHOD, mask_from_object_prompts, masks_from_prompts
from lgdk.prompts.refine import CLICK_SHARE, pin_clicks, refine_with_network, too_small
from lgdk.prompts.spec import (
    Box,
    Click,
    ObjectPrompt,
    PromptError,
    box_region,
    check_prompts,
    group_prompts,
    tight_box,
)
from tests.conftest import write_clip


def scene(height=120, width=160, seed=0):
    """Two flat-coloured objects on a noisy green background, and their truth."""
    rng = np.random.default_rng(seed)
    frame = np.clip(rng.normal((40, 140, 60), 12, (height, width, 3)), 0, 255).astype(np.uint8)
    yy, xx = np.mgrid[:height, :width]
    disc = (yy - 60) ** 2 + (xx - 50) ** 2 <= 25 ** 2
    square = (yy >= 30) & (yy < 90) & (xx >= 100) & (xx < 140)
    frame[disc] = (220, 40, 40)
    frame[square] = (40, 40, 220)
    return frame, disc, square


def test_command_line_order_gives_objects_and_their_clicks():
    prompts = group_prompts([("box", "1,2,30,40"), ("point", "5,5,-"), ("box", "50,50,60,60"),
                             ("point", "55,55"), ("point", "9,9,+,7")])
    assert [p.object_id for p in prompts] == [1, 2, 7]
    assert prompts[0].box.x1 == 30 and [c.positive for c in prompts[0].clicks] == [False]
    assert len(prompts[1].clicks) == 1 and prompts[2].box is None
    only_clicks = group_prompts([("point", "5,5"), ("point", "6,6,-")])
    assert len(only_clicks) == 1 and len(only_clicks[0].clicks) == 2


@pytest.mark.parametrize("items, message", [
    ([("box", "0,0,500,10")], "outside the 160x120 frame"),
    ([("box", "10,10,10,20")], "has no area"),
    ([("point", "5,5,-")], "only negative clicks"),
    ([("point", "200,5")], "click 200,5 is outside"),
    ([("box", "1,1,5,5"), ("box", "1,1,6,6"), ("box", "1,1,7,7")], "exceed the limit of 2"),
    ([], "no prompt given"),
])
def test_bad_prompts_are_named(items, message):
    with pytest.raises(PromptError, match=message):
        check_prompts(group_prompts(items), 120, 160, max_objects=2)


def test_unparseable_prompts_are_named():
    with pytest.raises(PromptError, match="--box must be X0,Y0,X1,Y1"):
        group_prompts([("box", "1,2,3")])
    with pytest.raises(PromptError, match="--point must be X,Y"):
        group_prompts([("point", "1,2,x")])


def test_grabcut_from_tight_boxes_finds_both_objects():
    frame, disc, square = scene()
    ids = masks_from_prompts(frame, boxes=[(25, 35, 76, 86), (100, 30, 140, 90)],
                             method="grabcut")
    assert ids.shape == (120, 160) and ids.dtype == np.uint8
    assert jaccard(ids == 1, disc) > 0.9 and jaccard(ids == 2, square) > 0.9


def test_grabcut_from_one_positive_click():
    frame, disc, _ = scene()
    ids = masks_from_prompts(frame, points=[(50, 60)], method="grabcut")
    assert jaccard(ids == 1, disc) > 0.8


def test_a_negative_click_takes_an_object_out_of_a_box():
    frame, disc, square = scene()
    loose = masks_from_prompts(frame, boxes=[(20, 25, 145, 95)], method="grabcut")
    assert (loose[square] == 1).mean() > 0.5  # both objects inside one loose box
    fixed = masks_from_prompts(frame, boxes=[(20, 25, 145, 95)], points=[(120, 60, False)],
                               method="grabcut")
    assert (fixed[square] == 1).mean() < 0.2 and jaccard(fixed == 1, disc) > 0.8


def test_network_method_refines_with_a_given_predictor(tiny_model):
    frame, disc, square = scene()
    ids = masks_from_prompts(frame, boxes=[(25, 35, 76, 86), (100, 30, 140, 90)],
                             method="network",
                             make_predictor=lambda: Predictor(tiny_model, InferenceConfig(size=0)))
    assert set(np.unique(ids).tolist()) <= {0, 1, 2} and (ids == 1).any() and (ids == 2).any()
    assert not (ids[:, :20] == 1).any()  # kept inside object 1's box


class Growing(Streaming):
    """A stand-in for the segmentation network at processing side 240 whose prediction of
    a frame is the mask it was given, each object grown by 4 pixels."""

    processing_side = 240

    def predict(self, frame):
        grown = ndimage.grey_dilation(self.given, size=9)
        return torch.from_numpy(np.stack([grown == i for i in [0, *self.object_ids]])).float()

    def step(self, frame, mask=None):
        self.given = mask
        return super().step(frame, mask)

    def memorize(self, probs, given=False):
        pass


def test_objects_too_small_for_the_network_keep_their_coarse_mask():
    frame, disc, square = scene()
    coarse = np.zeros(frame.shape[:2], np.uint8)
    coarse[disc] = 1
    coarse[55:60, 115:120] = 2  # 5x5 pixels: under a third of a stride-16 cell
    prompts = [ObjectPrompt(1, box=tight_box(disc)), ObjectPrompt(2, box=Box(110, 50, 125, 65))]
    assert too_small(coarse, prompts, 0) == [1, 2]  # at the frame's own size: the disc is
    assert too_small(coarse, prompts, 240) == [2]  # 44 pixels across, 4 cells need 64
    assert too_small(coarse, prompts, 120 * 13) == []  # 13 times larger: 65 pixels across
    assert too_small(coarse, prompts, None) == []  # size unknown: no object is
    refined = refine_with_network(lambda: Growing(8), frame, coarse, prompts, radius=1,
                                  rounds=1)
    assert np.array_equal(refined == 2, coarse == 2)  # kept as it was
    assert (refined == 1).sum() > disc.sum()  # refined (grown), inside its box
    assert np.array_equal(refined == 1, ndimage.binary_dilation(disc, np.ones((9, 9)))
                          & box_region(prompts[0].box, *disc.shape))


def test_a_click_on_a_small_object_pins_a_disc_of_its_size():
    ids = np.zeros((200, 300), np.uint8)
    ids[20:120, 20:120] = 1  # 100 pixels across
    ids[150:160, 200:210] = 2  # 10 pixels across
    prompts = [ObjectPrompt(1, box=Box(20, 20, 120, 120), clicks=[Click(70.5, 130.5)]),
               ObjectPrompt(2, box=Box(200, 150, 210, 160), clicks=[Click(205.5, 165.5)])]
    pinned = ids.copy()
    pin_clicks(pinned, prompts, radius=8)
    grown = [(pinned == o).sum() - (ids == o).sum() for o in (1, 2)]
    assert 15 <= (pinned[121:, 70] == 1).sum() <= 17  # the large object: the frame's radius
    radius = CLICK_SHARE * 10
    assert 0 < grown[1] <= np.pi * (radius + 1) ** 2 < 0.2 * (ids == 2).sum()
    assert grown[0] > 10 * grown[1]
    unboxed = [ObjectPrompt(2, clicks=[Click(205.5, 165.5)])]  # its extent from its mask
    again = ids.copy()
    pin_clicks(again, unboxed, radius=8)
    assert np.array_equal(again == 2, pinned == 2)


def test_the_refinement_sees_the_other_objects_and_returns_the_prompted_ones():
    frame, disc, square = scene()
    others = np.where(square, 2, 0).astype(np.uint8)
    others[disc] = 1  # object 1's mask before its new prompt: not kept
    made = []

    def make():
        made.append(Growing(8))
        return made[-1]

    ids = mask_from_object_prompts(frame, [ObjectPrompt(1, box=Box(25, 35, 76, 86))],
                                   make_predictor=make, others=others)
    assert set(np.unique(made[0].given).tolist()) == {0, 1, 2}  # both, in view
    assert (made[0].given[square] == 2).all()
    assert set(np.unique(ids).tolist()) == {0, 1} and not (ids[square] == 1).any()
    with pytest.raises(PromptError, match="frame's size"):
        mask_from_object_prompts(frame, [ObjectPrompt(1, box=Box(25, 35, 76, 86))],
                                 make_predictor=make, others=others[:50])


def test_the_default_method_refines_the_prompt_networks_mask(monkeypatch, tiny_model):
    import lgdk.prompts.refine as refine

    seen = []
    real = refine.refine_with_network

    def spy(make, frame, ids, prompts, radius, rounds):
        seen.append((ids.copy(), rounds))
        return real(make, frame, ids, prompts, radius, rounds)

    monkeypatch.setattr(refine, "refine_with_network", spy)
    frame, disc, square = scene()
    make = lambda: Predictor(tiny_model, InferenceConfig(size=0))  # noqa: E731
    ids = masks_from_prompts(frame, boxes=[(25, 35, 76, 86)], make_predictor=make)
    coarse = masks_from_prompts(frame, boxes=[(25, 35, 76, 86)], method="learned")
    assert DEFAULT_METHOD == "learned+network" and len(seen) == 1
    assert np.array_equal(seen[0][0], coarse) and seen[0][1] == 1
    assert (ids == 1).any() and not (ids[:, 80:] == 1).any()


def test_segment_from_a_box_on_a_later_frame(tmp_path, tiny_checkpoint, capsys):
    clip = write_clip(tmp_path, num_frames=4, height=64, width=96)
    ys, xs = np.nonzero(clip.labels[1] == 1)
    box = f"{xs.min()},{ys.min()},{xs.max() + 1},{ys.max() + 1}"
    code = main(["segment", str(tmp_path / "frames"), "--box", box, "--prompt-frame", "1",
                 "--prompt-method", "grabcut", "--out", str(tmp_path / "out"), "--checkpoint",
                 str(tiny_checkpoint), "--size", "0", "--no-progress"])
    assert code == 0 and "prompt_mask.png" in capsys.readouterr().out
    prompt = read_mask(tmp_path / "out" / "prompt_mask.png")
    assert set(np.unique(prompt).tolist()) == {0, 1}
    assert read_mask(tmp_path / "out" / "00000.png").any()  # filled backwards
    assert np.array_equal(read_mask(tmp_path / "out" / "00001.png"), prompt)
    assert len(list((tmp_path / "out").glob("0*.png"))) == 4


def test_the_prompts_refinement_does_not_adapt(tmp_path, tiny_checkpoint, monkeypatch):
    import lgdk.infer.adapt as adapt

    adapted = []
    monkeypatch.setattr(adapt, "adapt_model", lambda model, examples, *a, **k:
                        adapted.append(len(examples)))
    clip = write_clip(tmp_path, num_frames=3, height=64, width=96)
    ys, xs = np.nonzero(clip.labels[0] == 1)
    code = main(["segment", str(tmp_path / "frames"), "--box",
                 f"{xs.min()},{ys.min()},{xs.max() + 1},{ys.max() + 1}", "--adapt", "2",
                 "--out", str(tmp_path / "out"), "--checkpoint", str(tiny_checkpoint),
                 "--size", "0", "--no-progress"])
    assert code == 0 and (tmp_path / "out" / "prompt_mask.png").exists()
    assert adapted == [1]  # once, on the refined mask of the one pass; not while refining


def test_segment_refuses_mask_and_box_together(tmp_path, tiny_checkpoint, capsys):
    write_clip(tmp_path, num_frames=2, height=32, width=48)
    code = main(["segment", str(tmp_path / "frames"), "--mask", str(tmp_path / "gt" / "00000.png"),
                 "--box", "1,1,10,10", "--out", str(tmp_path / "out")])
    assert code == 2 and "not both" in capsys.readouterr().err
