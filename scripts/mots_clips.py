"""Clips of real street crowds with every frame's masks, cut from MOTSChallenge as
`../shared/data/mots/prepare.py` writes it (DAVIS layout at 480 lines): each clip's objects
are the pedestrians in its first frame (ids 1..K, the largest first, small ones included);
people who enter later are background, MOTS's void stays void.

mots-0005 is the selection part (choose on it), mots-0009 the report part; mots-0002 and
mots-0011 are for training only and are never cut here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lgdk.data.masks import VOID, read_mask

MOTS_PARTS = {"mots-0005": "selection", "mots-0009": "report"}
CLIP_FRAMES = 40  # frames a clip
CLIPS = 2  # clips a sequence, their first frames spread evenly over it
MAX_OBJECTS = 8  # the largest people of the first frame
MIN_AREA = 400  # pixels at 480 lines: a person about 10x40


def clip_objects(first: np.ndarray) -> list[int]:
    """The track ids of the first frame's people large enough to click on, largest first."""
    ids, counts = np.unique(first[(first != 0) & (first != VOID)], return_counts=True)
    order = np.argsort(-counts)
    return [int(ids[k]) for k in order if counts[k] >= MIN_AREA][:MAX_OBJECTS]


def remap(mask: np.ndarray, tracks: list[int]) -> np.ndarray:
    """(H, W) MOTS ids -> the clip's ids 1..K in `tracks` order; others 0, void kept."""
    out = np.where(mask == VOID, VOID, 0).astype(np.uint8)
    for new, track in enumerate(tracks, 1):
        out[mask == track] = new
    return out


def cut_clips(root: Path, seq: str, work: Path) -> list[tuple[str, Path, list[np.ndarray]]]:
    """-> (name, a folder of the clip's frames (links), each frame's ids) for each clip."""
    frames = sorted((root / "JPEGImages/480p" / seq).glob("*.jpg"))
    masks = sorted((root / "Annotations/480p" / seq).glob("*.png"))
    clips = []
    step = (len(frames) - CLIP_FRAMES) // CLIPS
    for k in range(CLIPS):
        start = k * step
        tracks = clip_objects(read_mask(masks[start]))
        if not tracks:
            continue
        name = f"{seq}-{start:04d}"
        folder = work / name
        folder.mkdir(parents=True, exist_ok=True)
        truth = []
        for i in range(start, start + CLIP_FRAMES):
            link = folder / frames[i].name
            if not link.exists():
                link.symlink_to(frames[i].resolve())
            truth.append(remap(read_mask(masks[i]), tracks))
        clips.append((name, folder, truth))
    return clips
