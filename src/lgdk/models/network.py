"""The assembled LGDK network and the small steps that training and inference share.

Per frame t (B batch, N objects, h x w = the stride-16 grid):
  encode_query(frame_t)                   -> QueryFeatures (keys, skips)
  read(query, bank)                       -> readout (B, N, Cv, h, w)      STM memory read
  decode(query, readout, O_G, O_{t-1})    -> logits (B, N, H, W)           eq. 2 kernels
  aggregate(logits)                       -> probabilities (B, 1+N, H, W)  soft aggregation
  memorize(frame_t, query, probs, bank)   -> stores keys/values and eq.-1 features
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lgdk.config import ModelConfig
from lgdk.models.backbones import Backbone
from lgdk.models.decoder import Decoder
from lgdk.models.encoders import (
    FastMemoryEncoder,
    FullMemoryEncoder,
    LightMemoryEncoder,
    QueryEncoder,
    QueryFeatures,
)
from lgdk.models.kernels import KernelHead
from lgdk.models.memory import MemoryReader, downsample_mask, object_features
from lgdk.models.memory_bank import MemoryBank
from lgdk.models.tensor_layout import memory_format_of, repeat_objects

PAD_MULTIPLE = 16
ABSENT_LOGIT = -30.0  # logit of an object that is not there: probability ~1e-13


class LGDK(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        if cfg.memory_encoder not in ("full", "light", "fast"):
            raise ValueError(f"model.memory_encoder must be 'full', 'light' or 'fast', not "
                             f"'{cfg.memory_encoder}'")
        self.cfg = cfg
        backbone = Backbone(cfg.backbone, 3, cfg.pretrained, cfg.weights_file)
        ch = backbone.channels
        self.query_encoder = QueryEncoder(backbone, cfg.key_dim, cfg.value_dim)
        if cfg.memory_encoder == "full":
            mem_backbone = Backbone(cfg.backbone, 5, cfg.pretrained, cfg.weights_file)
            self.memory_encoder: nn.Module = FullMemoryEncoder(mem_backbone, cfg.value_dim)
        elif cfg.memory_encoder == "light":
            self.memory_encoder = LightMemoryEncoder(ch.c16, cfg.value_dim)
        else:
            self.memory_encoder = FastMemoryEncoder(ch.c16, cfg.value_dim)
        self.reader = MemoryReader(cfg.affinity, cfg.top_k)
        self.decoder = Decoder(2 * cfg.value_dim, ch.c8, ch.c4, cfg.decoder_dim, cfg.aspp)
        self.kernel_head = KernelHead(
            cfg.value_dim, self.decoder.out_dim, cfg.local_kernel, cfg.global_kernel,
            cfg.kernel_size, cfg.kernel_hidden,
        )

    def fold_batchnorm(self) -> int:
        """Inference only (eval mode): fold the backbones' BatchNorm layers into their
        convolutions; same outputs, less time. Returns the number of folded layers."""
        backbones = [m for m in self.modules() if isinstance(m, Backbone)]
        return sum(b.fold_batchnorm() for b in backbones)

    def optimize_for_inference(self) -> int:
        """Inference only (eval mode): BatchNorm folded and the backbones' strided
        "same" convolutions without padded copies (`lgdk.models.same_padding`); same
        outputs, less time. Returns the number of layers changed."""
        backbones = [m for m in self.modules() if isinstance(m, Backbone)]
        return sum(b.optimize_for_inference() for b in backbones)

    # ---- the steps -------------------------------------------------------------------
    def encode_query(self, frame: torch.Tensor) -> QueryFeatures:
        """frame: (B, 3, H, W), RGB in 0..1, H and W multiples of 16."""
        return self.query_encoder(frame)

    def encode_memory(
        self, frame: torch.Tensor, query: QueryFeatures, masks: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """masks: (B, N, H, W) -> values (B, N, Cv, h, w) and eq.-1 features (B, N, Cv)."""
        value = self.memory_encoder(frame, query, masks)
        small = downsample_mask(masks, tuple(value.shape[-2:]))
        return value, object_features(value, small)

    def read(self, query: QueryFeatures, bank: MemoryBank) -> torch.Tensor:
        """Memory read for every object, each over the frames since it appeared.
        -> (B, N, Cv, h, w)."""
        parts = []
        for start, objects in bank.groups():
            keys, values = bank.stacked(start, objects)
            parts.append(self.reader(query.key, keys, values))
        return torch.cat(parts, dim=1)

    def decode(
        self,
        query: QueryFeatures,
        readout: torch.Tensor,
        global_feature: torch.Tensor,
        local_feature: torch.Tensor,
        out_size: tuple[int, int],
    ) -> torch.Tensor:
        """readout: (B, N, Cv, h, w) -> logits (B, N, H, W)."""
        b, n = readout.shape[:2]
        qv = repeat_objects(query.value, n)  # (B*N, Cv, h, w)
        x16 = torch.cat([readout.flatten(0, 1), qv], dim=1)
        x16 = x16.contiguous(memory_format=memory_format_of(qv))
        feats = self.decoder(x16, query.f8, query.f4, n)  # (B*N, D, H/4, W/4)
        logits = self.kernel_head(feats, global_feature, local_feature)
        logits = F.interpolate(logits, size=out_size, mode="bilinear", align_corners=False)
        return logits.view(b, n, *out_size)

    def memorize(
        self,
        frame_index: int,
        frame: torch.Tensor,
        query: QueryFeatures,
        masks: torch.Tensor,
        bank: MemoryBank,
        as_memory: bool,
        permanent: bool = False,
    ) -> None:
        """Encode frame + masks (B, N, H, W) and record them in the bank."""
        value, features = self.encode_memory(frame, query, masks)
        bank.update(frame_index, query.key, value, features, as_memory, permanent)

    def step(self, frame: torch.Tensor, bank: MemoryBank) -> tuple[torch.Tensor, QueryFeatures]:
        """Predict logits (B, N, H, W) for a frame from the bank's memory."""
        query = self.encode_query(frame)
        readout = self.read(query, bank)
        logits = self.decode(
            query, readout, bank.global_feature, bank.local_feature, tuple(frame.shape[-2:])
        )
        return logits, query

    # ---- a whole clip, as in training -----------------------------------------------
    def forward(self, frames: torch.Tensor, first_masks: torch.Tensor) -> torch.Tensor:
        """Unroll a clip. frames: (B, T, 3, H, W); first_masks: (B, N, H, W) for frame 0.
        Returns aggregated log-probabilities (B, T-1, 1+N, H, W) for frames 1..T-1, each
        frame memorised with its own prediction (all frames kept, as in training).
        An object whose first mask is empty is padding (batches hold clips with fewer
        objects): it is absent from the aggregation, as it would be at inference."""
        present = first_masks.flatten(2).amax(dim=2) > 0  # (B, N)
        bank = MemoryBank()
        bank.add_objects(first_masks.shape[1], 0)
        query = self.encode_query(frames[:, 0])
        self.memorize(0, frames[:, 0], query, first_masks, bank, as_memory=True, permanent=True)
        outputs = []
        for t in range(1, frames.shape[1]):
            logits, query = self.step(frames[:, t], bank)
            logits = logits.masked_fill(~present[:, :, None, None], ABSENT_LOGIT)
            log_probs = aggregate_log(logits)
            outputs.append(log_probs)
            if t < frames.shape[1] - 1:
                probs = log_probs.exp()[:, 1:]
                self.memorize(t, frames[:, t], query, probs, bank, as_memory=True)
        return torch.stack(outputs, dim=1)


