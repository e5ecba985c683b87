"""A streaming predictor: one frame in, object probabilities out, objects added any time.

`step` = `predict` (read memory, decode) + `memorize` (store the frame with a result).
Wrappers (flip, scales, ensembles in `lgdk.infer.tta`) call the two halves themselves so
that every wrapped predictor memorises the combined result.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from lgdk.data.masks import VOID
from lgdk.errors import UserError
from lgdk.infer.loading import default_size
from lgdk.models.memory_bank import MemoryBank
from lgdk.models.network import LGDK, aggregate, pad_to_multiple


@dataclass(frozen=True)
class PredictorOptions:
    size: int | None = None  # processing shorter side; None: the model's; 0: the input's
    mem_every: int = 5  # a new memory frame every N frames (the given masks always kept)
    max_memory: int = 8  # at most this many non-permanent memory frames
    # frames encoded as the local (previous-frame) memory and O_{t-1} besides the memory
    # frames: every N-th; 1: every frame (STM's temporary memory, the paper's local kernel);
    # 0: memory frames only (STCN's choice: faster, but objects may swap identities)
    encode_every: int = 2
    max_objects: int = 32
    flip: bool = False  # process the mirrored frame (used by the flip wrapper)
    amp: bool = False  # autocast on GPU

    def __post_init__(self) -> None:
        if self.mem_every < 1:
            raise UserError(f"--mem-every must be at least 1, not {self.mem_every}")
        if self.encode_every < 0:
            raise UserError(f"--encode-every must be 0 (memory frames only) or more, not "
                            f"{self.encode_every}")
        if self.max_memory < 0:
            raise UserError(f"--max-memory must be 0 or more, not {self.max_memory}")
        if self.size is not None and self.size < 0:
            raise UserError(f"--size must be a positive shorter side in pixels (or 0 for "
                            f"the frames' own size), not {self.size}")


def processing_size(height: int, width: int, size: int) -> tuple[int, int]:
    if not size:
        return height, width
    scale = size / min(height, width)
    return max(16, round(height * scale)), max(16, round(width * scale))


class Streaming(ABC):
    """The public streaming API, on top of `predict` and `memorize`."""

    object_ids: list[int]
    max_objects: int

    def step(self, frame: np.ndarray, mask: np.ndarray | None = None) -> torch.Tensor:
        """frame: (H, W, 3) uint8 RGB; mask: optional (H, W) object ids for this frame.
        Returns probabilities (1+N, H, W); channel k+1 is object `self.object_ids[k]`."""
        probs = self.predict(frame)
        if mask is not None:
            probs = merge_given_mask(probs, mask, self.object_ids, self.max_objects)
        self.memorize(probs, given=mask is not None)
        return probs

    def labels(self, probs: torch.Tensor) -> np.ndarray:
        """Probabilities (1+N, H, W) -> (H, W) uint8 map of the user's object ids."""
        return labels_from_probs(probs, self.object_ids)

    @abstractmethod
    def predict(self, frame: np.ndarray) -> torch.Tensor:
        """Probabilities (1+N, H, W) over background + known objects for the next frame."""

    @abstractmethod
    def memorize(self, probs: torch.Tensor, given: bool = False) -> None:
        """Store the frame last predicted with its final probabilities (1+N, H, W)."""


