import numpy as np
import torch
from PIL import Image

from lgdk.config import DataConfig
from lgdk.data.augment import pseudo_video
from lgdk.data.clips import ClipDataset, max_gap_at
from lgdk.data.masks import write_mask
from lgdk.data.procedural import generate_clip


def test_procedural_clip_is_deterministic_and_objects_visible():
    a = generate_clip(np.random.default_rng(3), 64, 80, 4, 3)
    b = generate_clip(np.random.default_rng(3), 64, 80, 4, 3)
    assert a.frames.shape == (4, 64, 80, 3) and a.labels.shape == (4, 64, 80)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.labels, b.labels)
    assert set(np.unique(a.labels[0])) == {0, 1, 2, 3}


def test_pseudo_video_moves_image_and_mask_together():
    image = torch.zeros(3, 96, 96, dtype=torch.uint8)
    label = torch.zeros(1, 96, 96, dtype=torch.uint8)
    image[:, 40:56, 30:46] = 255  # a white square ...
    label[:, 40:56, 30:46] = 1  # ... and its mask
    frames, labels = pseudo_video(np.random.default_rng(0), image, label, 3, 64)
    for f, lbl in zip(frames, labels):
        bright = f.float().mean(0) > 128
        inside = lbl == 1
        assert inside.sum() > 20
        # the marked pixels land where the mask does: same centre, mostly the same pixels
        centre = [torch.nonzero(m).float().mean(0) for m in (bright, inside)]
        assert torch.dist(*centre) < 1.5
        assert (bright & inside).sum() / (bright | inside).sum() > 0.75


def test_dataset_items_are_a_function_of_seed_and_index():
    cfg = DataConfig(crop=48, workers=0)
    ds = ClipDataset(cfg, 10, seed=1)
    a, b = ds[3], ds[3]
    assert torch.equal(a["frames"], b["frames"])
    assert a["frames"].shape == (3, 3, 48, 48) and a["first_masks"].shape == (2, 48, 48)
    n = int(a["num_objects"])
    assert 1 <= n <= 2 and a["labels"].max() <= n
    assert torch.equal(a["first_masks"][0], (a["labels"][0] == 1).float())


def test_mixing_ratio_holds_over_many_draws(tmp_path):
    for seq in ("s1", "s2"):
        (tmp_path / "JPEGImages" / seq).mkdir(parents=True)
        (tmp_path / "Annotations" / seq).mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (32, 32)).save(tmp_path / "JPEGImages" / seq / f"{i:05d}.jpg")
            write_mask(tmp_path / "Annotations" / seq / f"{i:05d}.png",
                       np.ones((32, 32), np.uint8))
    cfg = DataConfig(procedural_weight=0, video_roots=(str(tmp_path),), video_weight=1,
                     youtube_roots=(str(tmp_path),), youtube_weight=10)
    ds = ClipDataset(cfg, 10)
    draws = [ds.source_index(np.random.default_rng([0, i])) for i in range(4000)]
    share = np.mean(np.array(draws) == 0)
    assert abs(share - 1 / 11) < 0.015


def test_corrupt_files_are_skipped_not_fatal(tmp_path, caplog):
    (tmp_path / "JPEGImages" / "s").mkdir(parents=True)
    (tmp_path / "Annotations" / "s").mkdir(parents=True)
    for i in range(3):
        (tmp_path / "JPEGImages" / "s" / f"{i:05d}.jpg").write_bytes(b"broken")
        write_mask(tmp_path / "Annotations" / "s" / f"{i:05d}.png", np.ones((8, 8), np.uint8))
    cfg = DataConfig(crop=32, procedural_weight=1, static_roots=(str(tmp_path),),
                     static_weight=1)
    ds = ClipDataset(cfg, 20)
    items = [ds[i] for i in range(6)]
    assert all(it["frames"].shape == (3, 3, 32, 32) for it in items)
    assert "skipping an unreadable training sample" in caplog.text


def test_stcn_gap_curriculum():
    cfg = DataConfig()
    assert [max_gap_at(cfg, p) for p in (0.0, 0.15, 0.25, 0.35, 0.5, 0.9)] == [
        10, 10, 15, 20, 25, 5]
