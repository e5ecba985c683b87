"""Scenes for the prompt network's training: pasted objects with occlusion order, small
objects, and the boxes of the other objects given as a prompt map."""

import numpy as np
import pytest
from PIL import Image

from lgdk.prompts.spec import tight_box
from lgdk.train.prompt_samples import PromptDataset, PromptSampling, list_objects
from lgdk.train.prompt_scenes import (
    Scene,
    box_ring,
    composite,
    cut_object,
    paste_large_behind,
    paste_near,
    shrunk,
)
from tests.prompts.test_learned import SMALL
from tests.prompts.test_prompts import scene as two_objects


def disc_scene() -> Scene:
    frame, disc, square = two_objects()
    return Scene(frame, disc.astype(np.uint8) + 2 * square.astype(np.uint8), target=1)


def pasted(in_front: bool) -> tuple[Scene, Scene]:
    before = disc_scene()
    pixels, mask = cut_object(before.image, before.mask)  # a copy of the object itself
    for seed in range(50):
        after = paste_near(np.random.default_rng(seed), before, pixels, mask, in_front)
        if after is not None and (after.ids == 3).any():
            return before, after
    raise AssertionError("no paste in 50 tries")


def test_a_copy_pasted_in_front_hides_part_of_the_object():
    before, after = pasted(in_front=True)
    hidden = before.mask & (after.ids == 3)
    assert hidden.any() and after.mask.sum() == before.mask.sum() - hidden.sum()
    assert after.mask.sum() >= 0.3 * before.mask.sum()
    assert (after.image[after.ids == 3] == before.image[before.mask][0]).all(axis=1).mean() > 0.8


def test_a_copy_pasted_behind_leaves_the_object_whole():
    before, after = pasted(in_front=False)
    assert (after.mask == before.mask).all()
    assert not (after.mask & (after.ids == 3)).any()


def test_a_larger_object_pasted_behind_surrounds_the_object_and_leaves_it_whole():
    before = disc_scene()
    square = np.ones((20, 20), bool)  # a plain square, pasted 1.6-3.5 times the disc's box
    pixels = np.full((20, 20, 3), 200, np.uint8)
    after = next(a for seed in range(50) if (a := paste_large_behind(
        np.random.default_rng(seed), before, pixels, square)) is not None)
    new = after.ids == 3
    assert (after.mask == before.mask).all() and not (new & before.mask).any()
    assert ((after.ids == 2) == (before.ids == 2)).all()  # behind the other objects too
    box, outer = tight_box(before.mask), tight_box(new)
    assert (outer.x1 - outer.x0) > 1.3 * (box.x1 - box.x0)  # larger, clipped by the frame
    ring = box_ring(box, before.ids.shape)
    assert (new & ring).sum() >= 0.3 * ring.sum()
    assert (after.image[new] == 200).all()
    assert paste_large_behind(np.random.default_rng(0), before, pixels, square,
                              scale=(0.2, 0.3)) is None  # too small to surround it


def test_a_feathered_paste_blends_only_its_own_edge():
    image = np.zeros((40, 40, 3), np.uint8)
    layer = np.full((40, 40, 3), 200, np.uint8)
    where = np.zeros((40, 40), bool)
    where[10:30, 10:30] = True
    hard = composite(image, layer, where, 0.0)
    assert (hard[where] == 200).all() and (hard[~where] == 0).all()
    soft = composite(image, layer, where, 1.5)
    assert (soft[~where] == 0).all()  # the layer never shows outside its region
    assert (soft[15:25, 15:25] == 200).all()  # opaque inside
    edge = soft[10, 10:30, 0]  # the top row: blended with what lies under it
    assert 0 < edge.min() and edge.max() < 200
    assert soft[10, 20, 0] < soft[12, 20, 0] < soft[14, 20, 0] <= 200  # ramping inwards


def test_feathering_keeps_the_masks_and_draws_nothing_when_off():
    before = disc_scene()
    pixels, mask = cut_object(before.image, before.mask)
    hard = paste_near(np.random.default_rng(4), before, pixels, mask, True)
    off = paste_near(np.random.default_rng(4), before, pixels, mask, True, feather=0.0)
    soft = paste_near(np.random.default_rng(4), before, pixels, mask, True, feather=0.3)
    assert hard is not None and (off.image == hard.image).all()
    assert (soft.ids == hard.ids).all()  # the same object ids: only the edge's colours
    assert (soft.image != hard.image).any()


def test_shrinking_makes_the_object_that_small():
    small = shrunk(disc_scene(), 20)
    box = tight_box(small.mask)
    assert max(box.x1 - box.x0, box.y1 - box.y0) == pytest.approx(20, abs=1.5)
    assert small.image.shape[:2] == small.ids.shape
    assert shrunk(disc_scene(), 500).ids.shape == (120, 160)  # never made larger


def test_samples_carry_the_other_objects_boxes_and_exclude_what_covers_the_object(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    s = disc_scene()
    Image.fromarray(s.image).save(tmp_path / "images" / "a.png")
    Image.fromarray(s.ids).save(tmp_path / "masks" / "a.png")
    sampling = PromptSampling(others_given=1.0, paste=1.0, look_alike=1.0, small=0.0,
                              box_jitter=0.0, clicks_only=0.0, random_clicks=0.0)
    data = PromptDataset(list_objects([tmp_path]), SMALL, sampling)
    seen_other = 0
    for _ in range(20):
        _, maps, target = data[0]
        seen_other += bool(maps[3].sum())
        assert (maps[0] >= target[0]).all()  # the box still holds the visible object
    assert seen_other >= 10  # a pasted copy sits next to the object and its box is given


def test_a_click_on_another_object_is_negative_and_inside_it():
    from lgdk.prompts.crop import frame_window
    from lgdk.train.prompt_samples import other_object_click

    s = disc_scene()
    clicks = other_object_click(np.random.default_rng(0), s, frame_window(*s.ids.shape))
    assert len(clicks) == 1 and not clicks[0].positive
    assert s.ids[int(clicks[0].y), int(clicks[0].x)] == 2  # on the square, not the disc
    far = frame_window(10, 10)  # a window that holds no other object
    assert other_object_click(np.random.default_rng(0), s, far) == []
