"""Per-video adaptation (`--adapt`): before a given mask is used, a copy of the model is
fine-tuned on pseudo-clips made from that frame and mask (OSVOS's idea on a memory
network): the frame and mask under random affine, perspective and colour changes, frame 0
memorised with its mask and the others predicted, through the same `LGDK` steps and loss
as training. Masks given later (objects appearing mid-video) adapt the copy again, on
every mask given so far. The shipped weights are never touched: the copy lives only for
the video.

`Adapting` wraps a streaming predictor whose models are the copies, like the test-time
augmentation wrappers; what is trained is `InferenceConfig.adapt_part`:
`head` (the eq.-2 kernel head), `decoder` (decoder + kernel head) or `all`.
"""

from __future__ import annotations

import contextlib
import copy
import time

import numpy as np
import torch

from lgdk.config import InferenceConfig
from lgdk.data.augment import pseudo_video
from lgdk.infer.predictor import Streaming
from lgdk.models.fused_activation import unfuse_conv_activations
from lgdk.models.loss import clip_loss
from lgdk.models.memory import MemoryReader
from lgdk.models.network import LGDK

PARTS = {"head": ("kernel_head.",), "decoder": ("decoder.", "kernel_head."), "all": ("",)}
CLIP_FRAMES = 3


def trainable(model: LGDK, part: str) -> list[torch.nn.Parameter]:
    """The parameters `part` names; the others are frozen."""
    prefixes = PARTS[part]
    params = []
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith(prefixes))
        if p.requires_grad:
            params.append(p)
    return params


@contextlib.contextmanager
def training_read(model: LGDK):
    """The differentiable (gather) form of the memory read while adapting; the model's
    own read (sparse on a CPU) afterwards."""
    own = model.reader
    model.reader = MemoryReader(own.kind, own.top_k, sparse=False)
    try:
        yield
    finally:
        model.reader = own


def pseudo_clips(rng: np.random.Generator, examples: list[tuple[np.ndarray, np.ndarray]],
                 count: int, crop: int) -> dict[str, torch.Tensor]:
    """`count` clips of CLIP_FRAMES frames from (frame (H, W, 3) uint8, ids (H, W))
    examples, objects numbered 1..N in each: frames (B, T, 3, C, C), first_masks
    (B, N, C, C), labels (B, T, C, C), num_objects (B,)."""
    clips = []
    for _ in range(count):
        frame, ids = examples[int(rng.integers(len(examples)))]
        objects = [int(i) for i in np.unique(ids) if i not in (0, 255)]
        dense = np.zeros_like(ids)
        for k, i in enumerate(objects, start=1):
            dense[ids == i] = k
        image = torch.from_numpy(np.array(frame)).permute(2, 0, 1)
        frames, labels = pseudo_video(rng, image, torch.from_numpy(dense)[None], CLIP_FRAMES,
                                      crop)
        clips.append((frames, labels, len(objects)))
    n = max(c[2] for c in clips)
    ids = torch.arange(1, n + 1).view(n, 1, 1)
    return {"frames": torch.stack([c[0] for c in clips]).float() / 255,
            "first_masks": torch.stack([(c[1][0][None] == ids).float() for c in clips]),
            "labels": torch.stack([c[1] for c in clips]).long(),
            "num_objects": torch.tensor([c[2] for c in clips])}


def adapt_model(model: LGDK, examples: list[tuple[np.ndarray, np.ndarray]],
                settings: InferenceConfig, device: torch.device, seed: int = 0,
                progress: bool = False) -> list[float]:
    """Fine-tune `model` in place on pseudo-clips of `examples`; returns the losses."""
    from tqdm import tqdm

    rng = np.random.default_rng([seed, len(examples)])
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    params = trainable(model, settings.adapt_part)
    optimizer = torch.optim.Adam(params, lr=settings.adapt_lr)
    losses = []
    was_training = model.training
    model.eval()  # BatchNorm keeps its statistics (folded for inference anyway)
    try:
        with training_read(model), torch.inference_mode(False), torch.enable_grad():
            for _ in tqdm(range(settings.adapt_steps), desc="adapting", unit="step",
                          disable=not progress, leave=False):
                batch = {k: v.to(device) for k, v in pseudo_clips(
                    rng, examples, settings.adapt_batch, settings.adapt_crop).items()}
                log_probs = model(batch["frames"], batch["first_masks"]).float()
                loss = clip_loss(log_probs, batch["labels"], batch["num_objects"], 1.0, 0.0)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                losses.append(loss.item())
    finally:
        for p in model.parameters():
            p.requires_grad_(False)
        model.train(was_training)
        torch.random.set_rng_state(generator_state)
    return losses


class Adapting(Streaming):
    """Adapts `models` (copies that only this wrapper and `inner` use) on each given mask
    before `inner` sees it."""

    def __init__(self, inner: Streaming, models: list[LGDK], settings: InferenceConfig,
                 device: str | torch.device = "cpu", progress: bool = False) -> None:
        self.inner, self.models, self.settings = inner, models, settings
        self.device, self.progress = torch.device(device), progress
        self.examples: list[tuple[np.ndarray, np.ndarray]] = []
        self.seconds = 0.0  # spent adapting so far
        self._pending = False  # masks given since the last adaptation
        # given masks memorised before adapting on them: where the memory encoder is not
        # trained (its values stay valid), once for a pass's given frames together
        self.lazy = settings.adapt_part != "all"

    @property
    def object_ids(self) -> list[int]:
        return self.inner.object_ids

    @property
    def max_objects(self) -> int:
        return self.inner.max_objects

    @property
    def processing_side(self) -> int | None:
        return self.inner.processing_side

    def step(self, frame: np.ndarray, mask: np.ndarray | None = None) -> torch.Tensor:
        if mask is not None:
            self.examples.append((np.ascontiguousarray(frame), mask.copy()))
            self._pending = True
            if not self.lazy:
                self._adapt()
            frame = frame.copy()  # another array: the adapted encoder reads it afresh, not
            # through the encoding a predictor keeps of the frame it last read
            return self.inner.step(frame, mask)
        self._adapt()
        return self.inner.step(frame, mask)

    def _adapt(self) -> None:
        """Fine-tune on every mask given so far, once for each run of given frames (a pass
        starts with several in memory) when `lazy`, else at each."""
        if not self._pending:
            return
        start = time.perf_counter()
        for model in self.models:
            adapt_model(model, self.examples, self.settings, self.device,
                        progress=self.progress)
        self._pending = False
        self.seconds += time.perf_counter() - start

    def predict(self, frame: np.ndarray) -> torch.Tensor:
        self._adapt()
        return self.inner.predict(frame)

    def memorize(self, probs: torch.Tensor, given: bool = False) -> None:
        self.inner.memorize(probs, given)


def adaptable_copies(models: list) -> list[LGDK]:
    """Copies of the models to adapt (the originals, e.g. the shipped weights, untouched),
    with every convolution differentiable."""
    if not all(isinstance(m, LGDK) for m in models):
        from lgdk.errors import UserError

        raise UserError("--adapt fine-tunes a PyTorch model: leave out --onnx")
    copies = [copy.deepcopy(m) for m in models]
    for model in copies:  # oneDNN's fused convolutions have no gradient: plain ones, the
        unfuse_conv_activations(model)  # same numbers, for training
    return copies
