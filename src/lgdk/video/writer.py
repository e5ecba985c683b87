"""Writing videos: RGB frames (H.264 in mp4/mov/mkv/avi, VP9 in WebM), or RGBA ones with
their alpha (WebM VP9, or ProRes 4444 in .mov, what editors import), at the source's
exact frame rate, with the source's sound when it has any. Under a temporary name until
`close`."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np

from lgdk.video.video_io import VideoError

ALPHA_EXTS = (".webm", ".mov")  # containers whose codec here keeps an alpha channel
AUDIO_CODECS = {".webm": "libopus", ".mkv": "libopus"}  # others: AAC


def exact_rate(fps: float | Fraction) -> Fraction:
    """29.97 -> 30000/1001: the rate as the source's header gives it, not rounded."""
    return Fraction(fps).limit_denominator(1001)


class VideoWriter:
    def __init__(self, path: str | os.PathLike, fps: float | Fraction = 24.0,
                 alpha: bool = False, audio: Path | None = None) -> None:
        import av

        self.path = Path(path)
        self.alpha = alpha
        suffix = self.path.suffix.lower()
        if alpha and suffix not in ALPHA_EXTS:
            raise VideoError(f"{self.path}: only WebM (VP9) and .mov (ProRes 4444) keep "
                             "transparency here")
        self.tmp = self.path.with_name(f".{self.path.stem}.partial{self.path.suffix}")
        self.container = av.open(str(self.tmp), mode="w")
        self.rate = exact_rate(fps)
        self.stream = None
        self.count = 0
        self.sound = AudioTrack.open(audio, self.container, suffix) if audio else None
        self._av = av

    def write(self, frame: np.ndarray) -> None:
        h, w = frame.shape[:2]
        frame = frame[: h - h % 2, : w - w % 2]  # 4:2:0 needs even sizes
        if self.stream is None:
            self.stream = _open_stream(self.container, self.rate, frame.shape,
                                       self.path.suffix.lower(), self.alpha)
        vf = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(frame),
                                              format="rgba" if self.alpha else "rgb24")
        vf.pts, vf.time_base = self.count, 1 / self.rate
        for packet in self.stream.encode(vf):
            self.container.mux(packet)
        self.count += 1
        if self.sound is not None:
            self.sound.advance(float(self.count / self.rate))

    def close(self) -> None:
        if self.stream is not None:
            for packet in self.stream.encode():
                self.container.mux(packet)
        if self.sound is not None:
            self.sound.finish(float(self.count / self.rate))
        self.container.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        if self.sound is not None:
            self.sound.input.close()
        self.container.close()
        self.tmp.unlink(missing_ok=True)


def _open_stream(container, rate: Fraction, shape, suffix: str, alpha: bool = False):
    if alpha and suffix == ".mov":
        codecs, pix_fmt = ("prores_ks",), "yuva444p10le"
    elif alpha:
        codecs, pix_fmt = ("libvpx-vp9",), "yuva420p"
    elif suffix == ".webm":
        codecs, pix_fmt = ("libvpx-vp9", "libvpx"), "yuv420p"
    else:
        codecs, pix_fmt = ("libx264", "h264", "mpeg4"), "yuv420p"
    for codec in codecs:
        try:
            stream = container.add_stream(codec, rate=rate)
            break
        except Exception:
            continue
    else:
        raise VideoError(f"this PyAV build has none of the encoders {', '.join(codecs)} for "
                         f"{suffix} videos; write the overlay as .mp4")
    stream.width, stream.height = shape[1], shape[0]
    stream.pix_fmt = pix_fmt
    stream.time_base = 1 / rate
    if codecs[0] == "prores_ks":
        stream.options = {"profile": "4444", "vendor": "apl0"}
    return stream


class AudioTrack:
    """The first sound stream of a source video, re-encoded into the output as its frames
    are written (interleaved), cut at the video's end."""

    def __init__(self, source, in_stream, out_stream, container) -> None:
        self.input, self.in_stream, self.out, self.container = (source, in_stream,
                                                                out_stream, container)
        self.frames = source.decode(in_stream)
        self.pending = None  # decoded, after the time written so far
        self.ended = False

    @classmethod
    def open(cls, path: Path, container, suffix: str) -> AudioTrack | None:
        """None when `path` has no sound (or is not a video file)."""
        import av

        try:
            source = av.open(str(path))
        except (av.FFmpegError, OSError):
            return None
        if not source.streams.audio:
            source.close()
            return None
        in_stream = source.streams.audio[0]
        codec = AUDIO_CODECS.get(suffix, "aac")
        rate = 48000 if codec == "libopus" else (in_stream.rate or 48000)
        out = container.add_stream(codec, rate=rate)
        out.layout = "stereo" if in_stream.channels >= 2 else "mono"
        return cls(source, in_stream, out, container)

    def advance(self, seconds: float) -> None:
        """Write the sound that starts before `seconds` of the video."""
        while (frame := self._next()) is not None:
            if frame.time is not None and frame.time >= seconds:
                self.pending = frame
                return
            self.pending = None
            frame.pts = None  # the encoder counts its own samples
            for packet in self.out.encode(frame):
                self.container.mux(packet)

    def _next(self):
        import av

        if self.pending is not None or self.ended:
            return self.pending
        try:
            return next(self.frames)
        except (StopIteration, av.FFmpegError):  # the end, or sound that stops decoding
            self.ended = True
            return None

    def finish(self, seconds: float) -> None:
        self.advance(seconds)
        for packet in self.out.encode(None):
            self.container.mux(packet)
        self.input.close()
