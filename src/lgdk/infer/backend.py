"""The step interface every backend offers the streaming predictor.

Two backends satisfy it: the PyTorch network (`lgdk.models.network.LGDK`) and the ONNX
Runtime graphs (`lgdk.onnx.runtime.OnnxModel`). The predictor, its memory policy and its
wrappers (flip, scales, ensembles) are written once against it; both backends read the
memory through the same per-group loop (`MemoryBank.per_group`).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

from lgdk.models.memory_bank import MemoryBank


class QueryEncoding(Protocol):
    """What outlives a frame's query encoding: its memory key and stride-16 features."""

    @property
    def key(self) -> torch.Tensor: ...  # (1, Ck, h, w)

    @property
    def f16(self) -> torch.Tensor: ...  # (1, C16, h, w)


@runtime_checkable
class StepModel(Protocol):
    """frame: (1, 3, H, W) RGB in 0..1, H and W multiples of 16 (the processing size)."""

    def encode_query(self, frame: torch.Tensor) -> QueryEncoding:
        """The frame's encoding, for a frame read before any object is known."""
        ...

    def step(self, frame: torch.Tensor, bank: MemoryBank, query: QueryEncoding | None = None,
             crops: list[tuple[int, int, int, int] | None] | None = None,
             ) -> tuple[torch.Tensor, QueryEncoding]:
        """Logits (1, N, H, W) of the bank's N objects, and the frame's encoding. query:
        this frame's encoding when it is known already (the frame read again); a backend
        may skip its query encoder with it. crops: per object, the cells of the stride-16
        grid (r0, r1, c0, c1) outside which its logits do not matter, or None; a backend
        may decode it there only."""
        ...

    def memorize(self, frame_index: int, frame: torch.Tensor, query: QueryEncoding,
                 masks: torch.Tensor, bank: MemoryBank, as_memory: bool,
                 permanent: bool = False) -> None:
        """Encode the frame with soft masks (1, N, H, W) and record it in the bank."""
        ...