class Predictor(Streaming):
    def __init__(self, model: LGDK, options: PredictorOptions | None = None,
                 device: str | torch.device = "cpu") -> None:
        self.model = model.eval().to(device)
        self.options = options or PredictorOptions()
        if self.options.size is None:
            self.options = replace(self.options, size=default_size([model]))
        self.device = torch.device(device)
        self.max_objects = self.options.max_objects
        self.reset()

    def reset(self) -> None:
        self.bank = MemoryBank(max_frames=self.options.max_memory)
        self.object_ids: list[int] = []
        self.frame_index = -1
        self.last_memory = -(10**9)
        self._pending = None

    # ---- conversions ---------------------------------------------------------------------
    def _to_input(self, frame: np.ndarray) -> torch.Tensor:
        """(H, W, 3) uint8 -> (1, 3, h, w) float at the processing size, padded to 16."""
        frame = frame if frame.flags.writeable else frame.copy()
        x = torch.from_numpy(np.ascontiguousarray(frame)).to(self.device)
        x = x.permute(2, 0, 1)[None].float() / 255
        h, w = processing_size(x.shape[2], x.shape[3], self.options.size)
        if (h, w) != tuple(x.shape[2:]):
            x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False,
                              antialias=True)
        if self.options.flip:
            x = x.flip(-1)
        x, _ = pad_to_multiple(x)
        return x.contiguous(memory_format=torch.channels_last)

    def _to_output(self, probs: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """(1, C, H', W') padded probabilities -> (C, H, W) at the input size, unflipped."""
        h, w = processing_size(*size, self.options.size)
        probs = probs[:, :, :h, :w]
        if self.options.flip:
            probs = probs.flip(-1)
        if (h, w) != size:
            probs = F.interpolate(probs, size=size, mode="bilinear", align_corners=False)
        return probs[0]

    def _to_model(self, probs: torch.Tensor, padded: tuple[int, int]) -> torch.Tensor:
        """(C, H, W) probabilities at the input size -> (1, C, h, w) as the model sees them."""
        x = probs[None].float()
        h, w = processing_size(*probs.shape[1:], self.options.size)
        if (h, w) != tuple(probs.shape[1:]):
            x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
        if self.options.flip:
            x = x.flip(-1)
        return F.pad(x, (0, padded[1] - w, 0, padded[0] - h))

    # ---- the two halves of a step ----------------------------------------------------------
    @torch.inference_mode()
    def predict(self, frame: np.ndarray) -> torch.Tensor:
        """Probabilities (1+N, H, W) over background + known objects for the next frame."""
        self.frame_index += 1
        x = self._to_input(frame)
        with torch.autocast(self.device.type, enabled=self.options.amp and
                            self.device.type == "cuda"):
            if self.bank.num_objects:
                logits, query = self.model.step(x, self.bank)
                probs = aggregate(logits.float())
            else:
                query = self.model.encode_query(x)
                probs = torch.ones(1, 1, *x.shape[-2:], device=self.device)
        self._pending = (x, query)
        return self._to_output(probs, tuple(frame.shape[:2]))

    @torch.inference_mode()
    def memorize(self, probs: torch.Tensor, given: bool = False) -> None:
        """Store the frame last predicted with its final probabilities (1+N, H, W)."""
        x, query = self._pending
        if probs.shape[0] - 1 > self.bank.num_objects:
            self.bank.add_objects(probs.shape[0] - 1 - self.bank.num_objects, self.frame_index)
        if self.bank.num_objects == 0:
            return
        as_memory = given or self.frame_index - self.last_memory >= self.options.mem_every
        every = self.options.encode_every
        if not as_memory and not (every and self.frame_index % every == 0):
            return  # the previous frame in the bank stays the last one encoded
        masks = self._to_model(probs, tuple(x.shape[-2:]))[:, 1:]
        with torch.autocast(self.device.type, enabled=self.options.amp and
                            self.device.type == "cuda"):
            self.model.memorize(self.frame_index, x, query, masks, self.bank, as_memory,
                                permanent=given)
        if as_memory:
            self.last_memory = self.frame_index

def merge_given_mask(probs: torch.Tensor, mask: np.ndarray, object_ids: list[int],
                     max_objects: int) -> torch.Tensor:
    """Objects in `mask` take their given pixels; others keep their probabilities outside
    them. New ids are appended to `object_ids` (in place)."""
    if mask.shape != tuple(probs.shape[1:]):
        raise UserError(f"mask is {mask.shape[1]}x{mask.shape[0]} but the frame is "
                        f"{probs.shape[2]}x{probs.shape[1]}; give a mask of the frame's size")
    ids = [int(v) for v in np.unique(mask) if v not in (0, VOID)]
    new = [i for i in ids if i not in object_ids]
    if len(object_ids) + len(new) > max_objects:
        raise UserError(f"{len(object_ids) + len(new)} objects exceed the limit of "
                        f"{max_objects}; raise it with --max-objects")
    object_ids.extend(new)
    given = torch.from_numpy(mask.astype(np.int64)).to(probs.device)
    covered = torch.zeros_like(given, dtype=torch.bool)
    for i in ids:
        covered |= given == i
    out = torch.zeros(1 + len(object_ids), *probs.shape[1:], device=probs.device)
    out[: probs.shape[0]] = probs * (~covered)
    for i in ids:
        out[1 + object_ids.index(i)][given == i] = 1.0
    out[0] = (1 - out[1:].sum(dim=0)).clamp(0, 1)
    return out


def labels_from_probs(probs: torch.Tensor, object_ids: list[int]) -> np.ndarray:
    lookup = np.array([0, *object_ids], dtype=np.uint8)
    # max(...).indices: the same first-maximum index as argmax(dim=0), which PyTorch 2.14
    # computes 30x slower on a CPU (70 ms for a 480p frame)
    return lookup[probs.max(dim=0).indices.cpu().numpy()]
