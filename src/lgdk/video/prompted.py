"""Segmenting a video from boxes and clicks on one of its frames: the prompts become that
frame's mask (`lgdk.prompts`) when the video job first reads the frame, and propagation
goes from there both ways, as from a given mask. The mask is kept as
OUT/prompt_mask.png."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lgdk.config import MAX_OBJECTS
from lgdk.data.masks import write_mask
from lgdk.prompts import DEFAULT_METHOD, mask_from_object_prompts
from lgdk.prompts.spec import ObjectPrompt
from lgdk.video.engine import Summary, segment_video
from lgdk.video.sinks import VideoOutputs
from lgdk.video.video_io import FrameSource, VideoError, open_frames

PROMPT_MASK = "prompt_mask.png"


def segment_from_prompts(make_predictor, input_path, prompts: list[ObjectPrompt], out_dir,
                         frame_index: int = 0, method: str = DEFAULT_METHOD,
                         outputs: VideoOutputs | None = None, save_probs: bool = False,
                         progress: bool = True, max_objects: int = MAX_OBJECTS,
                         direction: str = "both", make_refiner=None) -> Summary:
    """make_predictor() -> a fresh predictor for each pass, and for the prompt's
    refinement unless make_refiner() gives another (one that does not adapt: adapting to
    the mask it refines teaches the network nothing); `input_path` is a video file or
    folder, or one already opened (`open_frames`)."""
    if frame_index < 0:
        raise VideoError(f"--prompt-frame must be 0 or more, not {frame_index}")
    source = input_path if isinstance(input_path, FrameSource) else open_frames(input_path)
    made: list[np.ndarray] = []

    def prompt_mask(frame: np.ndarray) -> np.ndarray:
        made.append(mask_from_object_prompts(frame, prompts, method, max_objects,
                                             make_refiner or make_predictor))
        return made[-1]

    summary = segment_video(make_predictor, source, None, Path(out_dir),
                            outputs, save_probs, progress, direction, {frame_index: prompt_mask})
    write_mask(Path(out_dir) / PROMPT_MASK, made[-1])
    return summary
