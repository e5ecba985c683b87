"""`lgdk segment` and `lgdk demo`: the video application."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from lgdk.cli.common import (
    add_checkpoint_flag,
    add_device_flag,
    add_setting_flags,
    load_models_and_settings,
)
from lgdk.errors import UserError
from lgdk.prompts import METHODS
from lgdk.video.job import DIRECTIONS

PARTIAL_EXIT = 3  # segment: the video stopped decoding early; the decoded frames' masks stand


class _InOrder(argparse.Action):
    """--box and --point share one list that keeps their command-line order."""

    def __call__(self, parser, namespace, values, option_string=None):
        items = list(getattr(namespace, self.dest, None) or [])
        items.append((option_string.lstrip("-"), values))
        setattr(namespace, self.dest, items)


def add(sub) -> None:
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
    p.add_argument("--direction", default="both", choices=DIRECTIONS,
                   help="from each frame with a mask or prompts: both ways (default; a frame "
                        "between two given frames reads the memory of both and follows the "
                        "nearer one's pass), forward only (frames "
                        "before the first given one stay empty) or backward only. --dataset "
                        "always runs forward (the benchmarks' protocol)")
    p.add_argument("--prompt-method", default=None, choices=METHODS,
                   help="how prompts become a mask: the prompt network's mask refined by "
                        "the segmentation network (learned+network, the default), the "
                        "prompt network alone (learned, faster), GrabCut refined by the "
                        "segmentation network (network) or GrabCut alone")
    p.add_argument("--dataset", help="DAVIS / YouTube-VOS root: segment every sequence")
    p.add_argument("--out", required=True, help="output folder of indexed PNGs")
    add_checkpoint_flag(p)
    p.add_argument("--onnx", default=None,
                   help="run this graph from 'lgdk export' with ONNX Runtime (CPU) instead "
                        "of a checkpoint")
    add_device_flag(p)
    add_setting_flags(p)
    p.add_argument("--overlay", default=None, help="write a colour overlay video here")
    p.add_argument("--cutout", default=None,
                   help="write the objects cut out: a .webm (VP9) or .mov (ProRes 4444, "
                        "what editors import) keeps transparency, a folder name gets RGBA "
                        "PNGs; with --background, any video. Videos (and --overlay) carry "
                        "the input's frame rate and sound")
    p.add_argument("--background", default=None, metavar="R,G,B",
                   help="the cut-out on this colour instead of transparent, e.g. 0,255,0")
    p.add_argument("--report", default=None, metavar="REPORT.json",
                   help="write how sure each frame's masks are (its least certain object, "
                        "and why) and the frames to correct first")
    p.add_argument("--save-probs", action="store_true",
                   help="keep per-frame probabilities (float16 .npy) in OUT/probs")
    p.add_argument("--allow-partial", action="store_true",
                   help="a video that stops decoding early (truncated, corrupt) still exits "
                        "with 0; without it, its masks are written and the exit status is 3")
    p.add_argument("--no-progress", action="store_true")


def run(args) -> int:
    # Everything that needs no model is checked before torch is imported (about 5 s on a
    # laptop CPU): a wrong path or flag answers at once.
    outputs = _outputs(args)
    source, masks, prompts = _inputs(args)
    from lgdk.infer.loading import resolve_device
    from lgdk.infer.tta import make_predictor
    from lgdk.video.engine import segment_dataset, segment_video

    device = "cpu" if args.onnx and args.device is None else resolve_device(args.device)
    if device == "cuda" and "LOCAL_RANK" in os.environ:  # torchrun: one GPU per process
        device = f"cuda:{os.environ['LOCAL_RANK']}"
    models, settings = load_models_and_settings(args, device)

    progress = not args.no_progress

    def make():
        return make_predictor(models, settings, device, progress)

    if args.dataset:
        rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
        for s in segment_dataset(make, args.dataset, args.out, rank, world, progress):
            print(s.line())
        return 0
    if prompts:
        plain = dataclasses.replace(settings, adapt_steps=0)  # the prompt's refinement

        def make_refiner():
            return make_predictor(models, plain, device)

        summary = _segment_prompted(args, make, make_refiner, source, prompts, outputs,
                                    settings.max_objects, progress)
    else:
        summary = segment_video(make, source, masks, Path(args.out), outputs,
                                args.save_probs, progress, args.direction)
    print(summary.line())
    if summary.incomplete:
        print(f"lgdk segment: warning: {summary.incomplete}", file=sys.stderr)
        return 0 if args.allow_partial else PARTIAL_EXIT
    return 0


def _inputs(args):
    """The arguments' own checks, the input opened, the masks found, the prompts parsed
    and the output folder checked: (source, masks, prompts), without torch."""
    from lgdk.prompts.spec import group_prompts
    from lgdk.video.given_masks import MaskProvider
    from lgdk.video.preflight import check_output_folder
    from lgdk.video.video_io import VideoError, open_frames

    if bool(args.dataset) == bool(args.input):
        raise UserError("give either INPUT (with --mask, or --box/--point) or --dataset ROOT")
    if args.prompts and (args.mask or args.dataset):
        raise UserError("give the first mask either as --mask or as --box/--point, not both")
    if args.input and not args.mask and not args.prompts:
        raise UserError("INPUT needs its first mask: --mask PNG, or --box X0,Y0,X1,Y1 / "
                        "--point X,Y per object")
    if args.prompt_frame < 0:
        raise VideoError(f"--prompt-frame must be 0 or more, not {args.prompt_frame}")
    if args.dataset and not Path(args.dataset).is_dir():
        raise UserError(f"--dataset {args.dataset} is not a folder; give a DAVIS or "
                        "YouTube-VOS root")
    source = open_frames(args.input) if args.input else None
    masks = MaskProvider(args.mask) if args.mask else None
    prompts = group_prompts(args.prompts) if args.prompts else None
    check_output_folder(Path(args.out))
    return source, masks, prompts


def _outputs(args):
    from lgdk.video.cutout import parse_colour
    from lgdk.video.sinks import VideoOutputs

    if args.dataset and (args.overlay or args.cutout):
        raise UserError("--overlay and --cutout write one video: give INPUT, not --dataset")
    if args.background and not args.cutout:
        raise UserError("--background colours the cut-out: give --cutout PATH with it")
    if args.dataset and args.report:
        raise UserError("--report describes one video: give INPUT, not --dataset")
    return VideoOutputs(Path(args.overlay) if args.overlay else None,
                        Path(args.cutout) if args.cutout else None,
                        parse_colour(args.background) if args.background else None,
                        Path(args.report) if args.report else None)


def _segment_prompted(args, make, make_refiner, source, prompts, outputs, max_objects: int,
                      progress: bool):
    from lgdk.prompts import DEFAULT_METHOD
    from lgdk.video.prompted import PROMPT_MASK, segment_from_prompts

    summary = segment_from_prompts(make, source, prompts, args.out,
                                   args.prompt_frame, args.prompt_method or DEFAULT_METHOD,
                                   outputs, args.save_probs, progress, max_objects,
                                   args.direction, make_refiner)
    print(f"first mask from the prompts: {Path(args.out) / PROMPT_MASK}")
    return summary


def add_demo(sub) -> None:
    p = sub.add_parser("demo", help="segment a generated clip with the shipped model")
    p.add_argument("--out", default="demo_out")
    p.add_argument("--frames", type=int, default=40)
    add_device_flag(p)


def run_demo(args) -> int:
    from lgdk.infer.loading import load_models, resolve_device
    from lgdk.infer.predictor import Predictor
    from lgdk.video.demo import run_demo as demo

    device = resolve_device(args.device)
    models, settings = load_models(None, device)
    report = demo(Path(args.out), Predictor(models[0], settings, device), frames=args.frames)
    out, res, summary = report["out"], report["results"], report["summary"]
    print(f"clip:    {out / 'frames'} (generated; truth in {out / 'truth'})")
    print(f"masks:   {out / 'masks' / 'clip'}")
    print(f"overlay: {out / 'overlay.mp4'}")
    print(f"speed:   {summary.fps:.2f} frames/s on {device}")
    print(f"quality: J&F {res['J&F-Mean']:.3f} (J {res['J-Mean']:.3f}, F {res['F-Mean']:.3f})"
          " against the clip's truth")
    return 0
