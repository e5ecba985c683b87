"""What `lgdk app` allows: its settings (each default and help text written once here;
the command's flags are made from them), the disk budget, and the app's temporary root,
locked while the server runs so that the next start can remove what a killed server left.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from lgdk.config import MAX_OBJECTS
from lgdk.errors import UserError
from lgdk.prompts import DEFAULT_METHOD

ROOT_PREFIX = "lgdk-app-"
LOCK_NAME = ".lock"


def _setting(default, text: str, flag: bool = True):
    return field(default=default, metadata={"help": text, "flag": flag})


@dataclass(frozen=True)
class AppSettings:
    max_upload_mb: int = _setting(500, "largest upload a page may send, in MB")
    max_frames: int = _setting(3000, "longest video (in frames) a page may load")
    session_minutes: float = _setting(
        60.0, "an idle page's video and results are removed after this long")
    max_sessions: int = _setting(
        16, "live pages at most; past it the least recently used idle one is closed "
            "(each holds its video's frames on disk, none holds a model)")
    max_running: int = _setting(
        2, "propagations that run at once; the others wait in a queue (on 2 CPU cores, "
           "2 served six clients 1.4-1.6x faster than 1, and 3 or 6 no faster than 2)")
    disk_budget_mb: int = _setting(
        20000, "the app's temporary files (uploads, frames, results, downloads) at most, "
               "in MB")
    min_free_mb: int = _setting(
        1000, "an upload or download that would leave less free disk than this is refused")
    max_body_kb: int = _setting(
        512, "largest request body a page may send besides an upload, in KB")
    max_upload_parts: int = _setting(
        4, "parts of an upload's form at most (the file is one of them)")
    max_points: int = _setting(5000, "points in one brush stroke at most")
    max_radius: float = _setting(500.0, "widest brush radius, in the frame's pixels")
    max_clicks: int = _setting(100, "clicks on one object of one frame at most")
    max_objects: int = _setting(MAX_OBJECTS, "", flag=False)  # `lgdk app`: the model's
    prompt_method: str = _setting(DEFAULT_METHOD, "", flag=False)
    demo_frames: int = _setting(30, "", flag=False)
    root: Path | None = _setting(None, "", flag=False)  # default: a new temporary folder

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.metadata["flag"] and not value > 0:
                raise UserError(f"--{f.name.replace('_', '-')} must be positive, not {value}")


def add_app_flags(p: argparse.ArgumentParser) -> None:
    """One flag per `AppSettings` field marked as a flag, its default and help from there."""
    for f in dataclasses.fields(AppSettings):
        if f.metadata["flag"]:
            p.add_argument("--" + f.name.replace("_", "-"), type=type(f.default),
                           default=f.default, help=f"{f.metadata['help']} (default {f.default})")


def settings_from_args(args: argparse.Namespace) -> AppSettings:
    flags = {f.name for f in dataclasses.fields(AppSettings) if f.metadata["flag"]}
    return AppSettings(**{k: v for k, v in vars(args).items() if k in flags})


class DiskFull(UserError):
    """Too little disk left (or the app's budget spent) for what a page asked to store."""


class DiskBudget:
    """The app's folder may hold at most `budget` bytes and leave `margin` bytes free."""

    def __init__(self, root: Path, budget_mb: int, margin_mb: int) -> None:
        self.root, self.budget, self.margin = Path(root), budget_mb << 20, margin_mb << 20

    def used(self) -> int:
        total = 0
        for folder, _, files in os.walk(self.root):
            for name in files:
                try:
                    total += os.lstat(os.path.join(folder, name)).st_size
                except OSError:
                    pass  # removed meanwhile
        return total

    def check(self, more: int, what: str = "the upload") -> None:
        """Raise DiskFull when `more` further bytes would pass the budget or the margin."""
        free = shutil.disk_usage(self.root).free
        if free - more < self.margin:
            raise DiskFull(f"{what} needs about {_mb(more)} MB and the disk has {_mb(free)} "
                           f"MB free, under the {_mb(self.margin)} MB this app keeps free; "
                           "free some disk space (or try a shorter video)")
        used = self.used()
        if used + more > self.budget:
            raise DiskFull(f"{what} needs about {_mb(more)} MB and the app's files already "
                           f"take {_mb(used)} of its {_mb(self.budget)} MB; close other "
                           "pages, try a shorter video, or start the app with a larger "
                           "--disk-budget-mb")


def _mb(size: int) -> str:
    return f"{max(0, size) / (1 << 20):.1f}"


def claim_root(parent: Path | None = None) -> tuple[Path, object]:
    """A new temporary root for this server, locked for as long as the returned handle is
    open; first removes the roots of servers that are no longer running."""
    parent = Path(parent or tempfile.gettempdir())
    remove_stale_roots(parent)
    root = Path(tempfile.mkdtemp(prefix=ROOT_PREFIX, dir=parent))
    handle = open(root / LOCK_NAME, "w")  # noqa: SIM115 - held until the server stops
    _lock(handle)
    return root, handle


def remove_stale_roots(parent: Path) -> list[Path]:
    """Remove every `lgdk-app-*` folder under `parent` whose lock no live server holds."""
    removed = []
    for folder in sorted(Path(parent).glob(ROOT_PREFIX + "*")):
        lock = folder / LOCK_NAME
        if not folder.is_dir() or not lock.is_file():
            continue  # not one of ours, or one being created right now
        try:
            with open(lock, "a") as handle:
                if not _try_lock(handle):
                    continue  # its server is running
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
        except OSError:
            continue
    return removed


try:
    import fcntl

    def _lock(handle) -> None:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _try_lock(handle) -> bool:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True
except ImportError:  # Windows: no flock; a killed server's folder stays in TEMP
    def _lock(handle) -> None:
        pass

    def _try_lock(handle) -> bool:
        return False
