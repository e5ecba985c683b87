"""Region (J) and boundary (F) measures, as the official DAVIS toolkit computes them."""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import distance_transform_edt


def jaccard(pred: np.ndarray, gt: np.ndarray, void: np.ndarray | None = None) -> float:
    """|P ∩ G| / |P ∪ G| over non-void pixels; 1 when the union is empty."""
    pred, gt = pred.astype(bool), gt.astype(bool)
    if void is not None:
        pred, gt = pred & ~void, gt & ~void
    union = np.logical_or(pred, gt).sum()
    if union == 0:
        return 1.0
    return float(np.logical_and(pred, gt).sum() / union)


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """One-pixel boundary: pixels that differ from their right, bottom or bottom-right
    neighbour; the last row compares only to the right, the last column only below, and
    the bottom-right corner is never boundary (the toolkit's seg2bmap at equal size)."""
    seg = mask.astype(bool)
    east = np.zeros_like(seg)
    south = np.zeros_like(seg)
    south_east = np.zeros_like(seg)
    east[:, :-1] = seg[:, 1:]
    south[:-1, :] = seg[1:, :]
    south_east[:-1, :-1] = seg[1:, 1:]
    bmap = (seg ^ east) | (seg ^ south) | (seg ^ south_east)
    bmap[-1, :] = seg[-1, :] ^ east[-1, :]
    bmap[:, -1] = seg[:, -1] ^ south[:, -1]
    bmap[-1, -1] = False
    return bmap


def disk(radius: int) -> np.ndarray:
    """A disk structuring element: offsets with x² + y² <= r² (skimage's `disk`)."""
    y, x = np.ogrid[-radius : radius + 1, -radius : radius + 1]
    return (x * x + y * y) <= radius * radius


def dilate(bmap: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation by `disk(radius)`: a pixel is set when some set pixel lies within
    Euclidean distance `radius`, which the exact distance transform gives in O(pixels)."""
    return distance_transform_edt(~bmap) <= radius


def tolerance_radius(shape: tuple[int, int], fraction: float = 0.008) -> int:
    return int(math.ceil(fraction * math.hypot(shape[0], shape[1])))


def f_measure(pred: np.ndarray, gt: np.ndarray, void: np.ndarray | None = None,
              bound_th: float = 0.008) -> float:
    """Boundary F: precision and recall of boundary pixels within a disk tolerance."""
    pred, gt = pred.astype(bool), gt.astype(bool)
    if void is not None:
        pred, gt = pred & ~void, gt & ~void
    radius = tolerance_radius(pred.shape, bound_th) if bound_th < 1 else int(bound_th)
    pred_b, gt_b = boundary_map(pred), boundary_map(gt)
    n_pred, n_gt = int(pred_b.sum()), int(gt_b.sum())
    if n_pred == 0 and n_gt == 0:
        return 1.0
    if n_pred == 0 or n_gt == 0:
        return 0.0
    gt_dil = dilate(gt_b, radius)
    pred_dil = dilate(pred_b, radius)
    precision = float((pred_b & gt_dil).sum()) / n_pred
    recall = float((gt_b & pred_dil).sum()) / n_gt
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def decay_bins(n: int, bins: int = 4) -> list[tuple[int, int]]:
    """The toolkit's bins: ids = round(linspace(1, n, bins + 1)) - 1; bin i spans
    ids[i]..ids[i+1] inclusive."""
    ids = (np.round(np.linspace(1, n, bins + 1) + 1e-10) - 1).astype(int)
    return [(int(ids[i]), int(ids[i + 1]) + 1) for i in range(bins)]


def statistics(values: np.ndarray) -> tuple[float, float, float]:
    """Mean, Recall (fraction > 0.5) and Decay (first-bin mean minus last-bin mean)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(np.mean(values))
    recall = float(np.mean(values > 0.5))
    bins = decay_bins(len(values))
    first, last = values[slice(*bins[0])], values[slice(*bins[-1])]
    decay = float(np.mean(first) - np.mean(last))
    return mean, recall, decay
