"""A DAVIS layout whose first masks are made from boxes, to measure whole videos started
from a box instead of the true mask.

usage: python scripts/make_box_start.py [--src ../shared/data/davis2016/dev-val]
           [--out out/box-start] [--method learned+network|learned|network|grabcut]
           [--checkpoint CKPT] [--prompt-net FILE]
then:  lgdk segment --dataset out/box-start --out PRED
       lgdk eval --pred PRED --gt ../shared/data/davis2016/dev-val/Annotations

For each sequence, every object of the first frame's true mask gives its tight bounding
box; `lgdk.prompts` turns the boxes into the first mask, written as
OUT/Annotations/<seq>/<first frame>.png; OUT/JPEGImages/<seq> links to the source frames.
Prints each first mask's IoU against the truth and the median time per frame's boxes.
"""

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lgdk.data.layouts import davis_frames, davis_sequences
from lgdk.data.masks import object_ids, read_mask, write_mask
from lgdk.eval.metrics import jaccard
from lgdk.infer.loading import load_models
from lgdk.infer.tta import make_predictor
from lgdk.prompts import DEFAULT_METHOD, METHODS, mask_from_object_prompts
from lgdk.prompts.learned import load_prompt_net
from lgdk.prompts.make import PROMPT_NET_METHODS
from lgdk.prompts.spec import ObjectPrompt, tight_box


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--src", default="../shared/data/davis2016/dev-val")
    parser.add_argument("--out", default="out/box-start")
    parser.add_argument("--method", default=DEFAULT_METHOD, choices=METHODS)
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--prompt-net", default=None, help="learned methods: default shipped")
    args = parser.parse_args()
    net = load_prompt_net(args.prompt_net) if args.method in PROMPT_NET_METHODS else None
    src, out = Path(args.src), Path(args.out)
    models, settings = load_models([args.checkpoint] if args.checkpoint else None, "cpu")
    ious, seconds = [], []
    for seq in davis_sequences(src):
        image_path, mask_path = davis_frames(src, seq)[0]
        truth = read_mask(mask_path)
        prompts = []
        for obj in object_ids(truth):
            prompts.append(ObjectPrompt(obj, box=tight_box(truth == obj)))
        image = np.asarray(Image.open(image_path).convert("RGB"))
        start = time.perf_counter()
        with torch.inference_mode():
            ids = mask_from_object_prompts(image, prompts, args.method,
                                           make_predictor=lambda: make_predictor(models, settings),
                                           prompt_net=net)
        seconds.append(time.perf_counter() - start)
        (out / "Annotations" / seq).mkdir(parents=True, exist_ok=True)
        write_mask(out / "Annotations" / seq / f"{image_path.stem}.png", ids)
        (out / "JPEGImages").mkdir(parents=True, exist_ok=True)
        link = out / "JPEGImages" / seq
        if not link.exists():
            os.symlink((src / "JPEGImages" / seq).resolve(), link)
        iou = np.mean([jaccard(ids == o, truth == o) for o in object_ids(truth)])
        ious.append(iou)
        print(f"{seq}: first-mask IoU {iou:.3f}", flush=True)
    print(f"{args.method}: mean first-mask IoU {np.mean(ious):.3f}; median "
          f"{1000 * np.median(seconds):.0f} ms per first frame")


if __name__ == "__main__":
    main()
