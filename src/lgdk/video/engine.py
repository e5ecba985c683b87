"""Segmenting whole videos and data sets with a predictor; outputs written atomically."""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lgdk.data.layouts import natural_key
from lgdk.data.masks import write_mask
from lgdk.errors import UserError
from lgdk.infer.predictor import Streaming
from lgdk.video import preflight
from lgdk.video.background import BackgroundWriter
from lgdk.video.given_masks import MaskProvider
from lgdk.video.job import Given, VideoJob
from lgdk.video.report import report, write_report
from lgdk.video.sinks import VideoOutputs
from lgdk.video.video_io import FrameSource, open_frames

log = logging.getLogger(__name__)


@dataclass
class Summary:
    frames: int
    objects: int
    seconds: float
    out_dir: Path
    incomplete: str | None = None  # why decoding stopped before the video's end

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        return (f"{self.frames} frames, {self.objects} object(s), {self.fps:.2f} fps -> "
                f"{self.out_dir}")


def check_before_start(source: FrameSource, masks: MaskProvider | None, out_dir: Path,
                       outputs: VideoOutputs, save_probs: bool) -> None:
    """Everything that can be checked before the first frame (`lgdk.video.preflight`)."""
    names = [f.stem for f in source.files] if source.files is not None else None
    preflight.check_output_folder(out_dir)
    preflight.check_not_an_input(out_dir, source.path, masks.path if masks else None, names)
    outputs.check()
    if source.size is None:
        return  # a video: its frame size is known only once it decodes
    first = names[0] if names else "00000"
    objects = masks.check(source.size, first, set(names) if names else None) if masks else 1
    needed = preflight.expected_output_bytes(len(source), *source.size, objects, save_probs,
                                             outputs.overlay is not None)
    preflight.check_free_space(out_dir, needed)


def _write_mask(path: Path, labels: np.ndarray) -> None:
    try:
        write_mask(path, labels)
    except OSError as exc:
        raise preflight.write_failed(path, exc) from None


