import dataclasses
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lgdk.config import Config, DataConfig, InferenceConfig, TrainConfig
from lgdk.data.clips import ClipDataset
from lgdk.errors import UserError
from lgdk.models.checkpoint import load_checkpoint
from lgdk.models.loss import bootstrap_fraction, bootstrapped_ce
from lgdk.train.loop import Trainer
from tests.conftest import tiny_config


def small_config(iterations=4, **train) -> Config:
    return Config(
        model=tiny_config(),
        data=DataConfig(crop=48, workers=0),
        train=TrainConfig(iterations=iterations, batch_size=2, lr=1e-3, warmup=2,
                          checkpoint_every=100, bootstrap_start=0, bootstrap_end=10,
                          **train),
        inference=InferenceConfig(size=0),  # validation at the frames' own size
    )


def test_loss_on_a_fixed_batch_goes_down(tmp_path):
    cfg = small_config(iterations=40)
    batch = {k: torch.stack([ClipDataset(cfg.data, 4, seed=9)[i][k] for i in range(2)])
             for k in ("frames", "first_masks", "labels", "num_objects")}
    trainer = Trainer(cfg, tmp_path)

    def fixed_loss():
        with torch.no_grad():
            out = trainer.model.eval()(batch["frames"], batch["first_masks"])
        return torch.nn.functional.nll_loss(out.flatten(0, 1), batch["labels"][:, 1:]
                                            .flatten(0, 1)).item()

    before = fixed_loss()
    for _ in range(40):
        trainer.train_step(batch)
        trainer.iteration += 1
    assert fixed_loss() < 0.7 * before


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path):
    cfg = small_config(iterations=4)
    Trainer(cfg, tmp_path / "a").run(progress=False)
    Trainer(cfg, tmp_path / "b").run(progress=False, stop_at=2)
    resumed = Trainer(cfg, tmp_path / "b")
    resumed.resume()
    assert resumed.iteration == 2
    resumed.run(progress=False)
    a, _ = load_checkpoint(tmp_path / "a" / "final.safetensors")
    b, _ = load_checkpoint(tmp_path / "b" / "final.safetensors")
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), name
    assert (tmp_path / "a" / "config.yaml").is_file()


def test_milestones_are_kept_every_keep_every_iterations(tmp_path):
    cfg = small_config(iterations=4)
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, checkpoint_every=2,
                                                             keep_every=2))
    Trainer(cfg, tmp_path / "run").run(progress=False)
    kept = sorted(p.name for p in (tmp_path / "run").glob("iter*.safetensors"))
    assert kept == ["iter000002.safetensors", "iter000004.safetensors"]
    model, _ = load_checkpoint(tmp_path / "run" / "iter000004.safetensors")
    final, _ = load_checkpoint(tmp_path / "run" / "final.safetensors")
    for (name, a), b in zip(model.state_dict().items(), final.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-2, rtol=1e-2), name  # float16


class RunsCode:
    def __reduce__(self):
        return (print, ("a pickled state file ran code",))


def test_resume_refuses_a_state_file_that_would_run_code(tmp_path, capsys):
    cfg = small_config(iterations=4)
    trainer = Trainer(cfg, tmp_path)
    torch.save({"model": RunsCode()}, trainer.state_path())
    with pytest.raises(UserError, match="is not an lgdk training state"):
        trainer.resume()
    assert "ran code" not in capsys.readouterr().out


def test_bootstrap_schedule_and_hardest_pixels():
    assert bootstrap_fraction(0, 10, 20, 0.15) == 1.0
    assert bootstrap_fraction(15, 10, 20, 0.15) == (1 + 0.15) / 2
    assert bootstrap_fraction(30, 10, 20, 0.15) == 0.15
    log_probs = torch.log(torch.tensor([[[[0.9, 0.5, 0.2, 0.1]], [[0.1, 0.5, 0.8, 0.9]]]]))
    labels = torch.zeros(1, 1, 4, dtype=torch.long)
    hardest = bootstrapped_ce(log_probs, labels, 0.5)
    assert torch.isclose(hardest, -(torch.log(torch.tensor(0.2)) + torch.log(
        torch.tensor(0.1))) / 2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_torchrun_gives_identical_weights(tmp_path):
    worker = Path(__file__).with_name("ddp_worker.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[2])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_addr", "127.0.0.1", "--master_port", str(free_port()), str(worker),
           str(tmp_path)]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    sums = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    assert len(sums[0]) > 10
    for a, b in zip(sums[0], sums[1]):
        assert torch.equal(a, b)
    assert (tmp_path / "run" / "final.safetensors").is_file()


def test_validation_hook_scores_and_keeps_the_best(tmp_path):
    from tests.conftest import write_clip

    write_clip(tmp_path / "c", num_frames=3, height=32, width=48)
    (tmp_path / "val" / "JPEGImages").mkdir(parents=True)
    (tmp_path / "val" / "Annotations").mkdir()
    (tmp_path / "c" / "frames").rename(tmp_path / "val" / "JPEGImages" / "s")
    (tmp_path / "c" / "gt").rename(tmp_path / "val" / "Annotations" / "s")
    cfg = small_config(iterations=2, val_root=str(tmp_path / "val"), val_every=1)
    Trainer(cfg, tmp_path / "run").run(progress=False)
    scores = (tmp_path / "run" / "val.tsv").read_text().split()
    assert len(scores) == 4 and all(0 <= float(s) <= 1 for s in scores[1::2])
    assert (tmp_path / "run" / "best.safetensors").is_file()


def test_only_the_named_parts_train_and_a_misspelt_part_is_refused(tmp_path):
    cfg = small_config(iterations=2, trainable=("decoder", "kernel_head"))
    trainer = Trainer(cfg, tmp_path)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.run()
    after = trainer.model.state_dict()
    changed = {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"decoder", "kernel_head"}
    bad = small_config(iterations=2, trainable=("decoders",))
    with pytest.raises(UserError, match="decoders"):
        Trainer(bad, tmp_path / "bad")
