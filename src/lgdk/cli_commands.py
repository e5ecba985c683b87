"""Sub-commands other than train (kept apart so cli.py stays small)."""

from __future__ import annotations

import os
from pathlib import Path


def _add_eval(sub) -> None:
    p = sub.add_parser("eval", help="J&F of predicted masks against DAVIS-layout ground truth")
    p.add_argument("--pred", required=True, help="predictions: PRED_DIR/<seq>/<frame>.png")
    p.add_argument("--gt", required=True, help="ground truth: GT_DIR/<seq>/<frame>.png "
                   "(or a DAVIS root holding Annotations/)")
    p.add_argument("--sequences", default=None, help="comma-separated subset")
    p.add_argument("--json", default=None, help="write the results as JSON here")
    p.add_argument("--csv", default=None, help="write per-object results as CSV here")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--youtube", action="store_true",
                   help="YouTube-VOS protocol: objects may appear mid-video")
    p.add_argument("--unseen", default=None,
                   help="file listing unseen-category 'seq' or 'seq/id' lines: adds the "
                        "J/F seen/unseen summary")


def cmd_eval(args) -> int:
    from lgdk.eval.davis import evaluate, seen_unseen_summary
    from lgdk.eval.report import table, write_csv, write_json

    gt = Path(args.gt)
    if (gt / "Annotations").is_dir():
        gt = gt / "Annotations"
    sequences = [s for s in args.sequences.split(",") if s] if args.sequences else None
    results = evaluate(args.pred, gt, sequences, args.workers, youtube=args.youtube,
                       progress=True)
    if args.unseen:
        unseen = {line.strip() for line in Path(args.unseen).read_text().splitlines()
                  if line.strip()}
        results["youtube"] = seen_unseen_summary(results, unseen)
    print(table(results))
    if "youtube" in results:
        print("  ".join(f"{k} {v:.4f}" for k, v in results["youtube"].items()))
    if args.json:
        write_json(args.json, results)
    if args.csv:
        write_csv(args.csv, results)
    return 0


def _add_segment(sub) -> None:
    p = sub.add_parser("segment", help="segment the objects of a video given their mask(s)")
    p.add_argument("input", nargs="?", help="video file (mp4, mov, avi, mkv, webm) or a "
                   "folder of frames")
    p.add_argument("--mask", help="mask PNG of the first frame, or a folder of PNGs named "
                   "like the frames (objects appearing later)")
    p.add_argument("--dataset", help="DAVIS / YouTube-VOS root: segment every sequence")
    p.add_argument("--out", required=True, help="output folder of indexed PNGs")
    p.add_argument("--checkpoint", action="append", default=None,
                   help="model checkpoint (repeat for an ensemble; default: shipped model)")
    p.add_argument("--flip", action="store_true", help="also process the mirrored frames")
    p.add_argument("--scales", default=None, help="shorter-side sizes to average, e.g. 480,600")
    p.add_argument("--size", type=int, default=None,
                   help="processing shorter side (default: the model's own, 480 if unset)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    p.add_argument("--amp", action="store_true", help="mixed precision (GPU)")
    p.add_argument("--mem-every", type=int, default=5, help="a memory frame every N frames")
    p.add_argument("--max-memory", type=int, default=8,
                   help="bound on memory frames (besides the given masks)")
    p.add_argument("--max-objects", type=int, default=32)
    p.add_argument("--overlay", default=None, help="write a colour overlay video here")
    p.add_argument("--save-probs", action="store_true",
                   help="keep per-frame probabilities (float16 .npy) in OUT/probs")
    p.add_argument("--no-progress", action="store_true")


def cmd_segment(args) -> int:
    from lgdk.errors import UserError
    from lgdk.infer.engine import segment_dataset, segment_path
    from lgdk.infer.loading import load_models, resolve_device
    from lgdk.infer.predictor import PredictorOptions
    from lgdk.infer.tta import make_predictor

    if bool(args.dataset) == bool(args.input):
        raise UserError("give either INPUT (with --mask) or --dataset ROOT")
    if args.input and not args.mask:
        raise UserError("--mask is required with INPUT: the mask of the first frame")
    device = resolve_device(args.device)
    models = load_models(args.checkpoint, device)
    scales = _parse_scales(args.scales)
    options = PredictorOptions(size=args.size if args.size is not None else 480,
                               mem_every=args.mem_every, max_memory=args.max_memory,
                               max_objects=args.max_objects, amp=args.amp)

    def make():
        return make_predictor(models, options, device, args.flip, scales)

    progress = not args.no_progress
    if args.dataset:
        rank, world = _rank_world()
        for s in segment_dataset(make, args.dataset, args.out, rank, world, progress):
            print(s.line())
        return 0
    summary = segment_path(make(), args.input, args.mask, args.out, args.overlay,
                           args.save_probs, progress)
    print(summary.line())
    return 0


def _parse_scales(text: str | None) -> list[int] | None:
    from lgdk.errors import UserError

    if not text:
        return None
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"--scales must be integers like 480,600, not '{text}'") from None


def _rank_world() -> tuple[int, int]:
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


COMMANDS = {"eval": cmd_eval, "segment": cmd_segment}


def add_all(sub) -> None:
    _add_eval(sub)
    _add_segment(sub)
