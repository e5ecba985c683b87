"""Segmenting whole videos and data sets with a predictor; outputs written atomically."""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from lgdk.data.masks import MaskError, davis_palette, object_ids, read_mask, write_mask
from lgdk.errors import UserError
from lgdk.infer.background import BackgroundWriter, prefetch
from lgdk.infer.predictor import Streaming
from lgdk.infer.video_io import FrameSource, VideoWriter, open_frames

log = logging.getLogger(__name__)


class MaskProvider:
    """The given masks: one file (for the first frame) or a folder of PNGs named like the
    frames, each introducing objects at its frame."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise MaskError(f"mask {self.path} not found; give a PNG or a folder of PNGs")
        self.by_name = None
        if self.path.is_dir():
            self.by_name = {p.stem: p for p in self.path.glob("*.png")}
            if not self.by_name:
                raise MaskError(f"mask folder {self.path} holds no PNG masks")

    def get(self, index: int, name: str, shape: tuple[int, int]) -> np.ndarray | None:
        if self.by_name is None:
            path = self.path if index == 0 else None
        else:
            path = self.by_name.get(name)
        if path is None:
            return None
        ids = fit_mask(read_mask(path), shape, path)
        if not object_ids(ids):
            raise MaskError(f"{path} contains no object (every pixel is background); draw "
                            "at least one object in it")
        return ids

    def check_used(self, names: set[str]) -> None:
        if self.by_name is not None and not set(self.by_name) & names:
            raise MaskError(f"no mask in {self.path} is named like a frame (e.g. "
                            f"{sorted(names)[0]}.png)")


def fit_mask(ids: np.ndarray, shape: tuple[int, int], path: Path) -> np.ndarray:
    """Same size: as is. Same aspect ratio: nearest-neighbour resize, with a warning.
    Otherwise: refused."""
    if ids.shape == shape:
        return ids
    h, w = ids.shape
    if abs(h / w - shape[0] / shape[1]) > 0.01:
        raise MaskError(f"{path} is {w}x{h} but the frames are {shape[1]}x{shape[0]}; give "
                        "a mask of the frame's size (or at least its aspect ratio)")
    log.warning("%s is %dx%d, the frames %dx%d: resized (nearest neighbour)", path, w, h,
                shape[1], shape[0])
    return np.asarray(Image.fromarray(ids).resize((shape[1], shape[0]), Image.NEAREST))


def overlay(frame: np.ndarray, labels: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    colours = davis_palette()[labels].astype(np.float32)
    mixed = np.where(labels[..., None] > 0, frame * (1 - alpha) + colours * alpha, frame)
    return mixed.astype(np.uint8)


@dataclass
class Summary:
    frames: int
    objects: int
    seconds: float
    out_dir: Path

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        return (f"{self.frames} frames, {self.objects} object(s), {self.fps:.2f} fps -> "
                f"{self.out_dir}")


def segment_video(predictor: Streaming, source: FrameSource, masks: MaskProvider,
                  out_dir: Path, overlay_path: Path | None = None, save_probs: bool = False,
                  progress: bool = True) -> Summary:
    """Segment every frame; PNGs go to a temporary folder that replaces `out_dir` at the
    end, so an interrupted run leaves no partial output."""
    from tqdm import tqdm

    out_dir = Path(out_dir)
    partial = out_dir.with_name(f".{out_dir.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    writer = VideoWriter(overlay_path, source.fps) if overlay_path else None
    masks_out = BackgroundWriter()
    bar = tqdm(total=len(source) or None, unit="frame", disable=not progress,
               dynamic_ncols=True, desc=source.path.name)
    start, count, names = time.time(), 0, set()
    try:
        for index, (name, frame) in enumerate(prefetch(source)):
            names.add(name)
            mask = masks.get(index, name, frame.shape[:2])
            if mask is None and not predictor.object_ids:
                raise MaskError(f"frame {name} (the first) has no mask; give --mask for it")
            probs = predictor.step(frame, mask)
            labels = predictor.labels(probs)
            masks_out.submit(write_mask, partial / f"{name}.png", labels)
            if save_probs:
                _save_probs(partial / "probs", name, probs)
            if writer:
                writer.write(overlay(frame, labels))
            count += 1
            bar.update(1)
        masks_out.finish()
    except BaseException:
        bar.close()
        masks_out.abort()
        if writer:
            writer.abort()
        shutil.rmtree(partial, ignore_errors=True)
        raise
    bar.close()
    masks.check_used(names)
    if save_probs:  # channel k+1 of every saved array is object ids[k]
        (partial / "probs" / "object_ids.json").write_text(json.dumps(predictor.object_ids))
    if writer:
        writer.close()
    _publish(partial, out_dir)
    return Summary(count, len(predictor.object_ids), time.time() - start, out_dir)


def _save_probs(folder: Path, name: str, probs) -> None:
    folder.mkdir(exist_ok=True)
    np.save(folder / f"{name}.npy", probs.cpu().numpy().astype(np.float16))


def _publish(partial: Path, out_dir: Path) -> None:
    """Move the finished folder into place (merging into an existing folder)."""
    if not out_dir.exists():
        os.replace(partial, out_dir)
        return
    for item in partial.iterdir():
        target = out_dir / item.name
        if target.is_dir():
            shutil.rmtree(target)
        os.replace(item, target)
    partial.rmdir()


def segment_path(predictor: Streaming, input_path, mask_path, out_dir, overlay_path=None,
                 save_probs=False, progress=True) -> Summary:
    source = open_frames(input_path)
    masks = MaskProvider(mask_path)
    return segment_video(predictor, source, masks, Path(out_dir),
                         Path(overlay_path) if overlay_path else None, save_probs, progress)


def segment_dataset(make, root, out_dir, rank: int = 0, world: int = 1,
                    progress: bool = True) -> list[Summary]:
    """Every sequence of a DAVIS / YouTube-VOS layout; complete sequences are skipped,
    and with `world` processes, process `rank` takes every world-th sequence."""
    from lgdk.data.layouts import davis_sequences

    root, out_dir = Path(root), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summaries = []
    for seq in davis_sequences(root)[rank::world]:
        if (out_dir / seq).is_dir():
            continue
        annotations = root / "Annotations" / seq
        if not annotations.is_dir():
            raise UserError(f"sequence {seq} has no Annotations/{seq} folder of masks")
        predictor = make()
        summaries.append(segment_video(predictor, open_frames(root / "JPEGImages" / seq),
                                       MaskProvider(annotations_for(annotations, root, seq)),
                                       out_dir / seq, progress=progress))
    return summaries


def annotations_for(annotations: Path, root: Path, seq: str) -> Path:
    """DAVIS gives every frame's truth: use only the first frame's mask, plus masks of
    frames where new objects appear (YouTube-VOS gives only those)."""
    files = sorted(annotations.glob("*.png"))
    return files[0] if len(files) and _is_fully_annotated(files, root, seq) else annotations


def _is_fully_annotated(files: list[Path], root: Path, seq: str) -> bool:
    frames = [p for p in (root / "JPEGImages" / seq).iterdir() if not p.name.startswith(".")]
    return len(files) == len(frames)
