"""Training the learned prompt network's head (and the backbone's last stages when its
config tunes them, at `backbone_lr` times the head's rate; the rest stays ImageNet's).

Half the batches also teach corrections: the head's own mask (without gradient) gets the
click a person would give (`correcting_click`), and the head learns from the prompt with
that click added, as it will be used.
"""

from __future__ import annotations

import functools
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch.utils.data import DataLoader

from lgdk.prompts.crop import draw_click
from lgdk.prompts.learned import save_prompt_net
from lgdk.prompts.net import PromptNet, PromptNetConfig
from lgdk.train.prompt_samples import (
    ObjectRef,
    PromptDataset,
    PromptSampling,
    correcting_click,
    is_held_out,
    list_objects,
)


@dataclass(frozen=True)
class PromptTraining:
    iterations: int = 3000
    batch: int = 16
    lr: float = 1e-3
    warmup: int = 100  # iterations of linearly rising learning rate
    weight_decay: float = 1e-4
    backbone_lr: float = 0.1  # the tuned backbone stages' rate, as a share of lr
    correction_share: float = 0.5  # batches that also learn from a correcting click
    save_every: int = 250
    check_every: int = 500
    seed: int = 0
    workers: int = 1


def mask_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy + soft Dice, per sample then averaged. (B, 1, S, S) each."""
    bce = F.binary_cross_entropy_with_logits(logits, target)
    p = torch.sigmoid(logits).flatten(1)
    t = target.flatten(1)
    dice = 1 - (2 * (p * t).sum(1) + 1) / (p.sum(1) + t.sum(1) + 1)
    return bce + dice.mean()


def add_correcting_clicks(logits: torch.Tensor, target: torch.Tensor,
                          maps: torch.Tensor) -> torch.Tensor:
    """A copy of maps (B, C, S, S) with each sample's correcting click drawn on it."""
    maps = maps.clone().numpy()
    pred = (logits[:, 0] > 0).numpy()
    truth = target[:, 0].numpy() > 0.5
    for i in range(len(maps)):
        click = correcting_click(pred[i], truth[i])
        if click is not None:
            draw_click(maps[i], click.x, click.y, click.positive)
    return torch.from_numpy(maps)


def batch_iou(logits: torch.Tensor, target: torch.Tensor) -> list[float]:
    pred, truth = logits[:, 0] > 0, target[:, 0] > 0.5
    inter = (pred & truth).flatten(1).sum(1).float()
    union = (pred | truth).flatten(1).sum(1).float().clamp(min=1)
    return (inter / union).tolist()


