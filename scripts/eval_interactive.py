"""The loop a person works in, simulated through the app's own session (`lgdk.app.session`,
the code behind `lgdk app`): give frame 0's mask, propagate, then each round correct the
worst frame and propagate again. Prints J&F after rounds 0 to R and the seconds each
propagation took.

usage: python scripts/eval_interactive.py [--sets devval,dogs,mots] [--parts selection]
           [--rounds 5] [--corrections clicks|masks] [--clicks 3] [--json out/x.json]
           [--pick worst|strip] [--later-seeds N]
           [-- lgdk segment settings, e.g. --size 480]

- clicks: on the worst frame the simulated user clicks at most `--clicks` times, each on
  the object that is worst there, at the interior point of its largest wrong region
  (positive where it was missed, negative where it spilled), as `lgdk app` receives it;
- masks: the worst frame's true mask is given whole (the upper bound of a correction).

J&F is scored on every frame but frame 0 (and, with masks, but the frames given), per
object, void excluded. The frame corrected: with `--pick worst`, the lowest mean J over
objects among frames not corrected yet (what a person finds by looking); with `--pick
strip`, the most doubtful one by the app's strip (`lgdk.infer.doubt`: what the app points
to, no truth used). Each round also gives how well the strip ranks the frames: the
Spearman correlation of each frame's doubt with its error (1 - mean J).

Sets with every frame's masks: devval (DAVIS-2016 dev-val, by part), dogs (dogs-jump,
report part), mots (clips cut from out/mots by `mots_clips.py`: mots-0005 is the
selection part, mots-0009 the report part).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from mots_clips import MOTS_PARTS, cut_clips
from splits import in_part

from lgdk.app.limits import AppSettings
from lgdk.app.session import Session
from lgdk.cli.common import add_setting_flags, given_settings
from lgdk.data.masks import VOID, object_ids, read_mask
from lgdk.eval.metrics import f_measure, jaccard
from lgdk.infer.loading import load_models
from lgdk.infer.tta import make_predictor
from lgdk.prompts.spec import PromptError
from lgdk.train.prompt_samples import correcting_click
from lgdk.video import job as video_job
from lgdk.video.video_io import open_frames

DEVVAL = Path("../shared/data/davis2016/dev-val")
DOGS = Path("../shared/data/davis2017/dogs-jump")


@dataclass
class Video:
    name: str
    part: str
    source: Path  # a folder of frames or a video file
    truth: list[np.ndarray]  # each frame's (H, W) ids, 255 void


def devval(part: str) -> list[Video]:
    out = []
    for seq in sorted(p.name for p in (DEVVAL / "JPEGImages").iterdir()):
        if in_part(seq, part):
            masks = sorted((DEVVAL / "Annotations" / seq).glob("*.png"))
            truth = [(read_mask(m) > 0).astype(np.uint8) for m in masks]  # one object
            out.append(Video(seq, part, DEVVAL / "JPEGImages" / seq, truth))
    return out


def dogs(part: str) -> list[Video]:
    if not in_part("dogs-jump", part):
        return []
    truth = [read_mask(m) for m in sorted((DOGS / "Annotations").glob("*.png"))]
    return [Video("dogs-jump", part, DOGS / "dogs-jump.mp4", truth)]


def mots(part: str, root: Path, work: Path) -> list[Video]:
    out = []
    for seq, seq_part in MOTS_PARTS.items():
        if part in (seq_part, "all") and (root / "JPEGImages/480p" / seq).is_dir():
            for name, folder, truth in cut_clips(root, seq, work):
                out.append(Video(name, seq_part, folder, truth))
    return out


def score(labels: list[np.ndarray], truth: list[np.ndarray], skip: set[int]) -> dict:
    """J&F over the frames not in `skip`, per object then averaged; the per-frame mean J."""
    ids = object_ids(truth[0])
    frame_j, per_object = {}, {o: ([], []) for o in ids}
    for index, (pred, gt) in enumerate(zip(labels, truth)):
        void = gt == VOID
        js = []
        for o in ids:
            j = jaccard(pred == o, gt == o, void)
            js.append(j)
            if index not in skip:
                per_object[o][0].append(j)
                per_object[o][1].append(f_measure(pred == o, gt == o, void))
        frame_j[index] = float(np.mean(js))
    jf = [(np.mean(j) + np.mean(f)) / 2 for j, f in per_object.values() if j]
    return {"jf": float(np.mean(jf)), "frame_j": frame_j}


def rank_correlation(frame_j: dict[int, float], doubts: dict[int, float],
                     given: set[int]) -> float | None:
    """Spearman's correlation of the frames' doubt with their error (1 - J), given frames
    left out; None when either is constant."""
    frames = [i for i in frame_j if i not in given]
    error = np.array([1 - frame_j[i] for i in frames])
    doubt = np.array([doubts.get(i, 0.0) for i in frames])
    if len(frames) < 3 or error.std() == 0 or doubt.std() == 0:
        return None
    ranks = [np.argsort(np.argsort(x)).astype(float) for x in (error, doubt)]
    return float(np.corrcoef(*ranks)[0, 1])


def correct(session: Session, index: int, labels: np.ndarray, truth: np.ndarray,
            mode: str, clicks: int) -> int:
    """The simulated user's correction of frame `index`; -> the clicks it took."""
    if mode == "masks":
        session.give_mask(index, truth)
        return 0
    done = 0
    for _ in range(clicks):
        void = truth == VOID
        worst = min(object_ids(truth),
                    key=lambda o: jaccard(labels == o, truth == o, void))
        pred = np.where(void, truth == worst, labels == worst)
        click = correcting_click(pred, truth == worst)
        if click is None:
            break
        try:
            session.click(index, worst, click.x, click.y, click.positive)
        except PromptError as exc:
            print(f"  click refused: {exc}", file=sys.stderr)
            break
        done += 1
        labels = session.labels(index)
    return done


