"""Run by test_train under torchrun: trains 2 steps with gloo, saves each rank's weights."""

import sys
from pathlib import Path

import torch

from lgdk.config import Config, DataConfig, TrainConfig
from lgdk.train.loop import Trainer
from tests.conftest import tiny_config

out = Path(sys.argv[1])
cfg = Config(model=tiny_config(), data=DataConfig(crop=32, workers=0),
             train=TrainConfig(iterations=2, batch_size=1, lr=1e-3, warmup=1))
trainer = Trainer(cfg, out / "run", device="cpu")
rank = trainer.info.rank
model = trainer.model
trainer.run(progress=False)
torch.save([p.detach().clone() for p in model.parameters()], out / f"rank{rank}.pt")
