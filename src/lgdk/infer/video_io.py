"""Reading frames (video files through PyAV, or folders of images) and writing videos."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from lgdk.data.layouts import IMAGE_EXTS
from lgdk.errors import UserError

VIDEO_EXTS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")


class VideoError(UserError):
    pass


@dataclass
class FrameSource:
    """Frames of a video or image folder, decoded lazily, with stable frame names."""

    path: Path
    files: list[Path] | None = None  # image folder
    fps: float = 24.0

    def __iter__(self) -> Iterator[tuple[str, np.ndarray]]:
        """Yields (name, (H, W, 3) uint8 RGB)."""
        if self.files is not None:
            for f in self.files:
                try:
                    yield f.stem, np.asarray(Image.open(f).convert("RGB"))
                except OSError as exc:
                    raise VideoError(f"frame {f} is not a readable image ({exc})") from None
            return
        yield from _decode(self.path)

    def __len__(self) -> int:
        if self.files is not None:
            return len(self.files)
        return _count(self.path)


def _decode(path: Path) -> Iterator[tuple[str, np.ndarray]]:
    import av

    try:
        container = av.open(str(path))
    except Exception as exc:
        raise VideoError(f"{path} is not a readable video ({exc}); give an mp4, mov, avi, "
                         "mkv or webm file, or a folder of frames") from None
    with container:
        if not container.streams.video:
            raise VideoError(f"{path} has no video stream")
        count = 0
        for frame in container.decode(video=0):
            yield f"{count:05d}", frame.to_ndarray(format="rgb24")
            count += 1
    if count == 0:
        raise VideoError(f"{path} holds no decodable frame; is the file empty or truncated?")


def _count(path: Path) -> int:
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            return int(stream.frames or 0)
    except Exception:
        return 0


def open_frames(path: str | os.PathLike) -> FrameSource:
    path = Path(path)
    if not path.exists():
        raise VideoError(f"input {path} not found; give a video file or a folder of frames")
    if path.is_dir():
        files = sorted(p for p in path.iterdir()
                       if p.suffix.lower() in IMAGE_EXTS and not p.name.startswith("."))
        if not files:
            raise VideoError(f"folder {path} holds no jpg/png frames")
        return FrameSource(path, files)
    if path.suffix.lower() not in VIDEO_EXTS:
        raise VideoError(f"{path}: unknown video type '{path.suffix}'; give one of "
                         f"{', '.join(VIDEO_EXTS)} or a folder of frames")
    if path.stat().st_size == 0:
        raise VideoError(f"{path} is empty (0 bytes)")
    return FrameSource(path, None, _fps(path))


def _fps(path: Path) -> float:
    import av

    try:
        with av.open(str(path)) as container:
            rate = container.streams.video[0].average_rate
            return float(rate) if rate else 24.0
    except Exception as exc:
        raise VideoError(f"{path} is not a readable video ({exc})") from None


class VideoWriter:
    """Writes RGB frames to a video file, under a temporary name until `close`."""

    def __init__(self, path: str | os.PathLike, fps: float = 24.0) -> None:
        import av

        self.path = Path(path)
        self.tmp = self.path.with_name(f".{self.path.stem}.partial{self.path.suffix}")
        self.container = av.open(str(self.tmp), mode="w")
        self.fps = fps
        self.stream = None
        self._av = av

    def write(self, frame: np.ndarray) -> None:
        h, w = frame.shape[:2]
        frame = frame[: h - h % 2, : w - w % 2]  # yuv420p needs even sizes
        if self.stream is None:
            self.stream = _open_stream(self.container, round(self.fps), frame.shape)
        vf = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        for packet in self.stream.encode(vf):
            self.container.mux(packet)

    def close(self) -> None:
        if self.stream is not None:
            for packet in self.stream.encode():
                self.container.mux(packet)
        self.container.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        self.container.close()
        self.tmp.unlink(missing_ok=True)


def _open_stream(container, fps: int, shape):
    for codec in ("libx264", "h264", "mpeg4"):
        try:
            stream = container.add_stream(codec, rate=max(1, fps))
            break
        except Exception:
            continue
    stream.width, stream.height = shape[1], shape[0]
    stream.pix_fmt = "yuv420p"
    return stream
