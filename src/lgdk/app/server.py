"""The HTTP side of `lgdk app`: one page (static/) and a small JSON API over `Session`s.

Each page load creates its own session (several tabs or users never share a video); a
session idle longer than `AppSettings.session_ttl` is closed and its folder removed.
Uploads are size-limited and written only under the app's temporary folder; the client
names frames by number, never by path.
"""

from __future__ import annotations

import io
import logging
import secrets
import shutil
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image

from lgdk.app.session import Session, SessionError
from lgdk.data.layouts import natural_key
from lgdk.data.procedural import generate_clip
from lgdk.prompts import DEFAULT_METHOD
from lgdk.video.cutout import parse_colour
from lgdk.video.sinks import overlay
from lgdk.video.video_io import VIDEO_EXTS, VideoError, open_frames

log = logging.getLogger(__name__)
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


@dataclass(frozen=True)
class AppSettings:
    max_upload_mb: int = 500
    max_frames: int = 3000
    session_ttl: float = 3600.0  # seconds a session may stay idle
    prompt_method: str = DEFAULT_METHOD
    demo_frames: int = 30


class Sessions:
    """The live sessions, each in its own folder under one temporary root."""

    def __init__(self, make_predictor, settings: AppSettings) -> None:
        self.make_predictor, self.settings = make_predictor, settings
        self.root = Path(tempfile.mkdtemp(prefix="lgdk-app-"))
        self.items: dict[str, Session] = {}
        self.lock = threading.Lock()

    def create(self) -> tuple[str, Session]:
        self.expire()
        sid = secrets.token_urlsafe(16)
        session = Session(self.root / sid, self.make_predictor, self.settings.prompt_method,
                          self.settings.max_frames)
        session.load(demo_frames(self.settings.demo_frames), fps=12.0)
        with self.lock:
            self.items[sid] = session
        return sid, session

    def get(self, sid: str) -> Session:
        with self.lock:
            session = self.items.get(sid)
        if session is None:
            raise SessionError("this session has ended (idle too long, or closed); reload "
                               "the page")
        session.last_used = time.monotonic()
        return session

    def close(self, sid: str) -> None:
        with self.lock:
            session = self.items.pop(sid, None)
        if session is not None:
            session.close()

    def expire(self) -> None:
        now = time.monotonic()
        with self.lock:
            old = [sid for sid, s in self.items.items()
                   if now - s.last_used > self.settings.session_ttl and not s.progress.running]
        for sid in old:
            self.close(sid)

    def shutdown(self) -> None:
        for sid in list(self.items):
            self.close(sid)
        shutil.rmtree(self.root, ignore_errors=True)


def demo_frames(count: int, seed: int = 7):
    """The bundled demo clip: two textured objects moving over a background."""
    clip = generate_clip(np.random.default_rng(seed), 360, 640, count, num_objects=2)
    return iter(clip.frames)


def load_upload(session: Session, upload: Path, name: str) -> None:
    """A video file, or a zip of frames (image files, any folders inside ignored). Errors
    name the client's file, not the server's folders."""
    try:
        _load_upload(session, upload, name)
    except VideoError as exc:
        text = str(exc).replace(str(upload.with_suffix(Path(name).suffix.lower())), name)
        raise VideoError(text.replace(str(upload.parent), "the upload")) from None


def _load_upload(session: Session, upload: Path, name: str) -> None:
    suffix = Path(name).suffix.lower()
    if suffix == ".zip":
        folder = upload.parent / "unzipped"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        try:
            with zipfile.ZipFile(upload) as archive:
                members = [m for m in archive.infolist() if not m.is_dir()
                           and Path(m.filename).suffix.lower() in IMAGE_EXTS]
                if not members:
                    raise VideoError(f"{name} holds no frames ({', '.join(IMAGE_EXTS)})")
                if sum(m.file_size for m in members) > 4 * upload.stat().st_size + (64 << 20):
                    raise VideoError(f"{name} unpacks to far more than its size; give the "
                                     "frames as a plain zip of images")
                for i, member in enumerate(sorted(members, key=lambda m: natural_key(
                        Path(m.filename)))):  # only the name's last part is used
                    target = folder / f"{i:05d}{Path(member.filename).suffix.lower()}"
                    target.write_bytes(archive.read(member))
        except zipfile.BadZipFile:
            raise VideoError(f"{name} is not a readable zip file") from None
        session.load_source(open_frames(folder))
        return
    if suffix not in VIDEO_EXTS:
        raise VideoError(f"{name}: give a video ({', '.join(VIDEO_EXTS)}) or a zip of frames")
    target = upload.with_suffix(suffix)
    upload.rename(target)
    session.load_source(open_frames(target))


def mask_png(labels: np.ndarray | None, size: tuple[int, int]) -> bytes:
    """The mask as a colour layer (RGBA PNG) for the page's canvas: each object in its
    DAVIS colour (brightened), half transparent inside, opaque along its outline."""
    if labels is None:
        labels = np.zeros(size, np.uint8)
    colours = overlay(np.zeros((*labels.shape, 3), np.uint8), labels, alpha=1.0)
    colours = np.minimum(colours.astype(np.int32) * 2, 255).astype(np.uint8)
    edge = np.zeros(labels.shape, bool)
    edge[1:] |= labels[1:] != labels[:-1]
    edge[:-1] |= labels[1:] != labels[:-1]
    edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    edge[:, :-1] |= labels[:, 1:] != labels[:, :-1]
    alpha = np.where(labels > 0, np.where(edge, 255, 120), 0).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(np.dstack([colours, alpha])).save(buffer, format="PNG")
    return buffer.getvalue()


def static_file(name: str) -> bytes:
    return (resources.files("lgdk") / "app" / "static" / name).read_bytes()


def create_app(make_predictor, settings: AppSettings | None = None):
    """The FastAPI application (routes in `lgdk.app.routes`)."""
    from lgdk.app.routes import build

    return build(Sessions(make_predictor, settings or AppSettings()))


def check_colour(text: str | None) -> tuple[int, int, int] | None:
    return parse_colour(text) if text else None
