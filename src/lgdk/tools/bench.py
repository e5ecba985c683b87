"""`lgdk bench`: speed, time split, FLOPs, hardware limit and memory of a predictor."""

from __future__ import annotations

import copy
import dataclasses
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from lgdk.config import InferenceConfig
from lgdk.data.procedural import generate_clip
from lgdk.infer.predictor import Predictor
from lgdk.models.int8 import revert_int8

# the modules each part of the split is timed on (none calls another of its list)
DECODER = ("entry", "compress", "refine8", "refine4", "refine8.skip", "refine8.skip_block",
           "refine4.skip", "refine4.skip_block")
PARTS = {"query encoder": ("query_encoder",), "memory encoder": ("memory_encoder",),
         "memory read": ("reader",), "kernels + head": ("kernel_head",),
         "decoder": tuple(f"decoder.{name}" for name in DECODER)}


class PartTimer:
    """Wall time per model part, from forward hooks (no change to the model's code)."""

    def __init__(self, model: torch.nn.Module, device: str) -> None:
        self.totals: dict[str, float] = defaultdict(float)
        self.device = device
        self.handles = []
        for label, names in PARTS.items():
            for name in names:
                module = model.get_submodule(name)
                self.handles.append(module.register_forward_pre_hook(self._start(name)))
                self.handles.append(module.register_forward_hook(self._stop(name, label)))
        self._started: dict[str, float] = {}

    def _sync(self) -> None:
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()

    def _start(self, name):
        def hook(module, args):
            self._sync()
            self._started[name] = time.perf_counter()
        return hook

    def _stop(self, name, label):
        def hook(module, args, output):
            self._sync()
            self.totals[label] += time.perf_counter() - self._started.pop(name)
        return hook

    def close(self) -> None:
        for h in self.handles:
            h.remove()


