"""The live sessions of `lgdk app`, each in its own folder under the server's temporary
root: at most `max_sessions` of them (past it the least recently used idle one is
closed), one propagation queue and one disk budget for all, and the demo clip's frames
written once and shared read-only by every session that shows it."""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import threading
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
from PIL import Image

from lgdk.app.limits import AppSettings, DiskBudget, claim_root
from lgdk.app.queue import PropagationQueue
from lgdk.app.session import Session, SessionError
from lgdk.data.procedural import generate_clip
from lgdk.errors import UserError
from lgdk.video.video_io import FrameSource, open_frames

DEMO_FPS = 12.0
ENDED_KEPT = 4096  # ended sessions whose reason is still told


class AppBusy(UserError):
    """Every session is propagating or waiting to: no room for another page now."""


class Sessions:
    def __init__(self, make_predictor, settings: AppSettings) -> None:
        self.make_predictor, self.settings = make_predictor, settings
        self.root, self._root_lock = claim_root(settings.root)
        self.disk = DiskBudget(self.root, settings.disk_budget_mb, settings.min_free_mb)
        self.queue = PropagationQueue(settings.max_running)
        self.items: OrderedDict[str, Session] = OrderedDict()  # least recently used first
        self.ended: OrderedDict[str, str] = OrderedDict()  # sid -> why it ended
        self.lock = threading.Lock()
        self.demo, self.demo_source, self.demo_size = write_demo(self.root / "demo",
                                                                 settings.demo_frames)

    def create(self) -> tuple[str, Session]:
        self.expire()
        sid = secrets.token_urlsafe(16)
        session = Session(self.root / sid, self.make_predictor, self.settings, self.queue,
                          self.disk)
        with self.lock:
            victim = self._make_room()
            self.items[sid] = session
        if victim is not None:
            self._close(victim, "it was the least recently used of the "
                        f"{self.settings.max_sessions} pages this app keeps open")
        session.share(self.demo, self.demo_source, self.demo_size)
        return sid, session

    def _make_room(self) -> str | None:
        """The session to close so that one more fits (None: there is room); under the
        lock."""
        if len(self.items) < self.settings.max_sessions:
            return None
        for sid, session in self.items.items():
            if not session.progress.running:
                return sid
        raise AppBusy(f"the app is busy: all {self.settings.max_sessions} pages it keeps "
                      "open are propagating or waiting to; try again in a minute")

    def get(self, sid: str) -> Session:
        with self.lock:
            session = self.items.get(sid)
            if session is not None:
                self.items.move_to_end(sid)
            why = self.ended.get(sid, "it was idle too long, or closed")
        if session is None:
            raise SessionError(f"this page's session has ended ({why}); reload the page")
        session.last_used = time.monotonic()
        return session

    def close(self, sid: str) -> None:
        self._close(sid, "its page was closed")

    def _close(self, sid: str, why: str) -> None:
        with self.lock:
            session = self.items.pop(sid, None)
            if session is not None:
                self.ended[sid] = why
                while len(self.ended) > ENDED_KEPT:
                    self.ended.popitem(last=False)
        if session is not None:
            session.close()

    def expire(self) -> None:
        now, ttl = time.monotonic(), self.settings.session_minutes * 60
        with self.lock:
            old = [sid for sid, s in self.items.items()
                   if now - s.last_used > ttl and not s.progress.running]
        for sid in old:
            self._close(sid, f"it was idle for over {self.settings.session_minutes:g} "
                        "minutes")

    def shutdown(self) -> None:
        for sid in list(self.items):
            self._close(sid, "the app stopped")
        shutil.rmtree(self.root, ignore_errors=True)
        self._root_lock.close()


def demo_clip(count: int, seed: int = 7):
    """The bundled demo clip: two textured objects moving over a background."""
    return generate_clip(np.random.default_rng(seed), 360, 640, count, num_objects=2)


def write_demo(folder: Path, count: int) -> tuple[list[Path], FrameSource, tuple[int, int]]:
    """The demo clip's frames as read-only files: lossless PNGs the model reads, JPEGs
    for the page (as a session stores an upload's)."""
    (folder / "source").mkdir(parents=True)
    shown = []
    for index, frame in enumerate(demo_clip(count).frames):
        paths = (folder / "source" / f"{index:05d}.png", folder / f"{index:05d}.jpg")
        Image.fromarray(frame).save(paths[0], compress_level=1)
        Image.fromarray(frame).save(paths[1], quality=95, subsampling=0)
        for path in paths:
            os.chmod(path, stat.S_IRUSR | stat.S_IRGRP)
        shown.append(paths[1])
    source = open_frames(folder / "source")
    source.fps = DEMO_FPS
    return shown, source, frame.shape[:2]