class PromptTrainer:
    def __init__(self, objects: list[ObjectRef], out: Path, net_cfg: PromptNetConfig,
                 training: PromptTraining, sampling: PromptSampling | None = None) -> None:
        sampling = sampling or PromptSampling()
        torch.manual_seed(training.seed)
        self.out, self.training = out, training
        self.net = PromptNet(net_cfg)
        held = [o for o in objects if is_held_out(o, sampling.held_out)]
        kept = [o for o in objects if not is_held_out(o, sampling.held_out)]
        self.data = PromptDataset(kept, net_cfg, sampling, training.seed)
        self.check = PromptDataset(held, net_cfg, sampling, training.seed, augment=False)
        tuned = list(self.net.tuned_parameters().values())
        groups = [{"params": list(self.net.head.parameters()), "scale": 1.0}]
        if tuned:
            groups.append({"params": tuned, "scale": training.backbone_lr})
        self.optimizer = torch.optim.AdamW(groups, lr=training.lr,
                                           weight_decay=training.weight_decay)
        self.iteration = 0
        self.rng = np.random.default_rng(training.seed)

    @property
    def state_path(self) -> Path:
        return self.out / "last.state.pt"

    def lr_at(self, iteration: int) -> float:
        warmup = self.training.warmup
        if iteration < warmup:
            return self.training.lr * (iteration + 1) / warmup
        done = (iteration - warmup) / max(1, self.training.iterations - warmup)
        return self.training.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, done)))

    def step(self, images, maps, target) -> float:
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_at(self.iteration) * group["scale"]
        feats = self.net.features(images)
        if self.rng.random() < self.training.correction_share:
            with torch.no_grad():
                first = self.net.head(*feats, maps)
            first = F.interpolate(first, size=target.shape[-2:], mode="bilinear")
            maps = add_correcting_clicks(first, target, maps)
        logits = F.interpolate(self.net.head(*feats, maps), size=target.shape[-2:],
                               mode="bilinear", align_corners=False)
        loss = mask_loss(logits, target)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.iteration += 1
        return loss.item()

    @torch.no_grad()
    def held_out_iou(self) -> float:
        self.net.eval()
        ious = []
        loader = DataLoader(self.check, batch_size=self.training.batch)
        for images, maps, target in loader:
            ious += batch_iou(self.net(images, maps), target)
        self.net.train()
        return float(np.mean(ious)) if ious else float("nan")

    def save(self) -> None:
        save_prompt_net(self.out / "last.safetensors", self.net,
                        extra={"iteration": self.iteration})
        tmp = self.state_path.with_name(".last.state.pt.tmp")
        torch.save({"net": self.net.trained_state(), "optimizer": self.optimizer.state_dict(),
                    "iteration": self.iteration}, tmp)
        os.replace(tmp, self.state_path)

    def start_from(self, path: Path) -> None:
        """Start from a trained prompt network file (a head with fewer prompt maps gets zero
        weights for the maps it lacks; stages the file did not tune, where this network
        tunes more, start from the backbone's ImageNet ones)."""
        state = load_file(str(path))
        for key, value in self.net.trained_state().items():
            if key.startswith("backbone."):
                state.setdefault(key, value)
        added = self.net.load_trained_state(state)
        print(f"started from {path}" + (f" ({added} prompt maps added)" if added else ""),
              flush=True)

    def resume(self) -> None:
        if self.state_path.is_file():
            state = torch.load(self.state_path, map_location="cpu", weights_only=True)
            if "net" in state:
                self.net.load_trained_state(state["net"])
            else:  # written before the backbone could be tuned
                self.net.head.load_state_dict(state["head"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.iteration = state["iteration"]
            self.rng = np.random.default_rng([self.training.seed, self.iteration])

    def run(self, log=None) -> Path:
        log = log or functools.partial(print, flush=True)
        self.out.mkdir(parents=True, exist_ok=True)
        self.net.train()
        t = self.training
        start, losses = time.perf_counter(), []
        while self.iteration < t.iterations:
            loader = DataLoader(self.data, batch_size=t.batch, shuffle=True, drop_last=True,
                                num_workers=t.workers, persistent_workers=False)
            for images, maps, target in loader:
                losses.append(self.step(images, maps, target))
                if self.iteration % 50 == 0:
                    log(f"{self.iteration}\tloss {np.mean(losses[-50:]):.4f}\t"
                        f"{time.perf_counter() - start:.0f} s")
                if self.iteration % t.save_every == 0 or self.iteration == t.iterations:
                    self.save()
                if self.iteration % t.check_every == 0 or self.iteration == t.iterations:
                    log(f"{self.iteration}\theld-out IoU {self.held_out_iou():.4f}")
                if self.iteration >= t.iterations:
                    break
        return self.out / "last.safetensors"


def train_prompt_net(roots: list[str], out: str | os.PathLike, net_cfg: PromptNetConfig,
                     training: PromptTraining, resume: bool = True,
                     init: str | os.PathLike | None = None,
                     sampling: PromptSampling | None = None) -> Path:
    """Train (or go on training) the head; init: a prompt network file to start from."""
    trainer = PromptTrainer(list_objects(roots), Path(out), net_cfg, training, sampling)
    if init:
        trainer.start_from(Path(init))
    if resume:
        trainer.resume()
    return trainer.run()
