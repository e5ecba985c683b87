"""Segmenting a video from boxes and clicks on one of its frames: the prompts become that
frame's mask (`lgdk.prompts`), which then starts the propagation as a given mask would;
frames before it have no object yet. The mask is kept as OUT/prompt_mask.png."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from lgdk.data.masks import write_mask
from lgdk.prompts import DEFAULT_METHOD, mask_from_object_prompts
from lgdk.prompts.spec import ObjectPrompt
from lgdk.video.engine import MaskProvider, Summary, segment_video
from lgdk.video.sinks import VideoOutputs
from lgdk.video.video_io import VideoError, open_frames

PROMPT_MASK = "prompt_mask.png"


def frame_at(source, index: int):
    """(name, frame) of frame `index` of a FrameSource."""
    count = 0
    for count, item in enumerate(source, start=1):
        if count - 1 == index:
            return item
    raise VideoError(f"--prompt-frame {index}: {source.path} has only {count} frames; give "
                     f"a frame number below {count}")


def segment_from_prompts(make_predictor, input_path, prompts: list[ObjectPrompt], out_dir,
                         frame_index: int = 0, method: str = DEFAULT_METHOD,
                         outputs: VideoOutputs | None = None, save_probs: bool = False,
                         progress: bool = True, max_objects: int = 32) -> Summary:
    """make_predictor() -> a fresh predictor (for the prompt's refinement and the video)."""
    if frame_index < 0:
        raise VideoError(f"--prompt-frame must be 0 or more, not {frame_index}")
    source = open_frames(input_path)
    name, frame = frame_at(source, frame_index)
    ids = mask_from_object_prompts(frame, prompts, method, max_objects, make_predictor)
    folder = Path(tempfile.mkdtemp(prefix="lgdk-prompt-"))
    try:
        write_mask(folder / f"{name}.png", ids)
        summary = segment_video(make_predictor(), open_frames(input_path), MaskProvider(folder),
                                Path(out_dir), outputs, save_probs, progress)
        write_mask(Path(out_dir) / PROMPT_MASK, ids)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return summary
