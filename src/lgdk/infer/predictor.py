"""The streaming predictor: one frame in, object probabilities out, objects added any time.

`Streaming` is the public API (`step`, `labels`); `step` = `predict` (read the memory,
decode) + `memorize` (store the frame with its final probabilities). `Predictor` runs one
model at one processing size through one resize path (`Resolution`); flip, scales and
ensembles wrap predictors (`lgdk.infer.tta`) and call the two halves themselves, so that
every wrapped predictor memorises the combined result.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from lgdk.config import InferenceConfig
from lgdk.data.masks import VOID
from lgdk.errors import UserError
from lgdk.infer.backend import StepModel
from lgdk.infer.doubt import measure, object_doubt
from lgdk.infer.window import Boxes, object_boxes, object_crops, window_penalty
from lgdk.models.memory_bank import MemoryBank, MemoryPolicy
from lgdk.models.network import PAD_MULTIPLE, aggregate


def processing_size(height: int, width: int, size: int) -> tuple[int, int]:
    """(H, W) of a frame -> (h, w) with shorter side `size` (0: unchanged)."""
    if not size:
        return height, width
    scale = size / min(height, width)
    return max(16, round(height * scale)), max(16, round(width * scale))


@dataclass(frozen=True)
class Resolution:
    """The one resize path between a video's frames (H, W) and the model: the processing
    size (h, w), padded on the bottom and right to multiples of 16 (ph, pw)."""

    frame: tuple[int, int]
    model: tuple[int, int]
    padded: tuple[int, int]

    @classmethod
    def of(cls, height: int, width: int, size: int) -> Resolution:
        h, w = processing_size(height, width, size)
        return cls((height, width), (h, w), (h + (-h) % PAD_MULTIPLE, w + (-w) % PAD_MULTIPLE))

    def image(self, frame: np.ndarray, device: torch.device) -> torch.Tensor:
        """(H, W, 3) uint8 -> (1, 3, ph, pw) float in 0..1, edge-padded, channels-last.
        Written once into the padded channels-last tensor (a copy of the frame's last row
        and column fills the padding): 4.5 against 19 ms through a padded copy at 480p."""
        frame = frame if frame.flags.writeable else frame.copy()
        x = torch.from_numpy(np.ascontiguousarray(frame)).to(device)
        x = x.permute(2, 0, 1)[None]  # (1, 3, H, W), a channels-last view
        (h, w), (ph, pw) = self.model, self.padded
        out = torch.empty(1, 3, ph, pw, device=device, memory_format=torch.channels_last)
        if self.model != self.frame:  # on a CPU resized as uint8 (PyTorch's vectorised
            # kernel: 1.5-2.1 against 4.3 ms from 854x480 to 683x384; within 1 of 255)
            x = F.interpolate(x if x.is_cpu else x.float(), size=self.model,
                              mode="bilinear", align_corners=False, antialias=True)
        out[:, :, :h, :w].copy_(x).mul_(1 / 255)
        if pw > w:
            out[:, :, :h, w:] = out[:, :, :h, w - 1:w]
        if ph > h:
            out[:, :, h:] = out[:, :, h - 1:h]
        return out

    def to_frame(self, probs: torch.Tensor) -> torch.Tensor:
        """(1, C, ph, pw) -> (C, H, W)."""
        probs = probs[:, :, : self.model[0], : self.model[1]]
        if self.model != self.frame:
            probs = F.interpolate(probs, size=self.frame, mode="bilinear", align_corners=False)
        return probs[0]

    def to_model(self, probs: torch.Tensor) -> torch.Tensor:
        """(C, H, W) -> (1, C, ph, pw), zero in the padding."""
        x = probs[None].float()
        if self.model != self.frame:
            x = F.interpolate(x, size=self.model, mode="bilinear", align_corners=False)
        return self.zero_padding(x)

    def zero_padding(self, probs: torch.Tensor) -> torch.Tensor:
        """(1, C, ph, pw) -> the same with the padding rows and columns zero."""
        (h, w), (ph, pw) = self.model, self.padded
        return F.pad(probs[:, :, :h, :w], (0, pw - w, 0, ph - h))


class Streaming(ABC):
    """The public streaming API, on top of `predict` and `memorize`."""

    def __init__(self, max_objects: int) -> None:
        self.object_ids: list[int] = []
        self.max_objects = max_objects

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

    @property
    def processing_side(self) -> int | None:
        """The shorter side frames are processed at (0: each frame's own); the smallest
        where several sizes are averaged; None while it is not chosen yet."""
        return None

    @abstractmethod
    def predict(self, frame: np.ndarray) -> torch.Tensor:
        """Probabilities (1+N, H, W) over background + known objects for the next frame."""

    @abstractmethod
    def memorize(self, probs: torch.Tensor, given: bool = False) -> None:
        """Store the frame last predicted with its final probabilities (1+N, H, W)."""


class Predictor(Streaming):
    """One model (any `StepModel` backend) at `settings.size`, memory as `settings` say.
    The model is used as given: load it with `lgdk.infer.loading.load_models`."""

    def __init__(self, model: StepModel, settings: InferenceConfig | None = None,
                 device: str | torch.device = "cpu") -> None:
        self.settings = settings or InferenceConfig()
        super().__init__(self.settings.max_objects)
        self.model = model
        self.device = torch.device(device)
        self.policy = MemoryPolicy(self.settings.mem_every, self.settings.encode_every)
        self.autocast = self.settings.amp and self.device.type == "cuda"
        self.bank = MemoryBank(max_frames=self.settings.max_memory)
        self.frame_index = -1
        self._pending = None
        self._frame: tuple | None = None  # where the frame last read lies in memory
        self._boxes: Boxes | None = None  # the objects' boxes in the last frame memorised
        self._given_side = torch.zeros(1, 0, device=self.device)  # (1, N) in given masks
        self._measures: dict = {}  # each object's certainty and area (`memory_gate`)
        # objects decoded on crops: where the model can, and the window says where they are
        self.crop_share = self.settings.crop_share if getattr(
            getattr(model, "decoder", None), "decodes_crops", False) else 0.0

    @property
    def processing_side(self) -> int:
        return self.settings.size

    @torch.inference_mode()
    def step(self, frame: np.ndarray, mask: np.ndarray | None = None) -> torch.Tensor:
        if mask is not None:
            return super().step(frame, mask)
        probs = self._predict(frame)  # memorised as predicted: no trip to the frame size
        self._memorize(probs, given=False)
        return self._pending[0].to_frame(probs)

    @torch.inference_mode()
    def predict(self, frame: np.ndarray) -> torch.Tensor:
        probs = self._predict(frame)
        return self._pending[0].to_frame(probs)

    @torch.inference_mode()
    def memorize(self, probs: torch.Tensor, given: bool = False) -> None:
        self._memorize(self._pending[0].to_model(probs), given)

    @torch.inference_mode()
    def _predict(self, frame: np.ndarray) -> torch.Tensor:
        """(H, W, 3) uint8 -> probabilities (1, 1+N, ph, pw) at the model's resolution."""
        self.frame_index += 1
        resolution = Resolution.of(*frame.shape[:2], self.settings.size)
        x = resolution.image(frame, self.device)
        known = self._read_before(frame, x)
        self._frame = _where(frame)
        with torch.autocast(self.device.type, enabled=self.autocast):
            if self.bank.num_objects:
                logits, query = self.model.step(x, self.bank, known, crops=self._crops(x))
                logits = logits.float()  # (1, N, ph, pw)
                if self.settings.window and self._boxes is not None:
                    logits = logits + window_penalty(self._boxes, logits.shape[-2:],
                                                      self.settings.window, self._given_side,
                                                      self.settings.window_near)
                probs = aggregate(logits)
            else:
                query = self.model.encode_query(x)
                probs = torch.ones(1, 1, *x.shape[-2:], device=self.device)
        self._pending = (resolution, x, query)
        return probs

    def _crops(self, x: torch.Tensor) -> list | None:
        """Where each object is decoded this frame: around its motion window where that is
        a small part of the frame (`lgdk.infer.window.object_crops`), else everywhere."""
        if not (self.crop_share and self.settings.window and self._boxes is not None):
            return None
        boxes = self._boxes
        if boxes.seen.shape[1] < self.bank.num_objects:  # objects given on this frame
            return None
        return object_crops(boxes, x.shape[-2:], self.settings.window,
                            self.crop_share, self._given_side, self.settings.crop_margin)

    def _read_before(self, frame: np.ndarray, x: torch.Tensor):
        """The query encoding of the frame last read when `frame` is that frame again (the
        same pixels in the same memory, unchanged): a prompt's refinement memorises a frame
        and then predicts it. None otherwise: a video's next frame mostly lies elsewhere in
        memory (no compare), and where it reuses the last one's memory its pixels differ."""
        if self._pending is None or _where(frame) != self._frame:
            return None
        _, last, query = self._pending
        return query if last.shape == x.shape and torch.equal(last, x) else None

    @torch.inference_mode()
    def _memorize(self, probs: torch.Tensor, given: bool) -> None:
        """probs: (1, 1+N, ph, pw) of the frame last predicted."""
        resolution, x, query = self._pending
        if self.settings.window:
            (h, w) = resolution.model  # the padding is not the frame's
            self._track(object_boxes(probs[:, 1:, :h, :w]), given)
        if probs.shape[1] - 1 > self.bank.num_objects:
            self.bank.add_objects(probs.shape[1] - 1 - self.bank.num_objects, self.frame_index)
        if self.bank.num_objects == 0:
            return
        encode, as_memory = self.policy.plan(self.frame_index, self.bank, given)
        if self.settings.memory_gate:  # every frame measured: the areas of the one before
            doubtful = self._doubtful(probs, resolution)
            as_memory = as_memory and (given or not doubtful)
        if not encode:
            return  # the previous frame in the bank stays the last one encoded
        masks = resolution.zero_padding(probs)[:, 1:]
        with torch.autocast(self.device.type, enabled=self.autocast):
            self.model.memorize(self.frame_index, x, query, masks, self.bank, as_memory,
                                permanent=given)

    def _doubtful(self, probs: torch.Tensor, resolution: Resolution) -> bool:
        """Whether the frame's least certain object is past `memory_gate`'s doubt (the
        area against the frame memorised before); probs (1, 1+N, ph, pw)."""
        (h, w) = resolution.model
        now = measure(probs[0, :, :h, :w], list(range(probs.shape[1] - 1)))
        before, self._measures = self._measures, {m.object_id: m for m in now}
        doubt = max((object_doubt(m, before.get(m.object_id))[0] for m in now), default=0.0)
        return doubt > self.settings.memory_gate

    def _track(self, boxes: Boxes, given: bool) -> None:
        """Keep the boxes of the last frame and each object's side in given masks."""
        self._boxes = boxes
        new = boxes.seen.shape[1] - self._given_side.shape[1]
        if new:
            self._given_side = torch.cat([self._given_side, boxes.side()[:, -new:]], dim=1)
        if given:
            self._given_side = torch.maximum(self._given_side, boxes.side())


def _where(frame: np.ndarray) -> tuple:
    """Where an array's pixels lie: the same for every view of them with one layout."""
    return frame.__array_interface__["data"][0], frame.shape, frame.strides


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
    for i in ids:  # a given object is where its mask says, and nowhere else
        out[1 + object_ids.index(i)] = (given == i).to(out.dtype)
    out[0] = (1 - out[1:].sum(dim=0)).clamp(0, 1)
    return out


def labels_from_probs(probs: torch.Tensor, object_ids: list[int]) -> np.ndarray:
    lookup = np.array([0, *object_ids], dtype=np.uint8)
    # max(...).indices: the same first-maximum index as argmax(dim=0), which PyTorch 2.14
    # computes 30x slower on a CPU (70 ms for a 480p frame)
    return lookup[probs.max(dim=0).indices.cpu().numpy()]
