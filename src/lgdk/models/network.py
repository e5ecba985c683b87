"""The assembled LGDK network and the small steps that training and inference share.

Per frame t (B batch, N objects, h x w = the stride-16 grid):
  encode_query(frame_t)                   -> QueryFeatures (keys, skips)
  read(query, bank)                       -> readout (B, N, Cv, h, w)      STM memory read
  decode(query, readout, O_G, O_{t-1})    -> logits (B, N, H, W)           eq. 2 kernels
  aggregate(logits)                       -> probabilities (B, 1+N, H, W)  soft aggregation
  memorize(frame_t, query, probs, bank)   -> stores keys/values and eq.-1 features
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from lgdk.config import ModelConfig
from lgdk.models.backbones import Backbone
from lgdk.models.crop_batches import Cells, crop_batches
from lgdk.models.decoder import Decoder, FrameFeatures, others_maximum
from lgdk.models.encoders import QueryEncoder, QueryFeatures, build_memory_encoder
from lgdk.models.fused_activation import fuse_conv_activations, unfuse_conv_activations
from lgdk.models.int8 import Int8Conv2d, convert_to_int8, revert_int8
from lgdk.models.kernels import KernelHead, dynamic_conv_ungrouped
from lgdk.models.memory import MemoryReader, downsample_mask, object_features
from lgdk.models.memory_bank import MemoryBank, MemoryPolicy
from lgdk.models.tensor_layout import memory_format_of

PAD_MULTIPLE = 16
ABSENT_LOGIT = -30.0  # logit of an object that is not there: probability ~1e-13
TRAINING_POLICY = MemoryPolicy()  # every frame encoded and kept
CELL = 16  # pixels of a cell of the stride-16 grid, the unit crops are cut in


class LGDK(nn.Module):
    """The network. `top_k` and `sparse_read` say how the memory is read (see
    `MemoryReader`): training reads every position (0); inference models are built with
    their inference settings' top_k (`lgdk.infer.loading`)."""

    def __init__(self, cfg: ModelConfig, top_k: int = 0, sparse_read: bool = False) -> None:
        super().__init__()
        self.cfg = cfg
        backbone = Backbone(cfg.backbone, 3, cfg.pretrained, cfg.weights_file)
        ch = backbone.channels
        self.memory_encoder = build_memory_encoder(cfg, ch)
        self.query_encoder = QueryEncoder(backbone, cfg.key_dim, cfg.value_dim)
        self.reader = MemoryReader(cfg.affinity, top_k, sparse_read)
        self.decoder = Decoder(2 * cfg.value_dim, ch.c8, ch.c4, cfg.decoder_dim, cfg.aspp,
                               cfg.aspp_reduce, cfg.value_dim if cfg.others_readout else 0)
        self.kernel_head = KernelHead(
            cfg.value_dim, self.decoder.out_dim, cfg.local_kernel, cfg.global_kernel,
            cfg.kernel_size, cfg.kernel_hidden,
        )
        self.compute_dtype = torch.float32  # of the convolutional parts (`use_dtype`)
        self.precision = "float32"  # their arithmetic: float32, bfloat16 or int8

    def use_dtype(self, dtype: torch.dtype) -> LGDK:
        """Inference only: the encoders, decoder and kernel head in `dtype` (e.g. bfloat16
        on a CPU with AMX, `lgdk.infer.precision`); frames go in and logits come out in
        float32, and the memory (keys, values, eq.-1 features) and its read stay float32.
        Decided once, here: every step casts to `compute_dtype`, a no-op in float32."""
        for part in (self.query_encoder, self.memory_encoder, self.decoder, self.kernel_head):
            part.to(dtype)
        self.compute_dtype = dtype
        self.precision = str(dtype).removeprefix("torch.")
        return self

    def use_int8(self) -> LGDK:
        """CPU inference only, after `optimize_for_inference`: the decoder's and the memory
        encoder's convolutions and the query's value projection as int8 convolutions
        (`lgdk.models.int8`; float32 in and out, so everything around them is unchanged).
        The backbones and the key projection stay float32: the depthwise convolutions are
        slower in int8, and the keys choose the memory positions."""
        if self.compute_dtype != torch.float32:
            raise ValueError("use_int8 converts a float32 model")
        convert_to_int8(self.decoder)
        convert_to_int8(self.memory_encoder, leave=(Backbone,))  # the full one's stays
        self.query_encoder.value_proj = Int8Conv2d(self.query_encoder.value_proj)
        self.precision = "int8"
        return self

    def use_int8_read(self) -> LGDK:
        """CPU inference only: the top-k memory read chooses its k positions by an int8
        product and computes their affinities in float32 (`lgdk.models.memory_int8`);
        nothing changes for a read of every position (top_k 0)."""
        self.reader.int8 = self.reader.top_k > 0
        return self

    def _to_parts(self, x: torch.Tensor | None) -> torch.Tensor | None:
        """A tensor for the convolutional parts: unchanged in float32 (training and
        autocast see no cast), else in `compute_dtype`."""
        if x is None or self.compute_dtype == torch.float32:
            return x
        return x.to(self.compute_dtype)

    def _to_memory(self, x: torch.Tensor) -> torch.Tensor:
        """A tensor from the convolutional parts, in float32 where they run in another
        dtype (the memory and the logits are float32)."""
        return x if self.compute_dtype == torch.float32 else x.float()

    def optimize_for_inference(self) -> int:
        """Inference only (eval mode): BatchNorm folded and the backbones' strided
        "same" convolutions without padded copies (`lgdk.models.same_padding`), then on a
        CPU the activations after convolutions applied inside them
        (`lgdk.models.fused_activation`); the decoder's entry and the memory encoder's
        fusion compute the frame's part of their input once for every object
        (`lgdk.models.split_input`). Same outputs, less time. Returns the number of layers
        changed."""
        backbones = [m for m in self.modules() if isinstance(m, Backbone)]
        changed = sum(b.optimize_for_inference() for b in backbones)
        changed += self.decoder.split_entry(self.cfg.value_dim)  # the readout is first
        changed += self.memory_encoder.split_input()  # its f16 part once a frame
        if next(self.parameters()).is_cpu:
            changed += fuse_conv_activations(self)
        return changed

    def exportable(self) -> LGDK:
        """A copy whose operations a graph export can record, with the same numbers: the
        plain top-k read (no column chunks, no sparse product), the dynamic convolution
        without a group count, activations apart from their convolutions, and float32
        throughout (a model loaded in bfloat16 comes back to float32 with its rounded
        weights, one in int8 with its float32 ones: `lgdk export` loads the checkpoint in
        float32)."""
        model = copy.deepcopy(self)
        revert_int8(model)
        model.use_dtype(torch.float32)
        model.reader = MemoryReader(self.reader.kind, self.reader.top_k, chunk=1)
        model.kernel_head.apply_kernels = dynamic_conv_ungrouped
        unfuse_conv_activations(model)
        return model

    # ---- the steps -------------------------------------------------------------------
    def encode_query(self, frame: torch.Tensor) -> QueryFeatures:
        """frame: (B, 3, H, W), RGB in 0..1, H and W multiples of 16. The features are in
        `compute_dtype` (the backbone normalises the frame in float32 first)."""
        return self.query_encoder(frame)

    def encode_memory(
        self, frame: torch.Tensor, query: QueryFeatures, masks: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """masks: (B, N, H, W) -> values (B, N, Cv, h, w) and eq.-1 features (B, N, Cv),
        both float32 (the memory's precision)."""
        value = self.memory_encoder(frame, query.f16, self._to_parts(masks))
        value = self._to_memory(value)
        return value, self.object_features(value, masks)

    @staticmethod
    def object_features(value: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Eq. 1 of values (B, N, Cv, h, w) under masks (B, N, H, W) -> (B, N, Cv)."""
        return object_features(value, downsample_mask(masks, tuple(value.shape[-2:])))

    def read(self, query: QueryFeatures, bank: MemoryBank) -> torch.Tensor:
        """Memory read for every object, each over the frames since it appeared.
        -> (B, N, Cv, h, w) in `compute_dtype` (the read itself in float32)."""
        key = self._to_memory(query.key)
        parts = [self.reader(key, keys, values) for _, keys, values in bank.per_group()]
        return self._to_parts(torch.cat(parts, dim=1))

    def decode(
        self,
        query: QueryFeatures,
        readout: torch.Tensor,
        global_feature: torch.Tensor,
        local_feature: torch.Tensor,
        out_size: tuple[int, int],
        present: torch.Tensor | None = None,
        crops: list[Cells | None] | None = None,
    ) -> torch.Tensor:
        """readout: (B, N, Cv, h, w) -> logits (B, N, H, W) in float32; present: (B, N)
        bool, the objects whose readouts the others see (default: all). crops: per object,
        the cells of the stride-16 grid (r0, r1, c0, c1) it is decoded in, or None for the
        whole frame; elsewhere its logits are ABSENT_LOGIT (used where
        `decoder.decodes_crops`; B = 1)."""
        global_feature = self._to_parts(global_feature)
        local_feature = self._to_parts(local_feature)
        frame = self.decoder.frame(query.value, query.f8, query.f4)  # once for every object
        if crops is None or not self.decoder.decodes_crops or not any(crops):
            return self._decode_whole(frame, readout, global_feature, local_feature,
                                      out_size, present)
        b, n = readout.shape[:2]
        logits = torch.full((b, n, *out_size), ABSENT_LOGIT, device=readout.device)
        whole = [i for i, cells in enumerate(crops) if cells is None]
        if whole:
            logits[:, whole] = self._decode_whole(
                frame, readout[:, whole], _objects(global_feature, whole),
                _objects(local_feature, whole), out_size)
        grid = (out_size[0] // CELL, out_size[1] // CELL)
        for objects, cells in crop_batches(crops, grid):
            patches = self._decode_crops(frame, readout[:, objects],
                                         _objects(global_feature, objects),
                                         _objects(local_feature, objects), cells)
            for i, (r0, r1, c0, c1), patch in zip(objects, cells, patches):
                logits[:, i, CELL * r0:CELL * r1, CELL * c0:CELL * c1] = patch
        return logits

    def _decode_whole(self, frame: FrameFeatures, readout: torch.Tensor,
                      global_feature: torch.Tensor | None, local_feature: torch.Tensor | None,
                      out_size: tuple[int, int], present: torch.Tensor | None = None
                      ) -> torch.Tensor:
        """Every object of `readout` (B, N, Cv, h, w) over the whole frame -> (B, N, H, W)."""
        b, n = readout.shape[:2]
        layout = memory_format_of(frame.value)
        objects = readout.flatten(0, 1).contiguous(memory_format=layout)  # (B*N, Cv, h, w)
        others = None
        if self.decoder.others is not None:
            others = others_maximum(readout, present).flatten(0, 1)  # (B*N, Cv, h, w)
            others = others.contiguous(memory_format=layout)
        feats = self.decoder.objects(objects, frame, others)  # (B*N, D, H/4, W/4)
        logits = self._to_memory(self.kernel_head(feats, global_feature, local_feature))
        logits = F.interpolate(logits, size=out_size, mode="bilinear", align_corners=False)
        return logits.view(b, n, *out_size)

    def _decode_crops(self, frame: FrameFeatures, readout: torch.Tensor,
                      global_feature: torch.Tensor | None, local_feature: torch.Tensor | None,
                      cells: list[Cells]) -> torch.Tensor:
        """Objects' readouts (1, n, Cv, h, w) decoded in their cells only, one size for all
        (`crop_batches`) -> their logits there (n, CELL (r1 - r0), CELL (c1 - c0)). The
        image pooling sees the whole map's mean, so that a crop differs from the whole
        frame only near its border."""
        readout = readout[0]  # (n, Cv, h, w): B = 1
        means = readout.mean(dim=(2, 3), keepdim=True)  # (n, Cv, 1, 1)
        crops = torch.stack([readout[i, :, r0:r1, c0:c1] for i, (r0, r1, c0, c1)
                             in enumerate(cells)])  # (n, Cv, rows, cols)
        crops = crops.contiguous(memory_format=memory_format_of(frame.value))
        feats = self.decoder.objects(crops, frame.crops(cells), None, means)
        logits = self._to_memory(self.kernel_head(feats, global_feature, local_feature))
        r0, r1, c0, c1 = cells[0]
        size = (CELL * (r1 - r0), CELL * (c1 - c0))  # (n, 1, 4 rows, 4 cols) -> pixels
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)[:, 0]

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
        key = self._to_memory(query.key)
        bank.update(frame_index, key, value, features, as_memory, permanent)

    def step(self, frame: torch.Tensor, bank: MemoryBank, query: QueryFeatures | None = None,
             crops: list[Cells | None] | None = None) -> tuple[torch.Tensor, QueryFeatures]:
        """Predict logits (B, N, H, W) for a frame from the bank's memory; query: the
        frame's encoding, when it is known already; crops: where each object is decoded
        (`decode`)."""
        query = self.encode_query(frame) if query is None else query
        return self._predict(frame, query, bank, crops=crops), query

    def _predict(self, frame: torch.Tensor, query: QueryFeatures, bank: MemoryBank,
                 present: torch.Tensor | None = None,
                 crops: list[Cells | None] | None = None) -> torch.Tensor:
        """Logits (B, N, H, W); present: (B, N) bool, the objects that are not padding
        (training batches; default: all)."""
        readout = self.read(query, bank)
        return self.decode(query, readout, bank.global_feature, bank.local_feature,
                           tuple(frame.shape[-2:]), present, crops)

    # ---- a whole clip, as in training -----------------------------------------------
    def forward(self, frames: torch.Tensor, first_masks: torch.Tensor,
                policy: MemoryPolicy = TRAINING_POLICY) -> torch.Tensor:
        """Unroll a clip. frames: (B, T, 3, H, W); first_masks: (B, N, H, W) for frame 0.
        Returns aggregated log-probabilities (B, T-1, 1+N, H, W) for frames 1..T-1, each
        frame memorised with its own prediction as `policy` says (in training: every
        frame, all kept), as the streaming predictor does.
        An object whose first mask is empty is padding (batches hold clips with fewer
        objects): it is absent from the aggregation, as it would be at inference."""
        present = first_masks.flatten(2).amax(dim=2) > 0  # (B, N)
        bank = MemoryBank()
        bank.add_objects(first_masks.shape[1], 0)
        query = self.encode_query(frames[:, 0])
        self.memorize(0, frames[:, 0], query, first_masks, bank, as_memory=True, permanent=True)
        outputs = []
        for t in range(1, frames.shape[1]):
            query = self.encode_query(frames[:, t])
            logits = self._predict(frames[:, t], query, bank, present)
            logits = logits.masked_fill(~present[:, :, None, None], ABSENT_LOGIT)
            log_probs = aggregate_log(logits.float())  # float32 under autocast too
            outputs.append(log_probs)
            encode, as_memory = policy.plan(t, bank, given=False)
            if encode and t < frames.shape[1] - 1:
                probs = log_probs.exp()[:, 1:]
                self.memorize(t, frames[:, t], query, probs, bank, as_memory)
        return torch.stack(outputs, dim=1)


def _objects(features: torch.Tensor | None, index: list[int]) -> torch.Tensor | None:
    """Some objects' eq.-1 features (B, n, Cv) of all (B, N, Cv); None stays None."""
    return None if features is None else features[:, index]


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
    """Probabilities over background + objects (B, 1+N, H, W); they sum to 1.

    `aggregate_log(logits).exp()` in closed form: the softmax of the odds log(p / (1 - p))
    is each class's odds ratio over their sum, which needs no log or exp (the same numbers
    to 3e-7; 6.6 -> 1.4 ms for one object at 480x864 on a 2-core CPU)."""
    p = torch.sigmoid(logits).clamp_(1e-7, 1 - 1e-7)
    bg = torch.prod(1 - p, dim=1, keepdim=True).clamp_(1e-7, 1 - 1e-7)
    odds = torch.cat([bg / (1 - bg), p / (1 - p)], dim=1)  # (B, 1+N, H, W)
    return odds / odds.sum(dim=1, keepdim=True)


def build_model(cfg: ModelConfig, top_k: int = 0, sparse_read: bool = False) -> LGDK:
    return LGDK(cfg, top_k, sparse_read)
