"""The speed of `lgdk segment` as a multiple of Cutie-base's, a figure that holds across CPUs.

usage: python scripts/cutie_ratio.py --sequence ../shared/data/davis2016/dev-val/JPEGImages/cows
           [--sizes 384,480] [--repeats 3] [--out runs/cutie-ratio] [-- extra lgdk segment flags]

The measure (the speed issues' definition): frames/s of `lgdk segment` on a 60-frame
one-object 854x480 clip with start-up excluded, i.e. 50 / (time of 60 frames - time of 10
frames), times the time of one timm `resnet50` forward at 480x864 on 2 threads in the same
run, times 2.3 (Cutie-base costs 2.15-2.42 such forwards a frame on both CPU kinds,
measured side by side). Both clips are mp4 files cut from the same sequence and given the
first frame's true mask; every `lgdk segment` is a fresh process, as a user runs it.

Printed per size: the median wall time of the 10- and 60-frame runs, the frames/s, the
resnet50 time and the ratio; with --json the same as a file.
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


def resnet50_time(repeats: int = 5) -> float:
    """Median seconds of one timm resnet50 forward at 480x864 on 2 threads."""
    import timm
    import torch

    torch.set_num_threads(2)
    model = timm.create_model("resnet50", pretrained=False).eval()
    image = torch.randn(1, 3, 480, 864)
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
    resnets = [resnet50_time()]
    runs = []
    for size in (int(s) for s in args.sizes.split(",")):
        t10, t60 = [], []
        for _ in range(args.repeats):  # interleaved, so that all see the same drift
            t10.append(segment_time(short, mask, size, args.extra))
            t60.append(segment_time(long, mask, size, args.extra))
            resnets.append(resnet50_time())
        runs.append((size, t10, t60))
    resnet = statistics.median(resnets)  # the reference timed between the runs
    rows = []
    for size, t10, t60 in runs:
        fps = 50 / (statistics.median(t60) - statistics.median(t10))
        rows.append({"size": size, "t10_s": statistics.median(t10),
                     "t60_s": statistics.median(t60), "fps": fps,
                     "ratio": fps * resnet * CUTIE_FORWARDS})
    print(f"resnet50 forward at 480x864, 2 threads: median {resnet * 1000:.1f} ms of "
          f"{len(resnets)} timings between the runs ({min(resnets) * 1000:.0f}-"
          f"{max(resnets) * 1000:.0f})")
    print("| size | 10 frames s | 60 frames s | frames/s | x Cutie-base |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['size']} | {row['t10_s']:.2f} | {row['t60_s']:.2f} | {row['fps']:.2f} "
              f"| {row['ratio']:.1f} |")
    if args.json:
        args.json.write_text(json.dumps({"resnet50_s": resnets, "rows": rows,
                                         "extra": args.extra}, indent=1))


if __name__ == "__main__":
    main()
