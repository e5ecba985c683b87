"""The training loop: unrolls clips frame by frame through the model's own steps."""

from __future__ import annotations

import logging
import math
import os
import pickle
import time
from pathlib import Path

import torch
import yaml
from torch import nn
from torch.utils.data import DataLoader, Sampler

from lgdk.config import Config, ConfigError, to_dict
from lgdk.data.clips import ClipDataset
from lgdk.errors import UserError
from lgdk.models.checkpoint import load_matching_weights, load_weights_into, save_checkpoint
from lgdk.models.loss import batch_iou, bootstrap_fraction, clip_loss
from lgdk.models.network import LGDK, build_model
from lgdk.train.distributed import DistInfo, average_scalar, setup, teardown

log = logging.getLogger(__name__)


class StridedSampler(Sampler[int]):
    """Rank r of W takes, for iteration i, items (i*W + r)*B .. +B: any start iteration,
    any world size, the same items as an uninterrupted run."""

    def __init__(self, start_iteration: int, iterations: int, batch: int, info: DistInfo):
        self.start, self.iterations = start_iteration, iterations
        self.batch, self.info = batch, info

    def __iter__(self):
        w, r, b = self.info.world_size, self.info.rank, self.batch
        for it in range(self.start, self.iterations):
            yield from range((it * w + r) * b, (it * w + r + 1) * b)

    def __len__(self) -> int:
        return (self.iterations - self.start) * self.batch


def freeze_backbone_batchnorm(model: LGDK) -> None:
    """Backbone BatchNorm layers keep their ImageNet statistics and affine parameters."""
    for name, module in model.named_modules():
        if "backbone" in name and isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()
            for p in module.parameters():
                p.requires_grad_(False)


def train_only(model: nn.Module, prefixes: tuple[str, ...]) -> None:
    """Only the parameters whose names start with one of `prefixes` train; refuses a
    prefix that names no parameter (a misspelt part would silently freeze everything)."""
    names = [name for name, _ in model.named_parameters()]
    unknown = [p for p in prefixes if not any(n.startswith(p) for n in names)]
    if unknown:
        parts = sorted({n.split(".")[0] for n in names})
        raise ConfigError(f"train.trainable names no parameters: {', '.join(unknown)}; "
                          f"prefixes of parameter names, e.g. {', '.join(parts)}")
    for name, p in model.named_parameters():
        if not name.startswith(tuple(prefixes)):
            p.requires_grad_(False)


def param_groups(model: nn.Module, cfg: Config) -> list[dict]:
    backbone, rest = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (backbone if ".backbone." in name else rest).append(p)
    lr = cfg.train.lr
    return [{"params": backbone, "lr": lr * cfg.train.backbone_lr_scale},
            {"params": rest, "lr": lr}]


def lr_factor(cfg, iteration: int) -> float:
    t = cfg.train
    if iteration < t.warmup:
        return (iteration + 1) / t.warmup
    progress = (iteration - t.warmup) / max(1, t.iterations - t.warmup)
    if t.schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return 0.1 ** sum(iteration >= f * t.iterations for f in t.lr_steps)


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


