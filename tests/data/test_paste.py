import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from lgdk.config import DataConfig
from lgdk.data.clips import ClipDataset, PasteSource
from lgdk.data.paste import Cutout, compose_clip, cut_objects, paste, pick_cutouts, render_cutout
from lgdk.errors import UserError

COLOURS = {1: (250, 20, 20), 2: (20, 250, 20), 3: (20, 20, 250)}


def disc_cutout(colour, size=30) -> Cutout:
    yy, xx = np.mgrid[:size, :size]
    alpha = (yy - size / 2 + 0.5) ** 2 + (xx - size / 2 + 0.5) ** 2 <= (size / 2 - 1) ** 2
    return Cutout(np.full((size, size, 3), colour, np.uint8), alpha)


def test_cut_objects_gives_one_cutout_per_instance_and_skips_tiny_ones():
    image = np.random.default_rng(0).integers(0, 255, (40, 60, 3), dtype=np.uint8)
    label = np.zeros((40, 60), np.uint8)
    label[5:15, 5:25] = 1  # 200 pixels
    label[20:38, 40:50] = 2  # 180 pixels
    label[0:3, 50:53] = 3  # 9 pixels: too small to paste
    cutouts = cut_objects(image, label)
    assert [c.alpha.shape for c in cutouts] == [(10, 20), (18, 10)]
    assert all(c.alpha.all() for c in cutouts)
    assert np.array_equal(cutouts[1].rgb, image[20:38, 40:50])


def test_paste_front_object_hides_the_one_behind():
    frame = np.zeros((50, 50, 3), np.float32)
    label = np.zeros((50, 50), np.uint8)
    for object_id, centre in ((1, (20, 25)), (2, (30, 25))):  # 2 is pasted last: in front
        rgb, alpha, hard = render_cutout(disc_cutout(COLOURS[object_id]), 24, 0.0, False)
        paste(frame, label, rgb, alpha, hard, centre, object_id)
    assert label[25, 25] == 2 and tuple(frame[25, 25]) == COLOURS[2]  # the overlap
    assert label[25, 12] == 1 and tuple(frame[25, 12]) == COLOURS[1]  # 1's visible part
    assert label[2, 2] == 0 and not frame[2, 2].any()


def test_paste_clips_at_the_frame_border():
    frame = np.zeros((20, 20, 3), np.float32)
    label = np.zeros((20, 20), np.uint8)
    rgb, alpha, hard = render_cutout(disc_cutout(COLOURS[1]), 16, 0.0, False)
    paste(frame, label, rgb, alpha, hard, (0, 0), 1)  # mostly outside
    paste(frame, label, rgb, alpha, hard, (100, 100), 1)  # wholly outside
    assert 0 < (label == 1).sum() < hard.sum() and label[0, 0] == 1


def test_composed_masks_are_what_is_visible_and_ids_never_swap():
    for seed in range(6):
        rng = np.random.default_rng(seed)
        frames = np.zeros((4, 64, 64, 3), np.uint8)
        labels = np.zeros((4, 64, 64), np.uint8)
        cutouts = [disc_cutout(COLOURS[k]) for k in (1, 2, 3)]
        out_frames, out_labels = compose_clip(rng, frames, labels, cutouts, same_path_prob=1.0)
        assert out_frames.shape == (4, 64, 64, 3) and out_labels.dtype == np.uint8
        for frame, label in zip(out_frames, out_labels):
            palette = np.array([(0, 0, 0), *COLOURS.values()], np.float32)
            nearest = np.linalg.norm(frame[..., None, :] - palette, axis=-1).argmin(-1)
            for object_id, colour in COLOURS.items():
                inside = ndimage.binary_erosion(label == object_id, iterations=1)
                # every pixel labelled k (away from its soft edge) shows object k's colour:
                # hidden parts are cut from the masks, and ids keep their objects
                assert (nearest[inside] == object_id).all(), (seed, object_id)
                # and every pixel showing object k's colour is labelled k
                shows = (frame == colour).all(axis=-1)
                assert (label[shows] == object_id).all(), (seed, object_id)
        assert set(np.unique(out_labels)) <= {0, 1, 2, 3}