def dense_gflops(device: str, n: int = 2048, repeats: int = 10,
                 dtype: torch.dtype = torch.float32) -> float:
    """Measured matrix-product throughput of this machine in `dtype`, in GFLOP/s."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def _clip(frames: int, objects: int, height: int = 480, width: int = 854, seed: int = 0):
    return generate_clip(np.random.default_rng(seed), height, width, frames, objects)


def frame_flops(model, settings: InferenceConfig, device: str, objects: int) -> float:
    """FLOPs per frame, averaged over one memory period (`mem_every` frames: one of them
    runs the memory encoder, the others may not). An int8 model's are counted on its
    float32 twin: PyTorch counts its own operations, not oneDNN's int8 ones, and the
    work is the same."""
    if getattr(model, "precision", None) == "int8":
        model = float_twin(model)
    period = settings.mem_every
    clip = _clip(2 + period, objects)
    p = Predictor(model, settings, device)
    p.step(clip.frames[0], clip.labels[0])
    p.step(clip.frames[1])
    with FlopCounterMode(display=False) as counter:
        for frame in clip.frames[2:]:
            p.step(frame)
    return counter.get_total_flops() / period


def float_twin(model):
    """A float32 copy of an int8 model (`LGDK.use_int8`): the same work in float32."""
    twin = copy.deepcopy(model)
    revert_int8(twin)
    twin.reader.int8 = False
    twin.precision = "float32"
    return twin


def rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def speed(model, settings: InferenceConfig, device: str, frames: int, objects: int,
          warmup: int = 5) -> dict:
    clip = _clip(min(frames + warmup, 60), objects)
    p = Predictor(model, settings, device)
    # the split needs module hooks: PyTorch models only (not an ONNX Runtime model)
    timer = PartTimer(model, device) if isinstance(model, torch.nn.Module) else None
    latencies = []
    try:
        for t in range(frames + warmup):
            frame = clip.frames[t % len(clip.frames)]
            if t == warmup and timer:
                timer.totals.clear()
            start = time.perf_counter()
            p.step(frame, clip.labels[0] if t == 0 else None)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            if t >= warmup:
                latencies.append(time.perf_counter() - start)
    finally:
        if timer:
            timer.close()
    lat = np.array(latencies)
    split = {}
    if timer:
        split = {k: v / frames * 1000 for k, v in timer.totals.items()}
        split["other"] = lat.mean() * 1000 - sum(split.values())
    return {"median_ms": float(np.median(lat) * 1000), "p90_ms": float(np.percentile(lat, 90)
                                                                     * 1000),
            "fps": float(1 / lat.mean()), "split_ms": split, "peak_rss_mb": rss_mb()}


def adaptation_seconds(model, settings: InferenceConfig, device: str, objects: int) -> dict:
    """Time of `--adapt` (settings.adapt_steps of settings.adapt_part) on the first frame of
    the benchmark clip with `objects` objects: in all and per object."""
    from lgdk.infer.adapt import adapt_model, adaptable_copies

    clip = _clip(1, objects)
    copy = adaptable_copies([model])[0]
    start = time.perf_counter()
    adapt_model(copy, [(clip.frames[0], clip.labels[0])], settings, torch.device(device))
    seconds = time.perf_counter() - start
    return {"steps": settings.adapt_steps, "part": settings.adapt_part, "seconds": seconds,
            "seconds_per_object": seconds / objects}


def long_video_memory(model, settings: InferenceConfig, device: str,
                      checkpoints=(500, 10000), size: int = 32) -> dict:
    """Memory held after many frames at a small size: the bank's bytes and process RSS."""
    clip = _clip(30, 1, height=size, width=size * 16 // 9)
    p = Predictor(model, dataclasses.replace(settings, size=size), device)
    out = {}
    for t in range(max(checkpoints)):
        p.step(clip.frames[t % 30], clip.labels[0] if t == 0 else None)
        if t + 1 in checkpoints:
            out[str(t + 1)] = {"memory_frames": len(p.bank.readable()),
                               "bank_bytes": p.bank.nbytes(), "peak_rss_mb": rss_mb()}
    return out


STARTUP_PROBE = """
import time
start = time.perf_counter()
import torch, timm
from lgdk.infer.loading import load_models
imported = time.perf_counter()
load_models({checkpoints!r}, {device!r})
print(imported - start, time.perf_counter() - imported)
"""


def time_to_first_mask(device: str, size: int, checkpoint: str | None = None) -> dict:
    """What a user waits for before the first predicted mask: a new `lgdk segment`
    process on a 2-frame 854x480 clip (frame 0's mask given, frame 1 predicted), from
    start to exit; and, in another new process, the part of it spent importing torch and
    timm and the part loading the model."""
    from PIL import Image

    from lgdk.data.masks import write_mask

    clip = _clip(2, 1)
    extra = ["--checkpoint", checkpoint] if checkpoint else []
    with tempfile.TemporaryDirectory() as tmp:
        frames = Path(tmp) / "frames"
        frames.mkdir()
        for i, frame in enumerate(clip.frames):
            Image.fromarray(frame).save(frames / f"{i:05d}.jpg", quality=95)
        write_mask(Path(tmp) / "first.png", clip.labels[0])
        command = [sys.executable, "-m", "lgdk", "segment", str(frames), "--mask",
                   str(Path(tmp) / "first.png"), "--out", str(Path(tmp) / "out"), "--size",
                   str(size), "--device", device, "--no-progress", *extra]
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        total = time.perf_counter() - start
    probe = STARTUP_PROBE.format(checkpoints=[checkpoint] if checkpoint else None,
                                 device=device)
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True,
                         text=True).stdout.split()
    return {"seconds": total, "import_seconds": float(out[0]), "load_seconds": float(out[1])}


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def format_report(report: dict) -> str:
    lines = [f"machine {report['machine']} ({report['device']}, backend {report['runtime']}, "
             f"{report['precision']}); {report['frames']} frames at size {report['size']}, "
             f"{report['objects']} object(s)",
             f"latency median {report['median_ms']:.1f} ms, p90 {report['p90_ms']:.1f} ms, "
             f"{report['fps']:.2f} frames/s"]
    if report["split_ms"]:
        lines.append("split (ms/frame): " + ", ".join(f"{k} {v:.1f}" for k, v in
                                                      report["split_ms"].items()))
    if "flops_per_frame" in report:
        peak = (f"{report['dense_gflops']:.0f} GFLOP/s float32"
                + (f", {report['compute_gflops']:.0f} {report['precision']}"
                   if "compute_gflops" in report else ""))
        of = "bfloat16" if "compute_gflops" in report else "float32"
        lines.append(f"FLOPs/frame {report['flops_per_frame'] / 1e9:.2f} G; dense matmul "
                     f"{peak}; reached {report['achieved_gflops']:.1f} GFLOP/s = "
                     f"{100 * report['hardware_fraction']:.1f}% of the {of} matmul")
    if "one_object" in report:
        one, n = report["one_object"], report["objects"]
        lines.append(f"{n} objects at {report['fps'] / one['fps']:.2f} of one object's "
                     f"frames/s ({one['fps']:.2f}); each object beyond the first adds "
                     f"{(report['median_ms'] - one['median_ms']) / (n - 1):.1f} ms a frame "
                     f"(medians {report['median_ms']:.1f} against {one['median_ms']:.1f})")
    lines.append(f"peak resident memory {report['peak_rss_mb']:.0f} MB")
    if "first_mask" in report:
        f = report["first_mask"]
        lines.append(f"time to first mask {f['seconds']:.2f} s (a new `lgdk segment` on 2 "
                     f"frames, start to exit; importing torch and timm "
                     f"{f['import_seconds']:.2f} s, loading the model {f['load_seconds']:.2f} s)")
    if "adaptation" in report:
        a = report["adaptation"]
        lines.append(f"--adapt {a['steps']} ({a['part']}): {a['seconds']:.1f} s before "
                     f"propagation, {a['seconds_per_object']:.1f} s per object")
    for n, info in report.get("long_video", {}).items():
        lines.append(f"after {n} frames: {info['memory_frames']} memory frames, bank "
                     f"{info['bank_bytes'] / 1e6:.2f} MB, peak RSS {info['peak_rss_mb']:.0f} MB")
    return "\n".join(lines)
