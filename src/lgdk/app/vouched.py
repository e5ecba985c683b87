"""What a correction changes: a frame the user edited vouches for the objects edited
there, and no others. Propagation takes those others as void on that frame (predicted
again, not frozen as given), and the frames it reaches keep the others' masks as they
were: a correction of one person never moves another."""

from __future__ import annotations

import numpy as np

from lgdk.data.masks import only_objects
from lgdk.infer.doubt import ObjectMeasure
from lgdk.video.job import AGREE_IOU, Result, labels_agree


def vouched_mask(mask: np.ndarray, objects: set[int] | None) -> np.ndarray:
    """A given (H, W) mask as propagation takes it: objects not in `objects` (None: all
    are) void."""
    return mask if objects is None else only_objects(mask, objects)


def merged(old: np.ndarray | None, result: Result, old_measures: list[ObjectMeasure],
           objects: set[int] | None) -> tuple[np.ndarray, list[ObjectMeasure]]:
    """A propagated frame's labels and measures: those of `objects` (the ones edited on
    the given frame it comes from; None: all) new, the others' as they were (`old`)."""
    if objects is None or old is None:
        return result.labels, result.measures or []
    labels = np.where(np.isin(old, list(objects)), 0, old).astype(np.uint8)
    take = np.isin(result.labels, list(objects))
    labels[take] = result.labels[take]
    measures = [m for m in result.measures or [] if m.object_id in objects]
    measures += [m for m in old_measures if m.object_id not in objects]
    return labels, measures


def unchanged(old: np.ndarray | None, new: np.ndarray, objects: set[int] | None) -> bool:
    """Whether `new` shows `objects` (None: all) as `old` did."""
    if old is None:
        return False
    if objects is not None:
        old, new = (only_objects(x, objects, rest=0) for x in (old, new))
    return labels_agree(old, new, AGREE_IOU)
