"""Sub-commands other than train (kept apart so cli.py stays small)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

PARTIAL_EXIT = 3  # segment: the video stopped decoding early; the decoded frames' masks stand


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
    from lgdk.infer.preflight import check_report_path

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


def _add_encode_every(p) -> None:
    """The memory-encoding policy flag, shared by segment and bench."""
    p.add_argument("--encode-every", type=int, default=2,
                   help="also encode every N-th frame as the local (previous-frame) memory "
                        "(default 2); 1: every frame (STM's temporary memory, slower); 0: "
                        "memory frames only (fastest; objects may swap identities)")


def _add_segment(sub) -> None:
    p = sub.add_parser("segment", help="segment the objects of a video given their mask(s)")
    p.add_argument("input", nargs="?", help="video file (mp4, mov, avi, mkv, webm) or a "
                   "folder of frames")
    p.add_argument("--mask", help="mask PNG of the first frame, or a folder of PNGs named "
                   "like the frames (objects appearing later)")
    p.add_argument("--box", action=_InOrder, dest="prompts", metavar="X0,Y0,X1,Y1",
                   help="instead of --mask: a box around an object (repeat: ids 1, 2, ... "
                        "in order), in the frame's pixels")
    p.add_argument("--point", action=_InOrder, dest="prompts", metavar="X,Y[,+|-][,ID]",
                   help="a click: positive (+, the default) or negative (-); refines the "
                        "object of the --box before it, or starts one; ,ID names the object")
    p.add_argument("--prompt-frame", type=int, default=0,
                   help="the frame the boxes and clicks are on (default 0)")
    p.add_argument("--prompt-method", default=None, choices=["network", "grabcut"],
                   help="how prompts become a mask: GrabCut refined by the network "
                        "(network, the default) or GrabCut alone")
    p.add_argument("--dataset", help="DAVIS / YouTube-VOS root: segment every sequence")
    p.add_argument("--out", required=True, help="output folder of indexed PNGs")
    p.add_argument("--checkpoint", action="append", default=None,
                   help="model checkpoint (repeat for an ensemble; default: shipped model)")
    p.add_argument("--flip", action="store_true", help="also process the mirrored frames")
    p.add_argument("--scales", default=None, help="shorter-side sizes to average, e.g. 480,600")
    p.add_argument("--size", type=int, default=None,
                   help="processing shorter side (default: the model's own; 480 for ONNX)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    p.add_argument("--amp", action="store_true", help="mixed precision (GPU)")
    p.add_argument("--mem-every", type=int, default=5, help="a memory frame every N frames")
    p.add_argument("--max-memory", type=int, default=8,
                   help="bound on memory frames (besides the given masks)")
    p.add_argument("--max-objects", type=int, default=32)
    _add_encode_every(p)
    p.add_argument("--top-k", type=int, default=None,
                   help="memory read over the k best positions (default: the model's)")
    p.add_argument("--onnx", default=None,
                   help="run this graph from 'lgdk export' with ONNX Runtime (CPU) instead "
                        "of a checkpoint")
    p.add_argument("--overlay", default=None, help="write a colour overlay video here")
    p.add_argument("--save-probs", action="store_true",
                   help="keep per-frame probabilities (float16 .npy) in OUT/probs")
    p.add_argument("--allow-partial", action="store_true",
                   help="a video that stops decoding early (truncated, corrupt) still exits "
                        "with 0; without it, its masks are written and the exit status is 3")
    p.add_argument("--no-progress", action="store_true")


class _InOrder(argparse.Action):
    """--box and --point share one list that keeps their command-line order."""

    def __call__(self, parser, namespace, values, option_string=None):
        items = list(getattr(namespace, self.dest, None) or [])
        items.append((option_string.lstrip("-"), values))
        setattr(namespace, self.dest, items)


def cmd_segment(args) -> int:
    from lgdk.errors import UserError
    from lgdk.infer.engine import segment_dataset, segment_path
    from lgdk.infer.loading import resolve_device
    from lgdk.infer.predictor import PredictorOptions
    from lgdk.infer.tta import make_predictor

    if bool(args.dataset) == bool(args.input):
        raise UserError("give either INPUT (with --mask, or --box/--point) or --dataset ROOT")
    if args.prompts and (args.mask or args.dataset):
        raise UserError("give the first mask either as --mask or as --box/--point, not both")
    if args.input and not args.mask and not args.prompts:
        raise UserError("INPUT needs its first mask: --mask PNG, or --box X0,Y0,X1,Y1 / "
                        "--point X,Y per object")
    device = resolve_device(args.device)
    if device == "cuda" and "LOCAL_RANK" in os.environ:  # torchrun: one GPU per process
        device = f"cuda:{os.environ['LOCAL_RANK']}"
    models = _models(args, device)
    scales = _parse_scales(args.scales)
    options = PredictorOptions(size=args.size,  # None: each model's own inference_size
                               mem_every=args.mem_every, max_memory=args.max_memory,
                               encode_every=args.encode_every,
                               max_objects=args.max_objects, amp=args.amp)

    def make():
        return make_predictor(models, options, device, args.flip, scales)

    progress = not args.no_progress
    if args.dataset:
        rank, world = _rank_world()
        for s in segment_dataset(make, args.dataset, args.out, rank, world, progress):
            print(s.line())
        return 0
    if args.prompts:
        summary = _segment_prompted(args, make, progress)
    else:
        summary = segment_path(make(), args.input, args.mask, args.out, args.overlay,
                               args.save_probs, progress)
    print(summary.line())
    if summary.incomplete:
        print(f"lgdk segment: warning: {summary.incomplete}", file=sys.stderr)
        return 0 if args.allow_partial else PARTIAL_EXIT
    return 0


def _segment_prompted(args, make, progress):
    from lgdk.infer.prompted import PROMPT_MASK, segment_from_prompts
    from lgdk.prompts import DEFAULT_METHOD
    from lgdk.prompts.spec import group_prompts

    summary = segment_from_prompts(make, args.input, group_prompts(args.prompts), args.out,
                                   args.prompt_frame, args.prompt_method or DEFAULT_METHOD,
                                   args.overlay, args.save_probs, progress, args.max_objects)
    print(f"first mask from the prompts: {Path(args.out) / PROMPT_MASK}")
    return summary


def _models(args, device: str) -> list:
    """PyTorch models from --checkpoint, or the ONNX Runtime model of --onnx."""
    from lgdk.errors import UserError
    from lgdk.infer.loading import load_models

    if not getattr(args, "onnx", None):
        checkpoints = args.checkpoint
        if isinstance(checkpoints, str):
            checkpoints = [checkpoints]
        return load_models(checkpoints, device, args.top_k)
    if args.checkpoint or args.top_k is not None:
        raise UserError("--onnx runs an exported graph: leave out --checkpoint and --top-k "
                        "(they were fixed at export)")
    from lgdk.infer.onnx_model import OnnxModel

    return [OnnxModel(args.onnx)]


def _parse_scales(text: str | None) -> list[int] | None:
    from lgdk.errors import UserError

    if not text:
        return None
    try:
        scales = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"--scales must be integers like 480,600, not '{text}'") from None
    if not scales or min(scales) < 16:
        raise UserError(f"--scales must be shorter sides of 16 pixels or more, like 480,600, "
                        f"not '{text}'")
    return scales


def _rank_world() -> tuple[int, int]:
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def _add_demo(sub) -> None:
    p = sub.add_parser("demo", help="segment a generated clip with the shipped model")
    p.add_argument("--out", default="demo_out")
    p.add_argument("--frames", type=int, default=40)
    p.add_argument("--device", default=None)


def cmd_demo(args) -> int:
    from lgdk.infer.demo import run_demo
    from lgdk.infer.loading import load_models, resolve_device
    from lgdk.infer.predictor import Predictor, PredictorOptions

    device = resolve_device(args.device)
    model = load_models(None, device)[0]
    report = run_demo(Path(args.out), Predictor(model, PredictorOptions(size=360), device),
                      frames=args.frames)
    out, res, summary = report["out"], report["results"], report["summary"]
    print(f"clip:    {out / 'frames'} (generated; truth in {out / 'truth'})")
    print(f"masks:   {out / 'masks' / 'clip'}")
    print(f"overlay: {out / 'overlay.mp4'}")
    print(f"speed:   {summary.fps:.2f} frames/s on {device}")
    print(f"quality: J&F {res['J&F-Mean']:.3f} (J {res['J-Mean']:.3f}, F {res['F-Mean']:.3f})"
          " against the clip's truth")
    return 0


def _add_bench(sub) -> None:
    p = sub.add_parser("bench", help="speed and memory of a model on a generated 854x480 clip")
    p.add_argument("--checkpoint", default=None, help="default: the shipped model")
    p.add_argument("--size", type=int, default=None,
                   help="processing shorter side (default: the model's own)")
    p.add_argument("--frames", type=int, default=200)
    p.add_argument("--objects", type=int, default=1)
    p.add_argument("--top-k", type=int, default=None,
                   help="memory read over the k best positions (default: the model's)")
    p.add_argument("--onnx", default=None, help="time this exported graph (ONNX Runtime)")
    p.add_argument("--device", default=None)
    p.add_argument("--amp", action="store_true")
    _add_encode_every(p)
    p.add_argument("--long", default="500,10000",
                   help="frame counts for the long-video memory check ('' to skip)")
    p.add_argument("--json", default=None)


def cmd_bench(args) -> int:
    import json

    from lgdk.eval.report import atomic_write
    from lgdk.infer import bench
    from lgdk.infer.loading import default_size, resolve_device
    from lgdk.infer.predictor import PredictorOptions

    device = "cpu" if args.onnx else resolve_device(args.device)
    model = _models(args, device)[0]
    if args.size is None:
        args.size = default_size([model])
    options = PredictorOptions(size=args.size, amp=args.amp, encode_every=args.encode_every)
    report = {"machine": bench.machine(), "device": device, "size": args.size,
              "objects": args.objects, "frames": args.frames,
              "runtime": "onnxruntime" if args.onnx else "pytorch"}
    report["dense_gflops"] = bench.dense_gflops(device)
    if not args.onnx:  # FLOPs are counted on PyTorch operations
        report["flops_per_frame"] = bench.frame_flops(model, options, device, args.objects)
    report.update(bench.speed(model, options, device, args.frames, args.objects))
    if "flops_per_frame" in report:
        achieved = report["flops_per_frame"] * report["fps"] / 1e9
        report["achieved_gflops"] = achieved
        report["hardware_fraction"] = achieved / report["dense_gflops"]
    if args.long and not args.onnx:  # an ONNX graph has one fixed frame size
        counts = tuple(int(v) for v in args.long.split(","))
        report["long_video"] = bench.long_video_memory(model, device, counts)
    _print_bench(report, args)
    if args.json:
        atomic_write(args.json, json.dumps(report, indent=2))
    return 0


def _print_bench(report: dict, args) -> None:
    print(f"machine {report['machine']} ({report['device']}, {report['runtime']}); "
          f"{args.frames} frames at size {args.size}, {args.objects} object(s)")
    print(f"latency median {report['median_ms']:.1f} ms, p90 {report['p90_ms']:.1f} ms, "
          f"{report['fps']:.2f} frames/s")
    if report["split_ms"]:
        print("split (ms/frame): " + ", ".join(f"{k} {v:.1f}" for k, v in
                                               report["split_ms"].items()))
    if "flops_per_frame" in report:
        print(f"FLOPs/frame {report['flops_per_frame'] / 1e9:.2f} G; dense matmul "
              f"{report['dense_gflops']:.0f} GFLOP/s; reached {report['achieved_gflops']:.1f}"
              f" GFLOP/s = {100 * report['hardware_fraction']:.1f}% of it")
    print(f"peak resident memory {report['peak_rss_mb']:.0f} MB")
    for n, info in report.get("long_video", {}).items():
        print(f"after {n} frames: {info['memory_frames']} memory frames, bank "
              f"{info['bank_bytes'] / 1e6:.2f} MB, peak RSS {info['peak_rss_mb']:.0f} MB")


def _add_export(sub) -> None:
    p = sub.add_parser("export", help="export the per-frame step as ONNX graphs")
    p.add_argument("--onnx", required=True, help="output .onnx (the memory encoder goes "
                   "beside it as .memory.onnx)")
    p.add_argument("--checkpoint", default=None, help="default: the shipped model")
    p.add_argument("--frame-size", default="854x480",
                   help="WxH of the videos it will run on (the graph's size is fixed)")
    p.add_argument("--size", type=int, default=480, help="processing shorter side")


def cmd_export(args) -> int:
    from lgdk.errors import UserError
    from lgdk.infer.export import export_onnx
    from lgdk.infer.loading import load_models
    from lgdk.infer.predictor import processing_size
    from lgdk.models.network import PAD_MULTIPLE

    try:
        width, height = (int(v) for v in args.frame_size.lower().split("x"))
    except ValueError:
        raise UserError(f"--frame-size must look like 854x480, not '{args.frame_size}'") from None
    h, w = processing_size(height, width, args.size)
    h, w = h + (-h) % PAD_MULTIPLE, w + (-w) % PAD_MULTIPLE
    model = load_models([args.checkpoint] if args.checkpoint else None, "cpu")[0]
    step, memory = export_onnx(model, args.onnx, h, w)
    print(f"step graph:   {step} ({w}x{h} inputs: {args.frame_size} frames at size "
          f"{args.size}, padded to multiples of 16)")
    print(f"memory graph: {memory}")
    print(f"run it: lgdk segment VIDEO --mask MASK --out OUT --onnx {step} --size {args.size}")
    return 0


COMMANDS = {"eval": cmd_eval, "segment": cmd_segment, "demo": cmd_demo, "bench": cmd_bench,
            "export": cmd_export}


def add_all(sub) -> None:
    _add_eval(sub)
    _add_segment(sub)
    _add_demo(sub)
    _add_bench(sub)
    _add_export(sub)
