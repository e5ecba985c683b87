"""Give a trained model a cheaper part (memory encoder, ASPP): distil it from the model's own.

usage: python scripts/distill_part.py --teacher RUN/final.safetensors
           --config experiments/presets/default-cpu-fast.yaml --out RUN_DIR
           [--part memory_encoder|decoder_entry]
           [--iterations N] [--batch-size B]

The student is the config's model (e.g. `memory_encoder: fast`, or `aspp_reduce: 128`)
with every tensor it shares with the teacher copied from it; only the part is trained
(see `lgdk.train.distill`). Writes RUN_DIR/final.safetensors (usable by `lgdk segment
--checkpoint`, or as `train.init_from` of a fine-tuning run) and RUN_DIR/distill.tsv.
"""

import argparse
import logging
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from lgdk.config import load_config
from lgdk.data.clips import ClipDataset
from lgdk.models.checkpoint import load_checkpoint, load_matching_weights, save_checkpoint
from lgdk.models.network import build_model
from lgdk.train.distill import PARTS, distill_part


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--teacher", required=True, help="the trained model's checkpoint")
    parser.add_argument("--config", required=True, help="preset or YAML: student + data")
    parser.add_argument("--out", required=True, help="run folder")
    parser.add_argument("--part", default="memory_encoder", choices=sorted(PARTS))
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=4, help="clips per step")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.manual_seed(args.seed)
    cfg = load_config(args.config)
    teacher, _ = load_checkpoint(args.teacher)
    student = build_model(cfg.model)
    fresh = load_matching_weights(student, args.teacher)
    logging.info("student: %d tensors from the teacher, %d fresh",
                 len(student.state_dict()) - len(fresh), len(fresh))
    teacher.to(memory_format=torch.channels_last)
    student.to(memory_format=torch.channels_last)
    data = ClipDataset(cfg.data, args.iterations * args.batch_size, seed=args.seed)
    loader = DataLoader(data, batch_size=args.batch_size, num_workers=cfg.data.workers)
    losses = distill_part(teacher, student, loader, args.iterations, args.part, args.lr)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    save_checkpoint(out / "final.safetensors", student, cfg,
                    extra={"distilled_from": args.teacher, "part": args.part,
                           "iteration": args.iterations})
    (out / "distill.tsv").write_text("".join(f"{i + 1}\t{v:.5f}\n"
                                             for i, v in enumerate(losses)))
    print(f"wrote {out / 'final.safetensors'} (last 50 steps' loss "
          f"{sum(losses[-50:]) / len(losses[-50:]):.4f})")


if __name__ == "__main__":
    main()
