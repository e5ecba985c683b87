"""Checks made before the first frame is processed, so that a run never fails at its end
for a reason that was visible at its start; and write errors turned into clear ones."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from lgdk.errors import UserError

MASK_BYTES_PER_PIXEL = 0.1  # indexed PNG masks take ~0.01-0.05 bytes a pixel: 2x margin
OVERLAY_BYTES_PER_PIXEL = 0.05  # H.264 overlay videos, generously
PROB_BYTES_PER_PIXEL = 2  # float16 probabilities, per channel (background + objects)


class OutputError(UserError):
    """The output cannot be written (path, permissions, disk space)."""


def existing_ancestor(path: Path) -> Path:
    """`path` itself or the nearest folder above it that exists."""
    path = Path(os.path.abspath(path))
    while not path.exists():
        path = path.parent
    return path


def check_output_folder(out_dir: Path) -> None:
    """`out_dir` must be a folder or creatable as one, in a place we may write."""
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"--out {out_dir} is a file, not a folder; give a folder path "
                          "(it is created when missing)")
    base = existing_ancestor(out_dir)
    if not base.is_dir():
        raise OutputError(f"--out {out_dir}: {base} is a file, so no folder can be made "
                          "there; give another folder path")
    if not os.access(base, os.W_OK | os.X_OK):
        raise OutputError(f"--out {out_dir}: no permission to write in {base}; give a "
                          "folder you can write to")


def check_not_an_input(out_dir: Path, frames: Path, mask: Path | None,
                       frame_names: list[str] | None) -> None:
    """Masks written into the frames' folder or the given masks' folder (or beside a
    given mask named like a frame) would overwrite the inputs."""
    target = Path(os.path.realpath(out_dir))
    inputs = [frames, mask] if mask is not None and mask.is_dir() else [frames]
    if mask is not None and not mask.is_dir() and (frame_names is None
                                                    or mask.stem in frame_names):
        inputs.append(mask.parent)
    for path in inputs:
        if path.is_dir() and target == Path(os.path.realpath(path)):
            raise OutputError(f"--out {out_dir} is the folder of the input {path}: the masks "
                              "would overwrite its files; give another folder")


def check_overlay_path(path: Path) -> None:
    from lgdk.video.video_io import VIDEO_EXTS

    if path.suffix.lower() not in VIDEO_EXTS:
        raise OutputError(f"--overlay {path}: give a video file name ending in one of "
                          f"{', '.join(VIDEO_EXTS)}")
    if path.is_dir():
        raise OutputError(f"--overlay {path} is a folder; give a video file name like "
                          "overlay.mp4")
    if not path.parent.is_dir():
        raise OutputError(f"--overlay {path}: folder {path.parent} does not exist; create "
                          "it or give another path")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise OutputError(f"--overlay {path}: no permission to write in {path.parent}")


def check_report_path(flag: str, path: Path) -> None:
    """A results file (--json, --csv) can be written where asked."""
    if path.is_dir():
        raise OutputError(f"{flag} {path} is a folder; give a file name")
    base = existing_ancestor(path.parent)
    if not base.is_dir() or not os.access(base, os.W_OK | os.X_OK):
        raise OutputError(f"{flag} {path}: cannot write in {base}; give another path")


def expected_output_bytes(frames: int, height: int, width: int, objects: int,
                          save_probs: bool, overlay: bool) -> int:
    per_pixel = MASK_BYTES_PER_PIXEL
    if save_probs:
        per_pixel += PROB_BYTES_PER_PIXEL * (1 + objects)
    if overlay:
        per_pixel += OVERLAY_BYTES_PER_PIXEL
    return int(frames * height * width * per_pixel)


def check_free_space(folder: Path, needed: int) -> None:
    base = existing_ancestor(folder)
    free = shutil.disk_usage(base).free
    if free < needed:
        raise OutputError(f"the outputs need about {needed / 1e6:.1f} MB but {base} has "
                          f"{free / 1e6:.1f} MB free; free some space or give --out on "
                          "another disk")


def write_failed(path: Path, exc: OSError) -> OutputError:
    """A clear error for a write that failed mid-run (disk full, removed folder, ...)."""
    reason = exc.strerror or str(exc)
    return OutputError(f"writing {path} failed: {reason}; nothing of this run was kept "
                       "(earlier complete outputs are untouched); free some space or give "
                       "--out elsewhere and run again")