def segment_video(predictor: Streaming | Callable[[], Streaming], source: FrameSource,
                  masks: MaskProvider | None, out_dir: Path,
                  outputs: VideoOutputs | None = None, save_probs: bool = False,
                  progress: bool = True, direction: str = "both",
                  given: dict[int, Given] | None = None) -> Summary:
    """Segment every frame (`lgdk.video.job`: from each given frame forwards and, unless
    `direction` says otherwise, backwards). `predictor`: a function that makes fresh
    predictors (one a pass), or one predictor where one pass does. `given`: masks (or
    functions of the frame that make them) by frame number, besides `masks`.

    PNGs go to a temporary folder that replaces `out_dir` at the end, so an interrupted
    or failed run leaves no partial output. A video that stops decoding early gives the
    masks of the frames that decoded, and says so in the summary's `incomplete`."""
    out_dir, outputs = Path(out_dir), outputs or VideoOutputs()
    check_before_start(source, masks, out_dir, outputs, save_probs)
    job = VideoJob(source, _factory(predictor))
    job.keep_probs = save_probs
    job.keep_measures = outputs.report is not None
    for index, mask in {**_given_masks(masks, source), **(given or {})}.items():
        job.give(index, mask)
    partial = out_dir.with_name(f".{out_dir.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        partial.mkdir(parents=True)
        sinks = outputs.open(source.fps, source.path if source.files is None else None)
    except OSError as exc:
        job.close()
        raise preflight.write_failed(partial, exc) from None
    try:
        count, names, ids, seconds, measures = _write_results(job, direction, partial, sinks,
                                                              progress, save_probs)
        if masks is not None:
            masks.check_used(set(names))
        _publish(partial, out_dir)
        if outputs.report is not None:
            write_report(outputs.report, report(names, measures, set(job.given)))
    except BaseException:
        for sink in sinks:
            sink.abort()
        shutil.rmtree(partial, ignore_errors=True)
        raise
    finally:
        job.close()
    return Summary(count, len(ids), seconds, out_dir, _incomplete(source))


def _write_results(job: VideoJob, direction: str, partial: Path, sinks: list,
                   progress: bool, save_probs: bool):
    """Every frame's mask (and probabilities, overlay, cut-out), in frame order."""
    from tqdm import tqdm

    masks_out = BackgroundWriter()
    source = job.frames.source
    bar = tqdm(total=len(source) or None, unit="frame", disable=not progress,
               dynamic_ncols=True, desc=source.path.name)
    start, count, names, saved, ids, measures = time.time(), 0, [], {}, set(), []
    try:
        for result in job.propagate(direction):
            names.append(result.name)
            measures.append(result.measures)
            ids.update(result.object_ids)
            masks_out.submit(_write_mask, partial / f"{result.name}.png", result.labels)
            if save_probs and result.probs is not None:
                saved[result.name] = _save_probs(partial / "probs", result)
            for sink in sinks:
                _write_frame(sink, result.frame, result.labels)
            count += 1
            bar.update(1)
        masks_out.finish()
    except BaseException:
        masks_out.abort()
        raise
    finally:
        bar.close()
    _finish_outputs(partial, sinks, saved, sorted(ids) if save_probs else None)
    return count, names, sorted(ids), time.time() - start, measures


def _factory(predictor) -> Callable[[], Streaming]:
    if not isinstance(predictor, Streaming):
        return predictor
    made = []

    def once() -> Streaming:
        if made:
            raise UserError("this video needs more than one pass (a backward one from a "
                            "mask after frame 0, or several given frames): give a function "
                            "that makes predictors, or direction='forward'")
        made.append(predictor)
        return predictor

    return once


def _given_masks(masks: MaskProvider | None, source: FrameSource) -> dict[int, Given]:
    """The given masks by frame number: a file is frame 0's; a folder's PNGs are named
    like the frames (a video's frames are 00000, 00001, ...). Each is read (and checked)
    when its frame is reached."""
    if masks is None:
        return {}
    if masks.by_name is None:
        names = {"00000" if source.files is None else source.files[0].stem: 0}
    elif source.files is not None:
        names = {f.stem: i for i, f in enumerate(source.files)}
    else:
        names = {n: int(n) for n in masks.by_name if n.isdigit() and len(n) >= 5}
    return {index: functools.partial(_read_given, masks, index, name)
            for name, index in names.items()
            if masks.by_name is None or name in masks.by_name}


def _read_given(masks: MaskProvider, index: int, name: str, frame: np.ndarray) -> np.ndarray:
    return masks.get(index, name, frame.shape[:2])


def _incomplete(source: FrameSource) -> str | None:
    if source.first_undecodable is None:
        return None
    return (f"{source.path}: frame {source.first_undecodable} and after could not be decoded "
            f"({source.decode_problem}); masks were written for frames 0-"
            f"{source.first_undecodable - 1} only")


def _write_frame(sink, frame: np.ndarray, labels: np.ndarray) -> None:
    try:
        sink.write(frame, labels)
    except OSError as exc:
        raise preflight.write_failed(sink.tmp, exc) from None


def _finish_outputs(partial: Path, sinks: list, saved: dict[str, list[int]],
                    object_ids: list[int] | None) -> None:
    """The overlay and cut-out closed; the probabilities' id list written (channel k+1 of
    every saved array is object ids[k]; an array made before an object was known gets a
    zero channel for it)."""
    try:
        if object_ids is not None and saved:
            folder = partial / "probs"
            for name, ids in saved.items():
                if ids != object_ids:
                    _widen(folder / f"{name}.npy", ids, object_ids)
            (folder / "object_ids.json").write_text(json.dumps(object_ids))
        for sink in sinks:
            sink.close()
    except OSError as exc:
        raise preflight.write_failed(partial, exc) from None


def _widen(path: Path, ids: list[int], object_ids: list[int]) -> None:
    probs = np.load(path)
    wide = np.zeros((1 + len(object_ids), *probs.shape[1:]), probs.dtype)
    wide[0] = probs[0]
    for k, object_id in enumerate(ids):
        wide[1 + object_ids.index(object_id)] = probs[1 + k]
    np.save(path, wide)


def _save_probs(folder: Path, result) -> list[int]:
    """The result's probabilities, channels by ascending object id; -> those ids."""
    order = sorted(range(len(result.object_ids)), key=lambda k: result.object_ids[k])
    probs = result.probs[[0, *(1 + k for k in order)]]
    path = folder / f"{result.name}.npy"
    try:
        folder.mkdir(exist_ok=True)
        np.save(path, probs.astype(np.float16))
    except OSError as exc:
        raise preflight.write_failed(path, exc) from None
    return [result.object_ids[k] for k in order]


def _publish(partial: Path, out_dir: Path) -> None:
    """Move the finished folder into place (merging into an existing folder)."""
    try:
        if not out_dir.exists():
            out_dir.parent.mkdir(parents=True, exist_ok=True)
            os.replace(partial, out_dir)
            return
        for item in partial.iterdir():
            target = out_dir / item.name
            if target.is_dir():
                shutil.rmtree(target)
            os.replace(item, target)
        partial.rmdir()
    except OSError as exc:
        raise preflight.write_failed(out_dir, exc) from None


def segment_path(predictor, input_path, mask_path, out_dir, overlay_path=None,
                 save_probs=False, progress=True, cutout=None, background=None,
                 direction: str = "both", report=None) -> Summary:
    outputs = VideoOutputs(Path(overlay_path) if overlay_path else None,
                           Path(cutout) if cutout else None, background,
                           Path(report) if report else None)
    return segment_video(predictor, open_frames(input_path), MaskProvider(mask_path),
                         Path(out_dir), outputs, save_probs, progress, direction)


def segment_dataset(make, root, out_dir, rank: int = 0, world: int = 1,
                    progress: bool = True) -> list[Summary]:
    """Every sequence of a DAVIS / YouTube-VOS layout; complete sequences are skipped,
    and with `world` processes, process `rank` takes every world-th sequence."""
    from lgdk.data.layouts import davis_sequences

    root, out_dir = Path(root), Path(out_dir)
    preflight.check_output_folder(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summaries = []
    for seq in davis_sequences(root)[rank::world]:
        if (out_dir / seq).is_dir():
            continue
        annotations = root / "Annotations" / seq
        if not annotations.is_dir():
            raise UserError(f"sequence {seq} has no Annotations/{seq} folder of masks")
        summaries.append(segment_video(make, open_frames(root / "JPEGImages" / seq),
                                       MaskProvider(annotations_for(annotations, root, seq)),
                                       out_dir / seq, progress=progress,
                                       direction="forward"))  # the benchmarks' protocol
    return summaries


def annotations_for(annotations: Path, root: Path, seq: str) -> Path:
    """DAVIS gives every frame's truth: use only the first frame's mask, plus masks of
    frames where new objects appear (YouTube-VOS gives only those)."""
    files = sorted(annotations.glob("*.png"), key=natural_key)
    return files[0] if len(files) and _is_fully_annotated(files, root, seq) else annotations


def _is_fully_annotated(files: list[Path], root: Path, seq: str) -> bool:
    frames = [p for p in (root / "JPEGImages" / seq).iterdir() if not p.name.startswith(".")]
    return len(files) == len(frames)