def aggregate_log(logits: torch.Tensor) -> torch.Tensor:
    """STM's soft aggregation in log space. logits: (B, N, H, W) of independent object
    probabilities p_i -> log-probabilities (B, 1+N, H, W) over background + objects.

    The background's probability is prod(1 - p_i); every class's odds log(p / (1 - p))
    are then normalised by a softmax."""
    p = torch.sigmoid(logits).clamp(1e-7, 1 - 1e-7)
    bg = torch.prod(1 - p, dim=1, keepdim=True).clamp(1e-7, 1 - 1e-7)
    probs = torch.cat([bg, p], dim=1)
    odds = torch.log(probs / (1 - probs))
    return torch.log_softmax(odds, dim=1)


def aggregate(logits: torch.Tensor) -> torch.Tensor:
    """Probabilities over background + objects (B, 1+N, H, W); they sum to 1."""
    return aggregate_log(logits).exp()


def pad_to_multiple(x: torch.Tensor, multiple: int = PAD_MULTIPLE) -> tuple[torch.Tensor, tuple]:
    """Pad (..., H, W) on the bottom/right to multiples; returns the padding to undo it."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate" if x.dim() == 4 else "constant")
    return x, (h, w)


def build_model(cfg: ModelConfig) -> LGDK:
    return LGDK(cfg)
