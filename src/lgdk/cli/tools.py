"""`lgdk bench` and `lgdk export`: tooling around a model."""

from __future__ import annotations

import argparse

from lgdk.cli.common import (
    add_checkpoint_flag,
    add_device_flag,
    add_setting_flags,
    given_settings,
    load_models_and_settings,
)
from lgdk.errors import UserError


def add_bench(sub) -> None:
    p = sub.add_parser("bench", help="speed and memory of a model on a generated 854x480 clip")
    add_checkpoint_flag(p, ensemble=False)
    p.add_argument("--onnx", default=None, help="time this exported graph (ONNX Runtime)")
    add_device_flag(p)
    add_setting_flags(p, augmentation=False)
    p.add_argument("--adapt", dest="adapt_steps", type=int, default=None, metavar="STEPS",
                   help="also time --adapt STEPS before propagation")
    p.add_argument("--frames", type=int, default=200)
    p.add_argument("--objects", type=int, default=1,
                   help="objects in the clip; above 1 the same frames are timed with one "
                        "object too, and the cost of each further object is printed")
    p.add_argument("--long", default="500,10000",
                   help="frame counts for the long-video memory check ('' to skip)")
    p.add_argument("--first-mask", action=argparse.BooleanOptionalAction, default=True,
                   help="also time a new `lgdk segment` process to its first mask")
    p.add_argument("--json", default=None)


def run_bench(args) -> int:
    import json

    from lgdk.eval.report import atomic_write
    from lgdk.infer.loading import resolve_device
    from lgdk.tools import bench

    device = "cpu" if args.onnx else resolve_device(args.device)
    models, settings = load_models_and_settings(args, device)
    model = models[0]
    report = {"machine": bench.machine(), "device": device, "size": settings.size,
              "objects": args.objects, "frames": args.frames,
              "runtime": "onnxruntime" if args.onnx else "pytorch",
              "precision": "float32" if args.onnx else model.precision}
    report["dense_gflops"] = peak = bench.dense_gflops(device)
    if report["precision"] == "bfloat16":  # the throughput the model's arithmetic can reach
        report["compute_gflops"] = peak = bench.dense_gflops(device, dtype=model.compute_dtype)
    if not args.onnx:  # FLOPs are counted on PyTorch operations
        report["flops_per_frame"] = bench.frame_flops(model, settings, device, args.objects)
    report.update(bench.speed(model, settings, device, args.frames, args.objects))
    if args.objects > 1:  # the same frames with one object, right after: each one's cost
        report["one_object"] = bench.speed(model, settings, device, args.frames, 1)
    if "flops_per_frame" in report:
        achieved = report["flops_per_frame"] * report["fps"] / 1e9
        report["achieved_gflops"] = achieved
        report["hardware_fraction"] = achieved / peak
    if settings.adapt_steps and not args.onnx:
        report["adaptation"] = bench.adaptation_seconds(model, settings, device, args.objects)
    if args.long and not args.onnx:  # an ONNX graph has one fixed frame size
        counts = tuple(int(v) for v in args.long.split(","))
        report["long_video"] = bench.long_video_memory(model, settings, device, counts)
    if args.first_mask and not args.onnx:
        report["first_mask"] = bench.time_to_first_mask(device, settings.size, args.checkpoint)
    print(bench.format_report(report))
    if args.json:
        atomic_write(args.json, json.dumps(report, indent=2))
    return 0


def add_export(sub) -> None:
    p = sub.add_parser("export", help="export the per-frame step as ONNX graphs")
    p.add_argument("--onnx", required=True, help="output .onnx (the memory encoder goes "
                   "beside it as .memory.onnx)")
    add_checkpoint_flag(p, ensemble=False)
    p.add_argument("--frame-size", default="854x480",
                   help="WxH of the videos it will run on (the graph's size is fixed)")
    add_setting_flags(p, augmentation=False)


def run_export(args) -> int:
    from lgdk.infer.loading import load_models
    from lgdk.infer.predictor import Resolution
    from lgdk.onnx.export import export_onnx

    try:
        width, height = (int(v) for v in args.frame_size.lower().split("x"))
    except ValueError:
        raise UserError(f"--frame-size must look like 854x480, not '{args.frame_size}'") from None
    checkpoints = [args.checkpoint] if args.checkpoint else None
    given = given_settings(args)
    if given.get("precision") in ("bfloat16", "int8"):
        raise UserError(f"an ONNX graph is exported in float32: leave out --precision "
                        f"{given['precision']}")
    given["precision"] = "float32"  # the checkpoint's own weights, not bfloat16-rounded ones
    models, settings = load_models(checkpoints, "cpu", **given)
    h, w = Resolution.of(height, width, settings.size).padded
    step, memory = export_onnx(models[0], args.onnx, h, w, settings)
    print(f"step graph:   {step} ({w}x{h} inputs: {args.frame_size} frames at size "
          f"{settings.size}, padded to multiples of 16)")
    print(f"memory graph: {memory}")
    print(f"run it: lgdk segment VIDEO --mask MASK --out OUT --onnx {step}")
    return 0
