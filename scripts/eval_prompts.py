"""IoU of the first masks made from every object's tight ground-truth box (or one click in
its middle), all of a frame's objects given together as `lgdk segment --box .. --box ..`
does, then after 1 and 3 automatic corrective clicks.

usage: python scripts/eval_prompts.py [--root ../shared/data/davis2016/dev-val]
           [--every 10] [--method learned+network|learned|network|grabcut] [--checkpoint CKPT]
           [--prompt-net FILE] [--limit N] [--start box|click] [--held-out]
           [--part selection|report|all] [--per-object] [--json FILE]

Every --every-th annotated frame of every sequence (or every --every-th still of a folder
of images + masks) is a test image, at most --limit of them; --part keeps the sequences
(or stills) of one part of the split (`scripts/splits.py`: choose on `selection`, only
report `report`). For each object the box is its mask's bounding box; all of an image's
boxes go in together and each object is scored in the combined mask of ids. A corrective
click goes where that object's mask is most wrong (the interior point of the largest
wrong region, positive where the object was missed, negative where something else was
taken), is added to that object's prompt (the others keep theirs), and the whole frame is
made again (the NoC-style protocol). Prints the means, the gain of one click on objects
below 0.8, and the median time of a frame's first mask.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from splits import in_part

from lgdk.data.layouts import davis_frames, davis_sequences, image_mask_pairs, is_davis_layout
from lgdk.data.masks import object_ids, read_mask
from lgdk.eval.metrics import jaccard
from lgdk.infer.loading import load_models
from lgdk.infer.tta import make_predictor
from lgdk.prompts import DEFAULT_METHOD, METHODS, mask_from_object_prompts
from lgdk.prompts.learned import load_prompt_net
from lgdk.prompts.make import PROMPT_NET_METHODS, REFINE_ROUNDS
from lgdk.prompts.spec import ObjectPrompt, tight_box
from lgdk.train.prompt_samples import ObjectRef, PromptSampling, correcting_click, is_held_out

CLICKS = 3  # corrective clicks per object
BELOW = 0.8  # the click's gain is reported on objects below this IoU


def test_images(root: Path, every: int, limit: int, part: str):
    """(group name, image path, mask path): DAVIS sequences or a folder of stills."""
    if is_davis_layout(root):
        items = [(seq, i, m) for seq in davis_sequences(root) if in_part(seq, part)
                 for i, m in [(i, m) for i, m in davis_frames(root, seq) if m is not None][::every]]
    else:
        items = [(root.name, i, m) for i, m in image_mask_pairs(root)[::every]
                 if in_part(i.stem, part)]
    return items[:limit] if limit else items


def first_prompt(object_id: int, truth: np.ndarray, start: str) -> ObjectPrompt:
    if start == "box":
        return ObjectPrompt(object_id, box=tight_box(truth))
    return ObjectPrompt(object_id, clicks=[correcting_click(np.zeros_like(truth), truth)])


def score_image(image: np.ndarray, truth_ids: np.ndarray, start: str, make_mask) -> dict:
    """Per object: IoU of the first mask and after each corrective click; the first
    mask's time."""
    objects = object_ids(truth_ids)
    prompts = [first_prompt(o, truth_ids == o, start) for o in objects]
    begin = time.perf_counter()
    ids = make_mask(image, prompts)
    seconds = time.perf_counter() - begin
    rows = []
    for k, obj in enumerate(objects):
        truth = truth_ids == obj
        ious = [jaccard(ids == obj, truth)]
        tried = [ObjectPrompt(p.object_id, p.box, list(p.clicks)) for p in prompts]
        pred = ids == obj
        for _ in range(CLICKS):
            click = correcting_click(pred, truth)
            if click is None:
                ious.append(ious[-1])
                continue
            tried[k].clicks.append(click)
            pred = make_mask(image, tried) == obj
            ious.append(jaccard(pred, truth))
        rows.append({"object": int(obj), "pixels": int(truth.sum()), "iou": ious})
    return {"objects": rows, "seconds": seconds}


def summary(rows: list[dict]) -> dict:
    first = np.array([r["iou"][0] for r in rows])
    one = np.array([r["iou"][1] for r in rows])
    three = np.array([r["iou"][CLICKS] for r in rows])
    low = first < BELOW
    return {"objects": len(rows), "first": float(first.mean()), "click1": float(one.mean()),
            "click3": float(three.mean()), "below": int(low.sum()),
            "gain_below": float((one[low] - first[low]).mean()) if low.any() else None}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", default="../shared/data/davis2016/dev-val")
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--part", default="all", choices=("selection", "report", "all"))
    parser.add_argument("--held-out", action="store_true",
                        help="only the images the prompt network's training kept out")
    parser.add_argument("--start", default="box", choices=("box", "click"),
                        help="box: the tight box; click: one positive click in the middle "
                             "of the object's largest piece")
    parser.add_argument("--method", default=DEFAULT_METHOD, choices=METHODS)
    parser.add_argument("--checkpoint", default=None,
                        help="the segmentation network of the refining methods: default shipped")
    parser.add_argument("--prompt-net", default=None,
                        help="the prompt network of the learned methods: default shipped")
    parser.add_argument("--per-object", action="store_true", help="print every object")
    parser.add_argument("--json", default=None, help="write every object's figures here")
    args = parser.parse_args()
    net = load_prompt_net(args.prompt_net) if args.method in PROMPT_NET_METHODS else None
    make = None
    if args.method in REFINE_ROUNDS:  # the predictors `lgdk segment` makes
        models, settings = load_models([args.checkpoint] if args.checkpoint else None, "cpu")
        make = lambda: make_predictor(models, settings)  # noqa: E731

    def make_mask(image, prompts):
        return mask_from_object_prompts(image, prompts, args.method, make_predictor=make,
                                        prompt_net=net)

    rows, seconds = [], []
    with torch.inference_mode():
        for group, image_path, mask_path in test_images(Path(args.root), args.every,
                                                        args.limit, args.part):
            if args.held_out and not is_held_out(ObjectRef(image_path, mask_path, 0),
                                                 PromptSampling().held_out):
                continue
            image = np.asarray(Image.open(image_path).convert("RGB"))
            scored = score_image(image, read_mask(mask_path), args.start, make_mask)
            seconds.append(scored["seconds"])
            for row in scored["objects"]:
                rows.append({"group": group, "image": image_path.name, **row})
                if args.per_object:
                    print(f"{group} {image_path.name} object {row['object']} "
                          f"({row['pixels']} px): " + " ".join(f"{v:.3f}" for v in row["iou"]))
    groups = {}
    for row in rows:
        groups.setdefault(row["group"], []).append(row["iou"][0])
    print(" ".join(f"{g} {np.mean(v):.2f}" for g, v in groups.items()))
    s = summary(rows)
    gain = "-" if s["gain_below"] is None else f"{s['gain_below']:+.3f}"
    print(f"{args.method}, {args.start}, part {args.part}: {s['objects']} objects in "
          f"{len(seconds)} images; mean IoU {s['first']:.3f}, after 1 click {s['click1']:.3f}, "
          f"after {CLICKS} {s['click3']:.3f}; 1 click on the {s['below']} below {BELOW}: "
          f"{gain}; median {1000 * np.median(seconds):.0f} ms a frame's first mask")
    if args.json:
        Path(args.json).write_text(json.dumps({"summary": s, "objects": rows}, indent=1))


if __name__ == "__main__":
    main()
