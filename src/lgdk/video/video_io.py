"""Reading frames (video files through PyAV, or folders of images) and writing videos."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from lgdk.data.layouts import list_images
from lgdk.errors import UserError

log = logging.getLogger(__name__)

VIDEO_EXTS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")


class VideoError(UserError):
    pass


@dataclass
class FrameSource:
    """Frames of a video or image folder, decoded lazily, with stable frame names.

    Every frame comes out at the sequence's size (`size`, the first frame's): a folder's
    frame of another size but the same aspect ratio is resized (bilinear, with a warning
    naming it, see `open_frames`). A video that stops decoding early (truncated or corrupt)
    ends the iteration at its last good frame and records `first_undecodable`."""

    path: Path
    files: list[Path] | None = None  # image folder
    fps: float = 24.0
    size: tuple[int, int] | None = None  # (height, width) of every frame
    resize: set[Path] = field(default_factory=set)  # folder frames of another size
    announced_frames: int = 0  # a video's frame count from its header (0: unknown)
    first_undecodable: int | None = None  # index of the frame where decoding broke off
    decode_problem: str = ""

    def __iter__(self) -> Iterator[tuple[str, np.ndarray]]:
        """Yields (name, (H, W, 3) uint8 RGB)."""
        if self.files is not None:
            for f in self.files:
                yield f.stem, self._read_image(f)
            return
        yield from _decode(self)

    def _read_image(self, f: Path) -> np.ndarray:
        try:
            img = Image.open(f).convert("RGB")
        except OSError as exc:
            raise VideoError(f"frame {f} is not a readable image ({exc})") from None
        if f in self.resize:
            img = img.resize((self.size[1], self.size[0]), Image.BILINEAR)
        return np.asarray(img)

    def __len__(self) -> int:
        """The number of frames (a video's as announced by the file; 0 if unknown)."""
        if self.files is not None:
            return len(self.files)
        return self.announced_frames


def _decode(source: FrameSource) -> Iterator[tuple[str, np.ndarray]]:
    """The video's frames until the end or the first frame that does not decode (then
    recorded in `source.first_undecodable`, never raised: the frames before it stand)."""
    import av
    from av.video.reformatter import VideoReformatter

    path = source.path
    to_rgb = VideoReformatter()  # one conversion context for the whole video: making one
    # a frame (what `frame.to_ndarray(format=...)` does) cost about 1 ms of 1.1 at 480p
    try:
        container = av.open(str(path))
    except Exception as exc:
        raise VideoError(f"{path} is not a readable video ({exc}); give an mp4, mov, avi, "
                         "mkv or webm file, or a folder of frames") from None
    with container:
        if not container.streams.video:
            raise VideoError(f"{path} has no video stream")
        expected = _expected_frames(container)
        count, frames = 0, container.decode(video=0)
        while True:
            try:
                frame = next(frames)
            except StopIteration:
                break
            except (av.FFmpegError, OSError, ValueError) as exc:
                source.first_undecodable, source.decode_problem = count, str(exc)
                break
            image = to_rgb.reformat(frame, format="rgb24").to_ndarray()
            if source.size is not None and image.shape[:2] != source.size:
                source.first_undecodable = count
                source.decode_problem = (f"the frame is {image.shape[1]}x{image.shape[0]}, "
                                         f"the video {source.size[1]}x{source.size[0]}")
                break
            source.size = image.shape[:2]
            yield f"{count:05d}", image
            count += 1
    if count == 0:
        raise VideoError(f"{path} holds no decodable frame; is the file empty or truncated?")
    if source.first_undecodable is None and count < expected:
        source.first_undecodable = count
        source.decode_problem = f"the stream ends after {count} of its {expected} frames"


def _expected_frames(container) -> int:
    """The frame count the file announces: its index's (mp4, avi) or, where it keeps none
    (mkv, webm), its duration's, less a margin for rounding. 0 when unknown."""
    stream = container.streams.video[0]
    if stream.frames:
        return int(stream.frames)
    if container.duration and stream.average_rate:
        seconds = container.duration / 1_000_000  # PyAV's container time base
        return max(0, int(0.95 * seconds * float(stream.average_rate)) - 1)
    return 0


def open_frames(path: str | os.PathLike) -> FrameSource:
    path = Path(path)
    if not path.exists():
        raise VideoError(f"input {path} not found; give a video file or a folder of frames")
    if path.is_dir():
        files = list_images(path)
        if not files:
            raise VideoError(f"folder {path} holds no jpg/png frames")
        size, resize = _check_frame_sizes(files)
        return FrameSource(path, files, size=size, resize=resize)
    if path.suffix.lower() not in VIDEO_EXTS:
        raise VideoError(f"{path}: unknown video type '{path.suffix}'; give one of "
                         f"{', '.join(VIDEO_EXTS)} or a folder of frames")
    if path.stat().st_size == 0:
        raise VideoError(f"{path} is empty (0 bytes)")
    return _probe(path)


def same_aspect_ratio(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """(height, width) pairs whose aspect ratios agree to 1%: one can be resized to the
    other (frames of a sequence, a mask to its frames)."""
    return abs(a[0] / a[1] - b[0] / b[1]) <= 0.01


def _check_frame_sizes(files: list[Path]) -> tuple[tuple[int, int], set[Path]]:
    """Every frame's size from its header, before any work: the first frame's size is the
    sequence's; frames of another size with its aspect ratio are to be resized (warned
    here, by name); any other size is refused. -> ((height, width), frames to resize)."""
    sizes = {}
    for f in files:
        try:
            with Image.open(f) as img:
                sizes[f] = (img.height, img.width)
        except OSError as exc:
            raise VideoError(f"frame {f} is not a readable image ({exc}); remove or replace "
                             "it") from None
    height, width = sizes[files[0]]
    resize = set()
    for f, (h, w) in sizes.items():
        if (h, w) == (height, width):
            continue
        if not same_aspect_ratio((h, w), (height, width)):
            raise VideoError(f"frame {f} is {w}x{h} but the sequence ({files[0].name}) is "
                             f"{width}x{height}; give every frame the same size")
        log.warning("frame %s is %dx%d, the sequence %dx%d: resized to the sequence's size",
                    f, w, h, width, height)
        resize.add(f)
    return (height, width), resize


def _probe(path: Path) -> FrameSource:
    """A video's frame rate, frame size and announced length, from its header."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoError(f"{path} has no video stream; give a video file")
            stream = container.streams.video[0]
            fps = float(stream.average_rate) if stream.average_rate else 24.0
            size = (stream.height, stream.width) if stream.width and stream.height else None
            return FrameSource(path, None, fps, size=size,
                               announced_frames=_expected_frames(container))
    except av.FFmpegError as exc:
        raise VideoError(f"{path} is not a readable video ({exc}); give an mp4, mov, avi, "
                         "mkv or webm file, or a folder of frames") from None
