"""The speed of `lgdk segment` as a multiple of Cutie-base's, a figure that holds across CPUs.

usage: python scripts/cutie_ratio.py --sequence ../shared/data/davis2016/dev-val/JPEGImages/cows
           [--sizes 384,480] [--repeats 3] [--out runs/cutie-ratio] [-- extra lgdk segment flags]

The measure (the speed issues' definition): frames/s of `lgdk segment` on a 60-frame
one-object 854x480 clip with start-up excluded, i.e. 50 / (time of 60 frames - time of 10
frames), times the time of one timm `resnet50` forward at 480x864 on 2 threads in the same
run, times 2.3 (Cutie-base costs 2.15-2.42 such forwards a frame on both CPU kinds,
measured side by side). Two ratios: against Cutie-base as it ships (its forwards in
float32), and at equal arithmetic (its forwards as lgdk runs its own network here:
BatchNorm folded, channels-last, in the precision `auto` picks on this CPU). Both clips
are mp4 files cut from the same sequence and given the first frame's true mask; every
`lgdk segment` is a fresh process, as a user runs it.

Printed: the two resnet50 times, and per size the median wall time of the 10- and
60-frame runs, the frames/s and both ratios; with --json the same as a file.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
from PIL import Image

CUTIE_FORWARDS = 2.3  # resnet50 forwards at 480x864 per Cutie-base frame
ARITHMETIC = {"ships": "float32 as Cutie ships",  # the reference's arithmetic: its name,
              "equal": "{} channels-last as lgdk runs"}  # and what the table says of it
WIDTH, HEIGHT = 854, 480
LGDK = str(Path(sys.executable).with_name("lgdk"))  # the command a user runs


def write_clip(frames: list[Path], path: Path) -> None:
    """An H.264 mp4 of these frames at 854x480, 30 frames/s."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"crf": "18"}
        for name in frames:
            image = Image.open(name).convert("RGB").resize((WIDTH, HEIGHT))
            for packet in stream.encode(av.VideoFrame.from_image(image)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def make_clips(sequence: Path, folder: Path) -> tuple[Path, Path, Path]:
    frames = sorted(sequence.glob("*.jpg"))
    if len(frames) < 60:
        sys.exit(f"{sequence} has {len(frames)} frames; the measure needs 60")
    masks = sequence.parent.parent / "Annotations" / sequence.name
    truth = np.array(Image.open(masks / (frames[0].stem + ".png")).convert("L")) > 127
    mask = folder / "first.png"
    Image.fromarray(truth.astype(np.uint8)).resize((WIDTH, HEIGHT), Image.NEAREST).save(mask)
    clips = []
    for count in (10, 60):
        clip = folder / f"clip{count}.mp4"
        write_clip(frames[:count], clip)
        clips.append(clip)
    return clips[0], clips[1], mask


def segment_time(clip: Path, mask: Path, size: int, extra: list[str]) -> float:
    """Wall time of one `lgdk segment` process on this clip."""
    with tempfile.TemporaryDirectory() as out:
        command = [LGDK, "segment", str(clip), "--mask", str(mask),
                   "--out", out, "--size", str(size), "--no-progress", "--device", "cpu",
                   *extra]
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - start


def resnet50(arithmetic: str):
    """timm's resnet50 and an input at 480x864: as Cutie ships it ("ships": float32), or at
    lgdk's arithmetic here ("equal": BatchNorm folded, channels-last, in the precision
    `auto` picks on this CPU, as lgdk runs its own network)."""
    import timm
    import torch

    from lgdk.config import InferenceConfig
    from lgdk.infer.precision import resolve_precision
    from lgdk.models.fold import fold_batchnorm
    from lgdk.models.int8 import convert_to_int8

    model = timm.create_model("resnet50", pretrained=False).eval()
    image = torch.randn(1, 3, 480, 864)
    if arithmetic == "ships":
        return model, image
    fold_batchnorm(model)
    model, image = (model.to(memory_format=torch.channels_last),
                    image.contiguous(memory_format=torch.channels_last))
    precision = resolve_precision(InferenceConfig(), "cpu")
    if precision == "bfloat16":
        model, image = model.to(torch.bfloat16), image.to(torch.bfloat16)
    elif precision == "int8":
        convert_to_int8(model)
    return model, image


def precision_here() -> str:
    from lgdk.config import InferenceConfig
    from lgdk.infer.precision import resolve_precision

    return resolve_precision(InferenceConfig(), "cpu")


def resnet50_time(arithmetic: str = "ships", repeats: int = 5) -> float:
    """Median seconds of one timm resnet50 forward at 480x864 on 2 threads, in the
    arithmetic `resnet50` names."""
    import torch

    torch.set_num_threads(2)
    model, image = resnet50(arithmetic)
    times = []
    with torch.inference_mode():
        model(image)
        for _ in range(repeats):
            start = time.perf_counter()
            model(image)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sequence", type=Path, required=True,
                        help="a DAVIS JPEGImages/<name> folder of at least 60 frames, one object")
    parser.add_argument("--sizes", default="384,480")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("runs/cutie-ratio"))
    parser.add_argument("--json", type=Path)
    parser.add_argument("extra", nargs="*", help="more `lgdk segment` flags, after --")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    short, long, mask = make_clips(args.sequence, args.out)
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    resnets = {kind: [resnet50_time(kind)] for kind in ARITHMETIC}
    runs = []
    for size in (int(s) for s in args.sizes.split(",")):
        t10, t60 = [], []
        for _ in range(args.repeats):  # interleaved, so that all see the same drift
            t10.append(segment_time(short, mask, size, args.extra))
            t60.append(segment_time(long, mask, size, args.extra))
            for kind in ARITHMETIC:
                resnets[kind].append(resnet50_time(kind))
        runs.append((size, t10, t60))
    resnet = {kind: statistics.median(t) for kind, t in resnets.items()}  # between the runs
    rows = []
    for size, t10, t60 in runs:
        fps = 50 / (statistics.median(t60) - statistics.median(t10))
        rows.append({"size": size, "t10_s": statistics.median(t10),
                     "t60_s": statistics.median(t60), "fps": fps,
                     **{f"ratio_{kind}": fps * resnet[kind] * CUTIE_FORWARDS
                        for kind in ARITHMETIC}})
    for kind, text in ARITHMETIC.items():
        times = resnets[kind]
        print(f"resnet50 forward at 480x864, 2 threads, {text.format(precision_here())}: "
              f"median {resnet[kind] * 1000:.1f} ms of {len(times)} timings between the "
              f"runs ({min(times) * 1000:.0f}-{max(times) * 1000:.0f})")
    print("| size | 10 frames s | 60 frames s | frames/s | x Cutie-base as it ships | "
          "x Cutie-base at equal arithmetic |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['size']} | {row['t10_s']:.2f} | {row['t60_s']:.2f} | {row['fps']:.2f} "
              f"| {row['ratio_ships']:.1f} | {row['ratio_equal']:.1f} |")
    if args.json:
        args.json.write_text(json.dumps({"resnet50_s": resnets, "rows": rows,
                                         "precision": precision_here(),
                                         "extra": args.extra}, indent=1))


if __name__ == "__main__":
    main()
