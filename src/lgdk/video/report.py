"""`lgdk segment --report report.json`: each frame's doubt (`lgdk.infer.doubt`), so
that a person knows where to correct next; written whole or not at all."""

from __future__ import annotations

import json
import os
from pathlib import Path

from lgdk.infer.doubt import ObjectMeasure, frame_doubts, worst_frames
from lgdk.video import preflight

WORST = 5  # frames listed as the ones to look at first


def check_report_path(path: Path) -> None:
    if path.suffix.lower() != ".json":
        raise preflight.OutputError(f"--report {path}: give a file name ending in .json")
    if path.is_dir():
        raise preflight.OutputError(f"--report {path} is a folder; give a file name like "
                                    "report.json")
    if not path.parent.is_dir():
        raise preflight.OutputError(f"--report {path}: folder {path.parent} does not exist; "
                                    "create it or give another path")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise preflight.OutputError(f"--report {path}: no permission to write in "
                                    f"{path.parent}")


def report(names: list[str], measures: list[list[ObjectMeasure] | None],
           given: set[int]) -> dict:
    """names and measures by frame number -> the report's content."""
    doubts = frame_doubts(measures, given)
    frames = []
    for name, doubt, objects in zip(names, doubts, measures):
        row = {"name": name, **doubt.to_dict()}
        row["objects"] = {str(m.object_id): {"certainty": round(m.certainty, 4),
                                             "area": round(m.area, 6)}
                          for m in objects or []}
        frames.append(row)
    return {"given": sorted(given), "worst": [d.frame for d in worst_frames(doubts, WORST)],
            "frames": frames}


def write_report(path: Path, content: dict) -> None:
    tmp = path.with_name(f".{path.name}.partial")
    try:
        tmp.write_text(json.dumps(content, indent=1))
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise preflight.write_failed(path, exc) from None
