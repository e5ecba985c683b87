"""The app's downloads, built on demand from a session's frames and masks: the masks as a
zip of indexed PNGs, the overlay video, the cut-out (WebM with alpha, ProRes 4444, RGBA
PNGs, or on a colour). Each checks the session's disk budget first."""

from __future__ import annotations

import zipfile
from pathlib import Path

from lgdk.data.masks import write_mask
from lgdk.errors import UserError
from lgdk.video.cutout import CutoutWriter
from lgdk.video.sinks import OverlayWriter

KINDS = ("overlay", "cutout", "cutout_mov", "cutout_png")


class DownloadError(UserError):
    pass


def masks_zip(session) -> Path:
    path = _output(session, "masks.zip")
    with zipfile.ZipFile(path, "w") as archive:
        for index, labels in enumerate(session.final_labels()):
            png = session.folder / "outputs" / "mask.png"
            write_mask(png, labels)
            archive.write(png, f"{index:05d}.png")
    return path


def video(session, kind: str, background: tuple[int, int, int] | None = None) -> Path:
    """kind: 'overlay' (mp4), 'cutout' (transparent WebM, or an mp4 on `background`),
    'cutout_mov' (ProRes 4444 with alpha), 'cutout_png' (a zip of RGBA PNGs). Videos
    carry the upload's frame rate and sound."""
    sound = session.store.sound()
    if kind == "overlay":
        path = _output(session, "overlay.mp4")
        sink = OverlayWriter(path, session.fps, sound)
    elif kind in ("cutout", "cutout_mov"):
        name = "cutout.mov" if kind == "cutout_mov" else "cutout.webm" if \
            background is None else "cutout.mp4"
        path = _output(session, name, factor=4 if kind == "cutout_mov" else 1)
        sink = CutoutWriter.open(path, session.fps, background, audio=sound)
    elif kind == "cutout_png":
        path = _output(session, "cutout_png", factor=8)  # RGBA PNGs, then their zip
        sink = CutoutWriter.open(path, session.fps)
    else:
        raise DownloadError(f"unknown download '{kind}'")
    try:
        for frame, labels in zip(session.store.frames(), session.final_labels()):
            sink.write(frame, labels)
        sink.close()
    except BaseException:
        sink.abort()
        raise
    if kind != "cutout_png":
        return path
    archive = path.with_suffix(".zip")
    with zipfile.ZipFile(archive, "w") as out:
        for png in sorted(path.glob("*.png")):
            out.write(png, png.name)
    return archive


def _output(session, name: str, factor: int = 1) -> Path:
    """The path of a download; `factor`: its size in frames' JPEG sizes, at most."""
    if not session.frames:
        raise DownloadError("no video loaded")
    if session.disk is not None:
        size = sum(p.stat().st_size for p in session.frames)
        session.disk.check(factor * size, "the download")
    (session.folder / "outputs").mkdir(exist_ok=True)
    return session.folder / "outputs" / name

