"""MOTS crowd clips: each clip's objects are its first frame's people large enough to
click on, largest first, with ids 1..K; people who enter later are background; void
stays void."""

import numpy as np
from PIL import Image

from lgdk.data.masks import VOID, write_mask
from scripts import mots_clips


def mots_layout(root, frames=12):
    images = root / "JPEGImages/480p/mots-0005"
    masks = root / "Annotations/480p/mots-0005"
    images.mkdir(parents=True)
    masks.mkdir(parents=True)
    for i in range(frames):
        Image.fromarray(np.full((60, 80, 3), i, np.uint8)).save(images / f"{i:05d}.jpg")
        ids = np.zeros((60, 80), np.uint8)
        ids[0:30, 0:20] = 7  # 600 px: the larger person
        ids[40:60, 30:50] = 3  # 400 px
        ids[0:5, 70:75] = 9  # 25 px: too small to click on
        ids[:, 79] = VOID
        if i >= 2:
            ids[30:40, 60:70] = 4  # enters later: background
        write_mask(masks / f"{i:05d}.png", ids)


def test_clips_take_the_first_frames_people_and_nobody_who_comes_later(tmp_path,
                                                                     monkeypatch):
    mots_layout(tmp_path / "mots")
    monkeypatch.setattr(mots_clips, "CLIP_FRAMES", 5)
    clips = mots_clips.cut_clips(tmp_path / "mots", "mots-0005", tmp_path / "clips")
    assert [name for name, _, _ in clips] == ["mots-0005-0000", "mots-0005-0003"]
    later = clips[0][2][2]  # frame 2 of the first clip: person 4 has entered
    assert (later[30:40, 60:70] == 0).all() and (later[0:30, 0:20] == 1).all()
    name, folder, truth = clips[1]
    assert sorted(p.name for p in folder.iterdir()) == [f"{i:05d}.jpg" for i in range(3, 8)]
    assert len(truth) == 5
    first = truth[0]
    assert (first[0:30, 0:20] == 1).all() and (first[40:60, 30:50] == 2).all()
    assert (first[0:5, 70:75] == 0).all() and (first[30:40, 60:70] == 0).all()
    assert (first[:, 79] == VOID).all()
    assert mots_clips.MOTS_PARTS == {"mots-0005": "selection", "mots-0009": "report"}
