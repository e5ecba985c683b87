"""A video's frames by number, decoded once and in order: what a job reaches ahead of
what it has used (a backward pass needs the frames before a given one) is kept, in
memory up to a budget and beyond it as .npy files in a temporary folder, until the job
releases it."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Hashable
from pathlib import Path

import numpy as np

from lgdk.video.background import prefetch
from lgdk.video.video_io import FrameSource

IN_MEMORY = 768 << 20  # bytes of kept arrays in memory before they go to disk


class Spill:
    """Arrays by key, in memory up to `budget` bytes and on disk beyond it."""

    def __init__(self, budget: int = IN_MEMORY, parent: Path | None = None) -> None:
        """`parent`: where the folder for what does not fit goes (default: TMPDIR)."""
        self.budget, self.used, self.parent = budget, 0, parent
        self.memory: dict[Hashable, np.ndarray] = {}
        self.disk: dict[Hashable, Path] = {}
        self.folder: Path | None = None

    def put(self, key: Hashable, array: np.ndarray) -> None:
        self.pop(key)
        if self.used + array.nbytes <= self.budget:
            self.memory[key] = array
            self.used += array.nbytes
            return
        if self.folder is None:
            if self.parent is not None:
                self.parent.mkdir(parents=True, exist_ok=True)
            self.folder = Path(tempfile.mkdtemp(prefix="lgdk-frames-", dir=self.parent))
        path = self.folder / f"{len(self.disk)}-{abs(hash(key))}.npy"
        np.save(path, array)
        self.disk[key] = path

    def get(self, key: Hashable) -> np.ndarray | None:
        if key in self.memory:
            return self.memory[key]
        path = self.disk.get(key)
        return None if path is None else np.load(path)

    def __contains__(self, key: Hashable) -> bool:
        return key in self.memory or key in self.disk

    def pop(self, key: Hashable) -> None:
        array = self.memory.pop(key, None)
        if array is not None:
            self.used -= array.nbytes
        path = self.disk.pop(key, None)
        if path is not None:
            path.unlink(missing_ok=True)

    def keys(self) -> list[Hashable]:
        return [*self.memory, *self.disk]

    def close(self) -> None:
        self.memory.clear()
        self.disk.clear()
        self.used = 0
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None


class Frames:
    """`get(i)`: frame i (H, W, 3) uint8, or None past the end. A folder of images is
    read by index; a video is decoded in order (in a background thread), each decoded
    frame kept until `release`d. Frame names: the images' stems, or 00000, 00001, ..."""

    def __init__(self, source: FrameSource, spill: Spill | None = None) -> None:
        self.source = source
        self.spill = spill or Spill()
        self.decoded = 0  # frames of a video decoded so far
        self.ended = False
        self._stream = None

    @property
    def random_access(self) -> bool:
        return self.source.files is not None

    @property
    def count(self) -> int:
        """A folder's frame count; of a video, the frames decoded so far."""
        return len(self.source.files) if self.random_access else self.decoded

    def name(self, index: int) -> str:
        return self.source.files[index].stem if self.random_access else f"{index:05d}"

    def get(self, index: int) -> np.ndarray | None:
        if self.random_access:
            files = self.source.files
            return self.source._read_image(files[index]) if 0 <= index < len(files) else None
        if ("frame", index) in self.spill:
            return self.spill.get(("frame", index))
        if index < self.decoded:
            raise RuntimeError(f"frame {index} was released; a job reads each frame it "
                               "releases no more")
        while self.decoded <= index and not self.ended:
            self._decode_one()
        return self.spill.get(("frame", index))

    def _decode_one(self) -> None:
        if self._stream is None:
            self._stream = prefetch(self.source)
        try:
            _, frame = next(self._stream)
        except StopIteration:
            self.ended = True
            return
        self.spill.put(("frame", self.decoded), frame)
        self.decoded += 1

    def release(self, index: int) -> None:
        """Frame `index` will not be read again."""
        if not self.random_access:
            self.spill.pop(("frame", index))

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        self.spill.close()