def test_background_objects_keep_their_ids_and_pasted_ones_follow():
    rng = np.random.default_rng(1)
    frames = np.zeros((3, 48, 48, 3), np.uint8)
    labels = np.zeros((3, 48, 48), np.uint8)
    labels[:, :4, :4] = 1  # the background still's own object, in a corner
    _, out = compose_clip(rng, frames, labels, [disc_cutout(COLOURS[2])])
    assert out[0, 0, 0] == 1 and set(np.unique(out)) <= {0, 1, 2} and (out == 2).any()


def test_pick_cutouts_draws_count_objects_and_skips_empty_stills():
    stills = [[], [disc_cutout(COLOURS[1])], [disc_cutout(COLOURS[2]), disc_cutout(COLOURS[3])]]
    for seed in range(10):
        picked = pick_cutouts(np.random.default_rng(seed), stills.__getitem__, 3, 3)
        assert 3 <= len(picked) <= 4  # a twin may be added on top of the last draw


def _still_set(root, count=3):
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(
            root / "images" / f"{i}.webp")
        mask = np.zeros((60, 80), np.uint8)
        mask[10:40, 10:30] = 1
        mask[20:50, 45:70] = 2  # instance ids, as Penn-Fudan's
        Image.fromarray(mask, "L").save(root / "masks" / f"{i}.png")


def test_paste_source_items_have_up_to_three_objects_and_are_deterministic(tmp_path):
    _still_set(tmp_path)
    cfg = DataConfig(procedural_weight=0, paste_roots=(str(tmp_path),), paste_weight=1,
                     crop=48, max_objects=3, workers=0)
    ds = ClipDataset(cfg, 20, seed=2)
    counts = set()
    for i in range(8):
        item = ds[i]
        assert item["frames"].shape == (3, 3, 48, 48) and item["first_masks"].shape == (3, 48, 48)
        n = int(item["num_objects"])
        counts.add(n)
        assert item["labels"].max() <= n
        for k in range(n):
            assert torch.equal(item["first_masks"][k], (item["labels"][0] == k + 1).float())
    assert max(counts) >= 2
    assert torch.equal(ds[5]["frames"], ds[5]["frames"])


def test_stills_with_instance_ids_become_multi_object_pseudo_videos(tmp_path):
    _still_set(tmp_path)  # WebP images, masks with ids 1 and 2 (as Penn-Fudan's)
    cfg = DataConfig(procedural_weight=0, static_roots=(str(tmp_path),), static_weight=1,
                     crop=48, crop_scale=(0.9, 1.0), max_objects=3, workers=0)
    ds = ClipDataset(cfg, 10)
    assert {int(ds[i]["num_objects"]) for i in range(6)} == {2}


def test_pasted_objects_start_at_the_size_asked_for_and_a_bad_range_is_refused(tmp_path):
    def longest_sides(sizes):
        sides = []
        for seed in range(20):
            frames = np.zeros((1, 200, 200, 3), np.uint8)
            labels = np.zeros((1, 200, 200), np.uint8)
            cutout = disc_cutout(COLOURS[1], size=40)
            _, out = compose_clip(np.random.default_rng(seed), frames, labels, [cutout],
                                  sizes=sizes)
            ys, xs = np.nonzero(out[0] == 1)
            if len(ys) and ys.min() > 0 and xs.min() > 0 and max(ys.max(), xs.max()) < 199:
                sides.append(max(np.ptp(ys), np.ptp(xs)) + 1)  # wholly inside the frame
        return np.array(sides)

    small, large = longest_sides((0.05, 0.1)), longest_sides((0.5, 0.6))
    assert len(small) >= 10 and len(large) >= 5
    assert small.max() <= 0.1 * 200 * 1.3 and large.min() >= 0.5 * 200 * 0.7
    _still_set(tmp_path)
    for bad in ((0.0, 0.5), (0.6, 0.3), (0.2,)):
        cfg = DataConfig(procedural_weight=0, paste_roots=(str(tmp_path),), paste_weight=1,
                         paste_size=bad)
        with pytest.raises(UserError, match="paste_size"):
            PasteSource(cfg)
