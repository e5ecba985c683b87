"""The masks a user gives: one PNG for the first frame or a folder of PNGs named like the
frames. Light to import (no torch), so that `lgdk segment` checks them before it loads a
model."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
from PIL import Image

from lgdk.data.layouts import natural_key
from lgdk.data.masks import MaskError, object_ids, read_mask
from lgdk.video.video_io import same_aspect_ratio

log = logging.getLogger(__name__)


class MaskProvider:
    """The given masks: one file (for the first frame) or a folder of PNGs named like the
    frames, each introducing objects at its frame."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise MaskError(f"mask {self.path} not found; give a PNG or a folder of PNGs")
        self.by_name = None
        if self.path.is_dir():
            self.by_name = {p.stem: p for p in self.path.glob("*.png")}
            if not self.by_name:
                raise MaskError(f"mask folder {self.path} holds no PNG masks")

    def get(self, index: int, name: str, shape: tuple[int, int]) -> np.ndarray | None:
        if self.by_name is None:
            path = self.path if index == 0 else None
        else:
            path = self.by_name.get(name)
        if path is None:
            return None
        ids = fit_mask(read_mask(path), shape, path)
        if not object_ids(ids):
            raise MaskError(f"{path} contains no object (every pixel is background); draw "
                            "at least one object in it")
        return ids

    def check_used(self, names: set[str]) -> None:
        if self.by_name is not None and not set(self.by_name) & names:
            raise MaskError(f"no mask in {self.path} is named like a frame (e.g. "
                            f"{sorted(names)[0]}.png)")

    def check(self, shape: tuple[int, int], first_name: str, names: set[str] | None) -> int:
        """Before any work: the first given mask is readable, fits the frames and holds
        an object; a folder's masks are named like frames (when the names are known) and
        have the frames' aspect ratio. -> the number of objects of the first mask."""
        if self.by_name is None:
            first = self.get(0, first_name, shape)
        else:
            known = sorted(set(self.by_name) & names if names else self.by_name,
                           key=natural_key)
            first = self.get(-1, known[0] if known else first_name, shape)
        if first is None:
            raise MaskError(f"frame {first_name} (the first) has no mask in {self.path}; "
                            f"add {first_name}.png")
        if self.by_name is not None:
            if names is not None:
                self.check_used(names)
            for path in self.by_name.values():
                try:
                    with Image.open(path) as img:
                        size = (img.height, img.width)
                except OSError as exc:
                    raise MaskError(f"{path} is not a readable image ({exc}); give PNG "
                                    "masks") from None
                if not same_aspect_ratio(size, shape):
                    raise MaskError(f"{path} is {size[1]}x{size[0]} but the frames are "
                                    f"{shape[1]}x{shape[0]}; give masks of the frames' size")
        return len(object_ids(first))


def fit_mask(ids: np.ndarray, shape: tuple[int, int], path: Path) -> np.ndarray:
    """Same size: as is. Same aspect ratio: nearest-neighbour resize, with a warning.
    Otherwise: refused."""
    if ids.shape == shape:
        return ids
    h, w = ids.shape
    if not same_aspect_ratio((h, w), shape):
        raise MaskError(f"{path} is {w}x{h} but the frames are {shape[1]}x{shape[0]}; give "
                        "a mask of the frame's size (or at least its aspect ratio)")
    log.warning("%s is %dx%d, the frames %dx%d: resized (nearest neighbour)", path, w, h,
                shape[1], shape[0])
    return np.asarray(Image.fromarray(ids).resize((shape[1], shape[0]), Image.NEAREST))
