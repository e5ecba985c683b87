"""`lgdk eval`: J&F as the official DAVIS toolkit computes it."""

from __future__ import annotations

import os
from pathlib import Path


def add(sub) -> None:
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


def run(args) -> int:
    from lgdk.eval.davis import evaluate, seen_unseen_summary
    from lgdk.eval.report import table, write_csv, write_json
    from lgdk.video.preflight import check_report_path

    gt = Path(args.gt)
    if (gt / "Annotations").is_dir():
        gt = gt / "Annotations"
    for flag, path in (("--json", args.json), ("--csv", args.csv)):
        if path:
            check_report_path(flag, Path(path))
    unseen = _read_unseen(Path(args.unseen)) if args.unseen else None
    sequences = [s for s in args.sequences.split(",") if s] if args.sequences else None
    results = evaluate(args.pred, gt, sequences, max(1, args.workers), youtube=args.youtube,
                       progress=True)
    if unseen is not None:
        results["youtube"] = seen_unseen_summary(results, unseen)
    print(table(results))
    if "youtube" in results:
        print("  ".join(f"{k} {v:.4f}" for k, v in results["youtube"].items()))
    if args.json:
        write_json(args.json, results)
    if args.csv:
        write_csv(args.csv, results)
    return 0


def _read_unseen(path: Path) -> set[str]:
    from lgdk.errors import UserError

    try:
        return {line.strip() for line in path.read_text().splitlines() if line.strip()}
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"--unseen {path}: cannot read it ({exc}); give a text file of "
                        "'seq' or 'seq/id' lines") from None
