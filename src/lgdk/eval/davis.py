"""Semi-supervised DAVIS evaluation (and a YouTube-VOS style seen/unseen summary)."""

from __future__ import annotations

import multiprocessing
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lgdk.data.masks import VOID, MaskError, read_mask
from lgdk.errors import UserError
from lgdk.eval.metrics import f_measure, jaccard, statistics


class EvalError(UserError):
    pass


@dataclass(frozen=True)
class SequenceJob:
    name: str
    pred_dir: Path
    gt_dir: Path
    youtube: bool = False  # objects may appear mid-video; score each from its next frame


def _read(path: Path, seq: str) -> np.ndarray:
    try:
        return read_mask(path)
    except MaskError as exc:
        raise EvalError(f"sequence {seq}: {exc}") from None


def _gt_frames(job: SequenceJob) -> list[Path]:
    frames = sorted(job.gt_dir.glob("*.png"))
    if not frames:
        raise EvalError(f"sequence {job.name}: no PNG masks in {job.gt_dir}")
    return frames


def _check_pred_folder(job: SequenceJob) -> None:
    if not job.pred_dir.is_dir():
        raise EvalError(f"sequence {job.name}: no predictions at {job.pred_dir}; run "
                        "`lgdk segment` for it or leave it out with --sequences")
    others = [p.name for p in job.pred_dir.iterdir()
              if p.is_file() and p.suffix.lower() != ".png" and not p.name.startswith(".")]
    if others:
        raise EvalError(f"sequence {job.name}: non-PNG file(s) in {job.pred_dir}: "
                        f"{', '.join(sorted(others)[:3])}; predictions must be PNG masks")


def evaluate_sequence(job: SequenceJob) -> dict:
    """Per-object J and F series for one sequence: {id: {"J": [...], "F": [...]}}."""
    _check_pred_folder(job)
    gt_paths = _gt_frames(job)
    gts = [_read(p, job.name) for p in gt_paths]
    if job.youtube:
        ids = sorted({int(v) for g in gts for v in np.unique(g) if v not in (0, VOID)})
        first_seen = {i: next(t for t, g in enumerate(gts) if (g == i).any()) for i in ids}
        frames = range(1, len(gts))
    else:
        n = int(max((v for v in np.unique(gts[0]) if v != VOID), default=0))
        ids, first_seen = list(range(1, n + 1)), dict.fromkeys(range(1, n + 1), 0)
        frames = range(1, len(gts) - 1)
    series = {i: {"J": [], "F": []} for i in ids}
    for t in frames:
        pred_path = job.pred_dir / gt_paths[t].name
        if not pred_path.is_file():
            raise EvalError(f"sequence {job.name}: predicted frame {pred_path.name} is "
                            f"missing from {job.pred_dir}")
        pred, gt = _read(pred_path, job.name), gts[t]
        if pred.shape != gt.shape:
            raise EvalError(f"sequence {job.name}, frame {pred_path.name}: prediction is "
                            f"{pred.shape[1]}x{pred.shape[0]}, ground truth "
                            f"{gt.shape[1]}x{gt.shape[0]}; predict at the original size")
        extra = sorted(set(np.unique(pred).tolist()) - set(ids) - {0, VOID})
        if extra:
            raise EvalError(f"sequence {job.name}, frame {pred_path.name}: predicted object "
                            f"id(s) {extra} are not in the ground truth (ids {ids})")
        void = gt == VOID
        for i in ids:
            if t > first_seen[i]:
                series[i]["J"].append(jaccard(pred == i, gt == i, void))
                series[i]["F"].append(f_measure(pred == i, gt == i, void))
    return series


def _summarise(per_seq: dict[str, dict]) -> dict:
    keys = ("J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay")
    pooled: dict[str, list[float]] = {k: [] for k in keys}
    sequences = {}
    for seq, series in per_seq.items():
        objects = {}
        for obj, s in series.items():
            jm, jr, jd = statistics(np.array(s["J"]))
            fm, fr, fd = statistics(np.array(s["F"]))
            for k, v in zip(keys, (jm, jr, jd, fm, fr, fd)):
                pooled[k].append(v)
            objects[str(obj)] = {"J-Mean": jm, "F-Mean": fm}
        jmean = float(np.mean([o["J-Mean"] for o in objects.values()])) if objects else 0.0
        fmean = float(np.mean([o["F-Mean"] for o in objects.values()])) if objects else 0.0
        sequences[seq] = {"J&F-Mean": (jmean + fmean) / 2, "J-Mean": jmean, "F-Mean": fmean,
                          "objects": objects}
    out = {k: float(np.nanmean(v)) if v else float("nan") for k, v in pooled.items()}
    out["J&F-Mean"] = (out["J-Mean"] + out["F-Mean"]) / 2
    out["sequences"] = sequences
    return out


def list_sequences(pred: Path, gt: Path, names: list[str] | None) -> list[str]:
    if not gt.is_dir():
        raise EvalError(f"ground-truth folder {gt} not found")
    if not pred.is_dir():
        raise EvalError(f"prediction folder {pred} not found")
    available = sorted(p.name for p in gt.iterdir() if p.is_dir())
    if not available:
        raise EvalError(f"ground-truth folder {gt} has no sequence folders (<seq>/<frame>.png)")
    if names:
        unknown = [n for n in names if n not in available]
        if unknown:
            raise EvalError(f"sequence(s) {', '.join(unknown)} not in {gt}")
        return names
    return available


def evaluate(pred: str | Path, gt: str | Path, sequences: list[str] | None = None,
             workers: int = 2, youtube: bool = False, progress: bool = False) -> dict:
    pred, gt = Path(pred), Path(gt)
    names = list_sequences(pred, gt, sequences)
    jobs = [SequenceJob(n, pred / n, gt / n, youtube) for n in names]
    results = _run_jobs(jobs, workers, progress)
    return _summarise(dict(zip(names, results)))


def _run_jobs(jobs: list[SequenceJob], workers: int, progress: bool) -> list[dict]:
    from tqdm import tqdm

    bar = tqdm(total=len(jobs), disable=not progress, unit="seq", desc="eval")
    if workers <= 1 or len(jobs) == 1:
        out = []
        for job in jobs:
            out.append(evaluate_sequence(job))
            bar.update(1)
        bar.close()
        return out
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(min(workers, len(jobs))) as pool:
        out = []
        for result in pool.imap(evaluate_sequence, jobs):
            out.append(result)
            bar.update(1)
    bar.close()
    return out


def seen_unseen_summary(results: dict, unseen: set[str]) -> dict:
    """YouTube-VOS style: J/F over objects of seen and of unseen categories, and Overall.
    `unseen` holds "seq" (every object of it) or "seq/id" entries."""
    groups: dict[str, dict[str, list[float]]] = {"seen": {"J": [], "F": []},
                                                 "unseen": {"J": [], "F": []}}
    for seq, info in results["sequences"].items():
        for obj, scores in info["objects"].items():
            kind = "unseen" if seq in unseen or f"{seq}/{obj}" in unseen else "seen"
            groups[kind]["J"].append(scores["J-Mean"])
            groups[kind]["F"].append(scores["F-Mean"])
    out = {}
    for kind, vals in groups.items():
        for m in ("J", "F"):
            out[f"{m}_{kind}"] = float(np.mean(vals[m])) if vals[m] else float("nan")
    present = [v for v in out.values() if not np.isnan(v)]
    out["Overall"] = float(np.mean(present)) if present else float("nan")
    return out
