"""A session's video in `lgdk app`: the source the model reads (the uploaded file, the
unzipped frames, or lossless PNGs of given arrays: the same frames `lgdk segment` reads
from the same file), and a JPEG of each frame for the page. Each load gets a new
`version`, which the page puts in frame URLs so that a browser never shows the frames of
the video before."""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from lgdk.app.limits import DiskBudget
from lgdk.video.frames import Frames, Spill
from lgdk.video.video_io import FrameSource, VideoError, open_frames

_versions = itertools.count(1)


class FrameStore:
    def __init__(self, folder: Path, max_frames: int, disk: DiskBudget | None) -> None:
        self.folder, self.max_frames, self.disk = Path(folder), max_frames, disk
        self.shown: list[Path] = []  # the page's JPEG of each frame
        self.source: FrameSource | None = None
        self.fps, self.size, self.version = 24.0, (0, 0), 0
        self._reader: Frames | None = None

    def __len__(self) -> int:
        return len(self.shown)

    def load_arrays(self, frames: Iterator[np.ndarray], fps: float,
                    announced: int = 0) -> None:
        """Frames (H, W, 3) uint8: kept as lossless PNGs (the source) and as JPEGs."""
        self._clear()
        folder = self.folder / "source" / "frames"
        folder.mkdir(parents=True)
        self._write_shown(frames, announced, png=folder)
        self.source = open_frames(folder)
        self.source.fps = self.fps = fps

    def load_source(self, source: FrameSource) -> None:
        """A video file or a folder of frames that stays where it is (in the session's
        folder) as the source; JPEGs of its frames for the page."""
        self._clear(keep=source.path)
        self._write_shown((frame for _, frame in source), len(source))
        self.source, self.fps = source, source.fps

    def share(self, shown: list[Path], source: FrameSource, size: tuple[int, int]) -> None:
        """Frames other sessions share (the demo clip): read, never written."""
        self._clear()
        self.shown, self.source, self.size, self.fps = list(shown), source, size, source.fps

    def _clear(self, keep: Path | None = None) -> None:
        self.close()
        self.shown, self.source, self.version = [], None, next(_versions)
        shutil.rmtree(self.folder / "frames", ignore_errors=True)
        (self.folder / "frames").mkdir(parents=True)
        source = self.folder / "source"
        for item in source.iterdir() if source.is_dir() else ():
            if keep is None or not (item == keep or item in keep.parents):
                shutil.rmtree(item) if item.is_dir() else item.unlink()

    def _write_shown(self, frames: Iterator[np.ndarray], announced: int,
                     png: Path | None = None) -> None:
        if announced > self.max_frames:
            raise self.too_long()
        written = 0
        try:
            for index, frame in enumerate(frames):
                if index >= self.max_frames:
                    raise self.too_long()
                path = self.folder / "frames" / f"{index:05d}.jpg"
                Image.fromarray(frame).save(path, quality=95, subsampling=0)
                written += path.stat().st_size
                if png is not None:
                    lossless = png / f"{index:05d}.png"
                    Image.fromarray(frame).save(lossless, compress_level=1)
                    written += lossless.stat().st_size
                self.shown.append(path)
                self.size = frame.shape[:2]
                if self.disk is not None and index % 25 == 0:  # room for what is to come
                    left = announced - index - 1 if announced else 25  # unknown: 25 more
                    ahead = max(left, 0) * written // (index + 1)
                    self.disk.check(ahead, "the video's frames")
            if not self.shown:
                raise VideoError("the upload holds no frames")
        except BaseException:
            self.shown = []
            for name in ("frames", "source"):
                shutil.rmtree(self.folder / name, ignore_errors=True)
            raise

    def too_long(self) -> VideoError:
        return VideoError(f"the video has more than {self.max_frames} frames, the limit of "
                          "this app; cut it shorter (or start the app with a larger "
                          "--max-frames)")

    def frame(self, index: int) -> np.ndarray:
        """Frame `index` as the model sees it (decoded from the source, not the JPEG)."""
        if self.source.files is not None:
            return self.source._read_image(self.source.files[index])
        if self._reader is None or index < self._reader.decoded - 1:
            self.close()
            self._reader = Frames(self.source, Spill(budget=64 << 20))
        frame = self._reader.get(index)
        for earlier in range(index):
            self._reader.release(earlier)
        return frame

    def sound(self) -> Path | None:
        """The video file whose sound outputs carry (None: frames, no sound)."""
        return self.source.path if self.source.files is None else None

    def frames(self) -> Iterator[np.ndarray]:
        """Every frame in order, as the model sees them."""
        for _, frame in self.source:
            yield frame

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
