"""Cut-outs: the segmented objects on a transparent background (WebM VP9 with alpha,
ProRes 4444 with alpha in .mov, or a folder of RGBA PNGs) or on a solid colour (any video
container); video cut-outs carry the source's sound.

    writer = CutoutWriter.open(Path("out.webm"), fps=24)             # transparent
    writer = CutoutWriter.open(Path("out.mov"), fps=24, audio=src)   # ProRes 4444
    writer = CutoutWriter.open(Path("out.mp4"), fps=24, background=(0, 255, 0))
    writer.write(frame, labels)   # (H, W, 3) uint8 RGB, (H, W) object ids
    writer.close()                # renamed into place only when complete
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from lgdk.errors import UserError
from lgdk.video.video_io import VIDEO_EXTS
from lgdk.video.writer import ALPHA_EXTS, VideoWriter


class CutoutError(UserError):
    pass


def parse_colour(text: str) -> tuple[int, int, int]:
    """'0,255,0' -> (0, 255, 0)."""
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or not all(0 <= v <= 255 for v in values):
        raise CutoutError(f"--background must be R,G,B with values 0-255, like 0,255,0, not "
                          f"'{text}'")
    return values  # type: ignore[return-value]


def check_cutout_path(path: Path, background: tuple[int, int, int] | None) -> None:
    """Before any work: a .webm (transparent, or on `background`), another video container
    with a `background`, or a folder (no suffix) of RGBA PNGs."""
    suffix = path.suffix.lower()
    if suffix and suffix not in VIDEO_EXTS:
        raise CutoutError(f"--cutout {path}: give a .webm (transparent), another video "
                          f"({', '.join(VIDEO_EXTS)}) with --background R,G,B, or a folder "
                          "name for RGBA PNGs")
    if suffix and suffix not in ALPHA_EXTS and background is None:
        raise CutoutError(f"--cutout {path}: only WebM (VP9) and .mov (ProRes 4444) keep "
                          "transparency; name it .webm or .mov, or give --background R,G,B "
                          "for a solid colour")
    if not suffix and background is not None:
        raise CutoutError(f"--cutout {path}: a folder gets transparent PNGs; leave out "
                          "--background, or name a video file")
    if path.exists() and path.is_dir() != (not suffix):
        raise CutoutError(f"--cutout {path} exists and is a "
                          f"{'folder' if path.is_dir() else 'file'}; choose another name")


def rgba(frame: np.ndarray, labels: np.ndarray, objects: set[int] | None = None) -> np.ndarray:
    """(H, W, 3) RGB + (H, W) ids -> (H, W, 4): opaque where an object (of `objects`, or
    any) is, transparent elsewhere."""
    keep = labels > 0 if objects is None else np.isin(labels, sorted(objects))
    alpha = np.where(keep, 255, 0).astype(np.uint8)
    return np.concatenate([frame, alpha[..., None]], axis=2)


def on_colour(frame: np.ndarray, labels: np.ndarray, colour: tuple[int, int, int],
              objects: set[int] | None = None) -> np.ndarray:
    keep = labels > 0 if objects is None else np.isin(labels, sorted(objects))
    return np.where(keep[..., None], frame, np.array(colour, np.uint8)).astype(np.uint8)


class CutoutWriter:
    """Writes cut-out frames under a temporary name; `close` puts them in place."""

    def __init__(self, path: Path, fps: float, background, objects) -> None:
        self.path, self.fps, self.background, self.objects = path, fps, background, objects
        self.count = 0
        self.video: VideoWriter | None = None
        self.folder: Path | None = None

    @classmethod
    def open(cls, path: Path, fps: float, background: tuple[int, int, int] | None = None,
             objects: set[int] | None = None, audio: Path | None = None) -> CutoutWriter:
        """`audio`: a video whose sound the cut-out video carries."""
        check_cutout_path(path, background)
        writer = cls(path, fps, background, objects)
        if path.suffix:
            writer.video = VideoWriter(path, fps, alpha=background is None, audio=audio)
        else:
            writer.folder = path.with_name(f".{path.name}.partial")
            shutil.rmtree(writer.folder, ignore_errors=True)
            writer.folder.mkdir(parents=True)
        return writer

    @property
    def tmp(self) -> Path:
        return self.video.tmp if self.video else self.folder

    def write(self, frame: np.ndarray, labels: np.ndarray) -> None:
        if self.background is not None:
            self.video.write(on_colour(frame, labels, self.background, self.objects))
        elif self.video is not None:
            self.video.write(rgba(frame, labels, self.objects))
        else:
            Image.fromarray(rgba(frame, labels, self.objects)).save(
                self.folder / f"{self.count:05d}.png")
        self.count += 1

    def close(self) -> None:
        if self.video is not None:
            self.video.close()
            return
        if self.path.exists():
            shutil.rmtree(self.path)
        os.replace(self.folder, self.path)

    def abort(self) -> None:
        if self.video is not None:
            self.video.abort()
        else:
            shutil.rmtree(self.folder, ignore_errors=True)


def read_rgba_video(path: Path) -> list[np.ndarray]:
    """The frames of a WebM with alpha as (H, W, 4) uint8 (libvpx's decoder keeps the
    alpha channel that FFmpeg's own VP9 decoder drops)."""
    import av

    frames = []
    with av.open(str(path)) as container:
        decoder = av.CodecContext.create("libvpx-vp9", "r")
        for packet in container.demux(container.streams.video[0]):
            frames += [f.to_ndarray(format="rgba") for f in decoder.decode(packet)]
    return frames
