"""Train the learned prompt network's head (boxes and clicks -> masks).

usage: python scripts/train_prompt_net.py --out runs/prompt-net [--iterations 3000]
           [--batch 16] [--lr 1e-3] [--root DIR ...] [--no-resume] [--init FILE]
           [--tuned-stages N] [--backbone-lr SHARE] [--correction-share SHARE]
           [--large-behind SHARE] [--others-clicked SHARE] [--feather SHARE]

Reads still images with masks and annotated DAVIS frames (default: the three still sets and
DAVIS-2016 train of ../shared/data; never dev-val); resumes from OUT/last.state.pt.
--init starts from a trained head (e.g. the shipped one: a head with fewer prompt maps
gets zero weights for the maps it lacks). --tuned-stages trains the backbone's last N
stages too, at --backbone-lr times the head's rate. Writes OUT/last.safetensors (the head
and any tuned stages in float16 + the config), ship it as
src/lgdk/weights/prompt.safetensors.
"""

import argparse

import torch

from lgdk.prompts.net import PromptNetConfig
from lgdk.train.prompt_net import PromptTraining, train_prompt_net
from lgdk.train.prompt_samples import PromptSampling

ROOTS = ["../shared/data/static/duts-tr", "../shared/data/static/ecssd",
         "../shared/data/static/pennfudan", "../shared/data/davis2016/train"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--root", action="append", help="repeat; default: " + " ".join(ROOTS))
    parser.add_argument("--iterations", type=int, default=PromptTraining.iterations)
    parser.add_argument("--batch", type=int, default=PromptTraining.batch)
    parser.add_argument("--lr", type=float, default=PromptTraining.lr)
    parser.add_argument("--size", type=int, default=PromptNetConfig.size)
    parser.add_argument("--tuned-stages", type=int, default=PromptNetConfig.tuned_stages,
                        help="the backbone's last N stages trained with the head")
    parser.add_argument("--backbone-lr", type=float, default=PromptTraining.backbone_lr,
                        help="the tuned stages' learning rate as a share of --lr")
    parser.add_argument("--correction-share", type=float,
                        default=PromptTraining.correction_share,
                        help="share of batches that also learn from a correcting click")
    parser.add_argument("--large-behind", type=float, default=PromptSampling.large_behind,
                        help="share of the pastes that are a larger object behind the "
                             "prompted one (0 for runs before lgdk-prompt-lite0-v2)")
    parser.add_argument("--others-clicked", type=float,
                        default=PromptSampling.others_clicked,
                        help="share of samples with a negative click on another object")
    parser.add_argument("--feather", type=float, default=PromptSampling.feather,
                        help="feather pasted objects' edges: a Gaussian of sigma up to this "
                             "share of the pasted object's longer side (0: hard edges)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--no-resume", action="store_true")
    parser.add_argument("--init", default=None, help="a prompt network file to start from")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    training = PromptTraining(iterations=args.iterations, batch=args.batch, lr=args.lr,
                              backbone_lr=args.backbone_lr,
                              correction_share=args.correction_share)
    net_cfg = PromptNetConfig(size=args.size, tuned_stages=args.tuned_stages)
    path = train_prompt_net(args.root or ROOTS, args.out, net_cfg,
                            training, resume=not args.no_resume, init=args.init,
                            sampling=PromptSampling(large_behind=args.large_behind,
                                                    others_clicked=args.others_clicked,
                                                    feather=args.feather))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