class Trainer:
    def __init__(self, cfg: Config, out_dir: Path, device: str | None = None) -> None:
        self.cfg, self.out_dir = cfg, Path(out_dir)
        self.device = device or default_device()
        self.info = setup(self.device)
        if self.device.startswith("cuda") and self.info.enabled:
            self.device = f"cuda:{self.info.local_rank}"
        torch.manual_seed(cfg.train.seed)
        # bfloat16 autocast on GPUs; on a CPU with AMX a 15-iteration run was no faster
        self.autocast = cfg.train.amp and self.device.startswith("cuda")
        self.model = build_model(cfg.model)
        if cfg.train.init_from and cfg.train.init_matching_only:
            fresh = load_matching_weights(self.model, cfg.train.init_from)
            log.info("started from %s; %d tensors not in it start fresh (e.g. %s)",
                     cfg.train.init_from, len(fresh), fresh[:3])
        elif cfg.train.init_from:
            load_weights_into(self.model, cfg.train.init_from)
        if cfg.train.freeze_bn:
            freeze_backbone_batchnorm(self.model)
        if cfg.train.trainable:
            train_only(self.model, cfg.train.trainable)
        # channels-last: the same numbers, ~12% faster convolutions on this CPU (oneDNN)
        self.model.to(self.device, memory_format=torch.channels_last)
        self.net: nn.Module = self.model
        if self.info.enabled:
            ids = [self.info.local_rank] if self.device.startswith("cuda") else None
            self.net = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        self.optimizer = torch.optim.AdamW(param_groups(self.model, cfg),
                                           weight_decay=cfg.train.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda it: lr_factor(cfg, it))
        self.iteration = 0
        self.best_score = float("-inf")

    # ---- state -------------------------------------------------------------------------
    def state_path(self) -> Path:
        return self.out_dir / "last.state.pt"

    def save(self, final: bool = False) -> None:
        if not self.info.is_main:
            return
        extra = {"iteration": self.iteration}
        save_checkpoint(self.out_dir / "last.safetensors", self.model, self.cfg, extra=extra)
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "iteration": self.iteration,
            "torch_rng": torch.get_rng_state(),
        }
        tmp = self.state_path().with_name(".last.state.pt.tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.state_path())
        keep = self.cfg.train.keep_every
        if keep and self.iteration % keep == 0:  # milestones to measure along the way
            save_checkpoint(self.out_dir / f"iter{self.iteration:06d}.safetensors", self.model,
                            self.cfg, dtype=torch.float16, extra=extra)
        if final:
            save_checkpoint(self.out_dir / "final.safetensors", self.model, self.cfg, extra=extra)

    def resume(self) -> None:
        if not self.state_path().is_file():
            raise UserError(f"--resume: no {self.state_path()} to resume from; run "
                                    "without --resume to start")
        try:  # tensors and plain values only: a state file can never run code
            state = torch.load(self.state_path(), map_location=self.device, weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError) as exc:
            raise UserError(f"--resume: {self.state_path()} is not an lgdk training state "
                            f"({str(exc).splitlines()[0]}); run without --resume to start "
                            "again") from None
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.iteration = state["iteration"]
        torch.set_rng_state(state["torch_rng"].cpu())

    # ---- the loop ----------------------------------------------------------------------
    def loader(self) -> DataLoader:
        t = self.cfg.train
        total = t.iterations * t.batch_size * self.info.world_size
        dataset = ClipDataset(self.cfg.data, total, seed=t.seed)
        sampler = StridedSampler(self.iteration, t.iterations, t.batch_size, self.info)
        workers = self.cfg.data.workers
        return DataLoader(dataset, batch_size=t.batch_size, sampler=sampler,
                          num_workers=workers, persistent_workers=False,
                          prefetch_factor=2 if workers else None)

    def train_step(self, batch: dict[str, torch.Tensor]) -> tuple[float, float]:
        t = self.cfg.train
        batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        self.net.train()
        if t.freeze_bn:
            freeze_backbone_batchnorm(self.model)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.autocast):
            log_probs = self.net(batch["frames"], batch["first_masks"])
        log_probs = log_probs.float()
        fraction = bootstrap_fraction(self.iteration, t.bootstrap_start, t.bootstrap_end,
                                      t.bootstrap_top)
        loss = clip_loss(log_probs, batch["labels"], batch["num_objects"], fraction,
                         t.dice_weight)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if t.grad_clip:
            nn.utils.clip_grad_norm_(self.model.parameters(), t.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        return loss.item(), batch_iou(log_probs.detach(), batch["labels"])

    def run(self, progress: bool = True, stop_at: int | None = None) -> Path:
        """Train to the end (or stop after iteration `stop_at`, checkpointed, resumable)."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if self.info.is_main:
            (self.out_dir / "config.yaml").write_text(yaml.safe_dump(to_dict(self.cfg)))
        writer = self._writer()
        bar = _progress(self.cfg.train.iterations, self.iteration, progress and self.info.is_main)
        start = time.time()
        try:
            for batch in self.loader():
                loss, iou = self.train_step(batch)
                self.iteration += 1
                loss = average_scalar(loss, self.info, self.device)
                self._log(writer, bar, loss, iou, start)
                if self.iteration % self.cfg.train.checkpoint_every == 0:
                    self.save()
                self._maybe_validate(writer)
                if stop_at is not None and self.iteration >= stop_at:
                    self.save()
                    return self.out_dir / "last.safetensors"
            self.save(final=True)
        finally:
            bar.close()
            if writer is not None:
                writer.close()
            teardown(self.info)
        return self.out_dir / "final.safetensors"

    def _maybe_validate(self, writer) -> None:
        t = self.cfg.train
        if not (t.val_root and t.val_every and self.iteration % t.val_every == 0):
            return
        if not self.info.is_main:
            return
        from lgdk.train.validate import validate

        score = validate(self.model, t.val_root, self.device, self.cfg.inference)
        with open(self.out_dir / "val.tsv", "a") as fh:
            fh.write(f"{self.iteration}\t{score:.5f}\n")
        if writer is not None:
            writer.add_scalar("val/J&F", score, self.iteration)
        if score > self.best_score:
            self.best_score = score
            save_checkpoint(self.out_dir / "best.safetensors", self.model, self.cfg,
                            extra={"iteration": self.iteration, "val_jf": score})

    def _writer(self):
        if not self.info.is_main:
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            return None
        return SummaryWriter(str(self.out_dir / "tb"))

    def _log(self, writer, bar, loss: float, iou: float, start: float) -> None:
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.4f}", iou=f"{iou:.3f}")
        if writer is not None and self.iteration % self.cfg.train.log_every == 0:
            writer.add_scalar("train/loss", loss, self.iteration)
            writer.add_scalar("train/iou", iou, self.iteration)
            writer.add_scalar("train/lr", self.scheduler.get_last_lr()[0], self.iteration)
        if self.info.is_main and self.iteration % self.cfg.train.log_every == 0:
            with open(self.out_dir / "log.tsv", "a") as fh:
                fh.write(f"{self.iteration}\t{loss:.5f}\t{iou:.4f}\t{time.time() - start:.1f}\n")


def _progress(total: int, initial: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, unit="it",
                dynamic_ncols=True, desc="train")


def train(cfg: Config, out_dir: str | os.PathLike, resume: bool = False,
          device: str | None = None, progress: bool = True, stop_at: int | None = None) -> Path:
    trainer = Trainer(cfg, Path(out_dir), device)
    if resume:
        trainer.resume()
    return trainer.run(progress, stop_at)
