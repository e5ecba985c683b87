"""IoU of masks made from each object's tight ground-truth box (or one click in its middle),
then with one extra click.

usage: python scripts/eval_prompts.py [--root ../shared/data/davis2016/dev-val]
           [--every 10] [--method learned|network|grabcut] [--checkpoint CKPT]
           [--prompt-net FILE] [--limit N] [--start box|click] [--held-out]

Every --every-th annotated frame of every sequence (or every --every-th still of a folder
of images + masks) is a test image, at most --limit of them; for each object the
box is its mask's bounding box. The click goes where the box's mask is most wrong: the
interior point (largest distance to the region's edge) of the largest wrong region,
positive where the object was missed, negative where background was taken. Prints the
mean IoU from the box, from box + click, and the median time per box.
"""

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lgdk.data.layouts import davis_frames, davis_sequences, image_mask_pairs, is_davis_layout
from lgdk.data.masks import object_ids, read_mask
from lgdk.eval.metrics import jaccard
from lgdk.infer.loading import load_models
from lgdk.infer.predictor import Predictor
from lgdk.prompts import DEFAULT_METHOD, METHODS, mask_from_object_prompts
from lgdk.prompts.learned import load_prompt_net
from lgdk.prompts.spec import ObjectPrompt, tight_box
from lgdk.train.prompt_samples import (
    ObjectRef,
    PromptSampling,
    correcting_click,
    is_held_out,
)


def test_images(root: Path, every: int, limit: int):
    """(group name, image path, mask path): DAVIS sequences or a folder of stills."""
    if is_davis_layout(root):
        items = [(seq, i, m) for seq in davis_sequences(root)
                 for i, m in [(i, m) for i, m in davis_frames(root, seq) if m is not None][::every]]
    else:
        items = [(root.name, i, m) for i, m in image_mask_pairs(root)[::every]]
    return items[:limit] if limit else items


def first_prompt(truth: np.ndarray, start: str) -> ObjectPrompt:
    if start == "box":
        return ObjectPrompt(1, box=tight_box(truth))
    return ObjectPrompt(1, clicks=[correcting_click(np.zeros_like(truth), truth)])


def all_at_once(image, truth_ids, make_mask) -> list[float]:
    """Every object's tight box given together: each object's IoU in the combined mask."""
    objects = object_ids(truth_ids)
    ids = make_mask(image, [ObjectPrompt(o, box=tight_box(truth_ids == o)) for o in objects])
    return [jaccard(ids == o, truth_ids == o) for o in objects]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", default="../shared/data/davis2016/dev-val")
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--held-out", action="store_true",
                        help="only the images the prompt network's training kept out")
    parser.add_argument("--start", default="box", choices=("box", "click"),
                        help="box: the tight box; click: one positive click in the middle "
                             "of the object's largest piece")
    parser.add_argument("--method", default=DEFAULT_METHOD, choices=METHODS)
    parser.add_argument("--checkpoint", default=None, help="network method: default shipped")
    parser.add_argument("--prompt-net", default=None, help="learned method: default shipped")
    args = parser.parse_args()
    net = load_prompt_net(args.prompt_net) if args.method == "learned" else None
    make = None
    if args.method == "network":
        models, settings = load_models([args.checkpoint] if args.checkpoint else None, "cpu")
        make = lambda: Predictor(models[0], settings)  # noqa: E731

    def make_mask(image, prompts):
        return mask_from_object_prompts(image, prompts, args.method, make_predictor=make,
                                        prompt_net=net)

    groups: dict[str, list[float]] = {}
    first_iou, click_iou, seconds, together = [], [], [], []
    with torch.inference_mode():
        for group, image_path, mask_path in test_images(Path(args.root), args.every, args.limit):
            if args.held_out and not is_held_out(ObjectRef(image_path, mask_path, 0),
                                                 PromptSampling().held_out):
                continue
            image = np.asarray(Image.open(image_path).convert("RGB"))
            truth_ids = read_mask(mask_path)
            for obj in object_ids(truth_ids):
                truth = truth_ids == obj
                prompt = first_prompt(truth, args.start)
                start = time.perf_counter()
                pred = make_mask(image, [prompt]) == 1
                seconds.append(time.perf_counter() - start)
                first_iou.append(jaccard(pred, truth))
                groups.setdefault(group, []).append(first_iou[-1])
                prompt.clicks.append(correcting_click(pred, truth))
                click_iou.append(jaccard(make_mask(image, [prompt]) == 1, truth))
            if len(object_ids(truth_ids)) > 1:
                together += all_at_once(image, truth_ids, make_mask)
    for group, values in groups.items():
        print(f"{group}: {args.start} IoU {np.mean(values):.3f} ({len(values)} objects)")
    if together:
        print(f"{len(together)} objects in images of several: mean IoU {np.mean(together):.3f} "
              "with every object's box given at once")
    print(f"{args.method}: {len(first_iou)} objects; mean IoU from the {args.start} "
          f"{np.mean(first_iou):.3f}, {args.start} + 1 click {np.mean(click_iou):.3f}; median "
          f"{1000 * np.median(seconds):.0f} ms per {args.start}")


if __name__ == "__main__":
    main()
