"""Per-frame outputs besides the masks: the colour overlay video and the cut-out. Each
sink writes under a temporary name (`tmp`) and is put in place by `close`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lgdk.data.masks import davis_palette
from lgdk.video.cutout import CutoutWriter, check_cutout_path
from lgdk.video.writer import VideoWriter


def overlay(frame: np.ndarray, labels: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    colours = davis_palette()[labels].astype(np.float32)
    mixed = np.where(labels[..., None] > 0, frame * (1 - alpha) + colours * alpha, frame)
    return mixed.astype(np.uint8)


@dataclass(frozen=True)
class VideoOutputs:
    """What to write beside the masks: `overlay` video; `cutout` (a .webm or .mov with
    alpha, a video on `background`, or a folder of RGBA PNGs); `report` (each frame's
    doubt as JSON, `lgdk.video.report`)."""

    overlay: Path | None = None
    cutout: Path | None = None
    background: tuple[int, int, int] | None = None
    report: Path | None = None

    def check(self) -> None:
        from lgdk.video import preflight
        from lgdk.video.report import check_report_path

        if self.overlay is not None:
            preflight.check_overlay_path(self.overlay)
        if self.report is not None:
            check_report_path(self.report)
        if self.cutout is not None:
            check_cutout_path(self.cutout, self.background)

    def open(self, fps: float, audio: Path | None = None) -> list:
        """The writers, at `fps`, with the sound of the video `audio` (if it has any)."""
        sinks: list = []
        try:
            if self.overlay is not None:
                sinks.append(OverlayWriter(self.overlay, fps, audio))
            if self.cutout is not None:
                sinks.append(CutoutWriter.open(self.cutout, fps, self.background,
                                               audio=audio))
        except BaseException:
            for sink in sinks:
                sink.abort()
            raise
        return sinks


class OverlayWriter:
    def __init__(self, path: Path, fps: float, audio: Path | None = None) -> None:
        self.video = VideoWriter(path, fps, audio=audio)
        self.tmp = self.video.tmp

    def write(self, frame: np.ndarray, labels: np.ndarray) -> None:
        self.video.write(overlay(frame, labels))

    def close(self) -> None:
        self.video.close()

    def abort(self) -> None:
        self.video.abort()