def run_loop(video: Video, make, args) -> dict:
    with tempfile.TemporaryDirectory(prefix="lgdk-loop-") as folder:
        settings = AppSettings(max_objects=64)
        session = Session(Path(folder), make, settings)
        session.load_source(open_frames(video.source))
        session.give_mask(0, video.truth[0])
        given, rounds = {0}, []
        for round_ in range(args.rounds + 1):
            began = time.perf_counter()
            session.propagate()
            session._thread.join()
            if session.progress.error:
                raise RuntimeError(session.progress.error)
            seconds = time.perf_counter() - began
            labels = [session.labels(i) for i in range(len(video.truth))]
            skip = given if args.corrections == "masks" else {0}
            result = score(labels, video.truth, skip)
            rounds.append({"jf": result["jf"], "seconds": seconds})
            if round_ == args.rounds:
                print(f"  {video.name} round {round_}: J&F {result['jf']:.3f} "
                      f"({seconds:.1f} s)", flush=True)
                break
            doubts = {d.frame: d.doubt for d in session.doubts()}
            rounds[-1]["doubt_rank"] = rank_correlation(result["frame_j"], doubts, given)
            open_frames_j = {i: j for i, j in result["frame_j"].items() if i not in given}
            if not open_frames_j:
                break
            if args.pick == "strip":
                worst = max(open_frames_j, key=lambda i: (doubts.get(i, 0.0), -i))
            else:
                worst = min(open_frames_j, key=open_frames_j.get)
            rounds[-1]["corrected"] = worst
            rounds[-1]["clicks"] = correct(session, worst, labels[worst], video.truth[worst],
                                           args.corrections, args.clicks)
            given.add(worst)
            rho = rounds[-1]["doubt_rank"]
            print(f"  {video.name} round {round_}: J&F {result['jf']:.3f} ({seconds:.1f} s); "
                  f"strip rank correlation {'-' if rho is None else f'{rho:.2f}'}; "
                  f"corrected frame {worst}", flush=True)
        session.close()
    return {"name": video.name, "part": video.part, "rounds": rounds}


def print_table(results: list[dict], rounds: int) -> None:
    header = " | ".join(str(r) for r in range(rounds + 1))
    print(f"\n| video | part | {header} |\n|---|---|{'---|' * (rounds + 1)}")
    for part in sorted({r["part"] for r in results}):
        rows = [r for r in results if r["part"] == part]
        for r in rows:
            cells = " | ".join(f"{x['jf']:.3f}" for x in r["rounds"])
            print(f"| {r['name']} | {part} | {cells} |")
        means = [np.mean([r["rounds"][k]["jf"] for r in rows if len(r["rounds"]) > k])
                 for k in range(rounds + 1)]
        secs = [np.mean([r["rounds"][k]["seconds"] for r in rows if len(r["rounds"]) > k])
                for k in range(rounds + 1)]
        print(f"| **mean** | {part} | " + " | ".join(f"**{m:.3f}**" for m in means) + " |")
        print(f"| seconds | {part} | " + " | ".join(f"{s:.1f}" for s in secs) + " |")


def main() -> None:
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sets", default="devval,dogs,mots")
    p.add_argument("--parts", default="selection")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--corrections", choices=("clicks", "masks"), default="clicks")
    p.add_argument("--clicks", type=int, default=3)
    p.add_argument("--pick", choices=("worst", "strip"), default="worst")
    p.add_argument("--later-seeds", type=int, default=video_job.LATER_SEEDS)
    p.add_argument("--mots", type=Path, default=Path("out/mots"))
    p.add_argument("--only", default="", help="comma-separated video names")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    settings_parser = argparse.ArgumentParser()
    settings_parser.add_argument("--checkpoint", action="append")
    add_setting_flags(settings_parser)
    flags = settings_parser.parse_args(extra)
    video_job.LATER_SEEDS = args.later_seeds  # every job the session makes
    torch.set_num_threads(max(1, torch.get_num_threads()))
    models, settings = load_models(flags.checkpoint, "cpu", **given_settings(flags))
    make = lambda: make_predictor(models, settings, "cpu")  # noqa: E731
    work = Path(tempfile.mkdtemp(prefix="lgdk-clips-"))
    results = []
    for part in args.parts.split(","):
        videos = []
        sets = args.sets.split(",")
        videos += devval(part) if "devval" in sets else []
        videos += dogs(part) if "dogs" in sets else []
        videos += mots(part, args.mots, work) if "mots" in sets else []
        only = set(filter(None, args.only.split(",")))
        for video in videos:
            if not only or video.name in only:
                results.append(run_loop(video, make, args))
    print_table(results, args.rounds)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                         "settings": extra, "results": results}, indent=1))


if __name__ == "__main__":
    main()
