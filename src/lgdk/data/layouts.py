"""Finding images, masks and sequences in the folder layouts users have."""

from __future__ import annotations

import re
from pathlib import Path

from lgdk.errors import UserError

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


class DataError(UserError):
    """A data folder that cannot be used; the message names it and the fix."""


def natural_key(path: Path | str) -> list:
    """Names in the order people number them: frame_2 before frame_10."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part.lower())
            for part in re.split(r"(\d+)", Path(path).name) if part]


def list_images(folder: Path) -> list[Path]:
    """The image files of a folder (hidden ones left out), in natural order."""
    return sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS
                   and p.is_file() and not p.name.startswith(".")), key=natural_key)


def is_davis_layout(root: Path) -> bool:
    return (root / "JPEGImages").is_dir() and (root / "Annotations").is_dir()


def davis_sequences(root: Path) -> list[str]:
    """Sequence names of a DAVIS / YouTube-VOS layout (`JPEGImages/<seq>/`)."""
    if not is_davis_layout(root):
        raise DataError(f"{root} is not a DAVIS layout: expected JPEGImages/ and Annotations/")
    return sorted(p.name for p in (root / "JPEGImages").iterdir() if p.is_dir())


def davis_frames(root: Path, seq: str) -> list[tuple[Path, Path | None]]:
    """(image, mask or None) for every frame of a sequence, sorted by name."""
    masks = {p.stem: p for p in (root / "Annotations" / seq).glob("*.png")}
    return [(img, masks.get(img.stem)) for img in list_images(root / "JPEGImages" / seq)]


def image_mask_pairs(root: Path) -> list[tuple[Path, Path]]:
    """Image + mask pairs of a still-image data set, in any of these layouts:
    a DAVIS layout (every annotated frame); `images/` + `masks/` (or `im/` + `gt/`) with
    the same file stems; or image and mask side by side (`x.jpg` + `x.png`)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data folder {root} not found")
    if is_davis_layout(root):
        return [(img, msk) for seq in davis_sequences(root)
                for img, msk in davis_frames(root, seq) if msk is not None]
    for images, masks in (("images", "masks"), ("im", "gt"), ("Imgs", "GT"), ("JPEGImages",
                                                                          "SegmentationClass")):
        if (root / images).is_dir() and (root / masks).is_dir():
            found = {p.stem: p for p in (root / masks).rglob("*.png")}
            return [(p, found[p.stem]) for p in sorted((root / images).rglob("*"))
                    if p.suffix.lower() in IMAGE_EXTS and p.stem in found]
    pairs = []
    for img in sorted(root.rglob("*")):
        if img.suffix.lower() in (".jpg", ".jpeg"):
            mask = img.with_suffix(".png")
            if mask.is_file():
                pairs.append((img, mask))
    return pairs
