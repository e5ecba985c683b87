"""What a video has left in memory: memory frames, the previous frame, object features.

The same bank serves training (an unrolled clip, unbounded) and inference (bounded).
Objects may be added at any frame: object n reads only memory frames from the frame it
was introduced on.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import torch


@dataclass
class MemoryEntry:
    frame_index: int
    key: torch.Tensor  # (B, Ck, h, w)
    value: torch.Tensor  # (B, N, Cv, h, w), stored position-major: see `position_major`
    permanent: bool


def position_major(value: torch.Tensor) -> torch.Tensor:
    """(B, N, Cv, h, w) with the memory of a (B, h, w, N, Cv) tensor: every position's
    values of all objects and channels side by side, the rows that a top-k memory read
    picks. Stacking such entries over frames gives those rows without a transposing copy."""
    return value.permute(0, 3, 4, 1, 2).contiguous().permute(0, 3, 4, 1, 2)


@dataclass
class MemoryBank:
    max_frames: int = 0  # bound on non-permanent memory frames; 0 = unbounded
    entries: list[MemoryEntry] = field(default_factory=list)
    previous: MemoryEntry | None = None  # the last frame, as local (temporary) memory
    object_start: list[int] = field(default_factory=list)  # frame each object appeared on
    feature_sum: torch.Tensor | None = None  # (B, N, Cv) running sum of eq.-1 features
    feature_count: torch.Tensor | None = None  # (B, N, 1)
    local_feature: torch.Tensor | None = None  # (B, N, Cv) eq.-1 feature of frame t-1
    # start frame -> (the entries stacked, their keys): `stacked` gives the same keys again
    stacked_keys: dict = field(default_factory=dict, repr=False)

    @property
    def num_objects(self) -> int:
        return len(self.object_start)

    def add_objects(self, count: int, frame_index: int) -> None:
        self.object_start.extend([frame_index] * count)

    def update(
        self,
        frame_index: int,
        key: torch.Tensor,
        value: torch.Tensor,
        features: torch.Tensor,
        as_memory: bool,
        permanent: bool = False,
    ) -> None:
        """Record frame `frame_index`: key (B, Ck, h, w), value (B, N, Cv, h, w), features
        (B, N, Cv). It always becomes the previous frame; `as_memory` also stores it."""
        entry = MemoryEntry(frame_index, key, position_major(value), permanent)
        self._update_features(features)
        self.previous = entry
        if as_memory or permanent:
            self.entries.append(entry)
            self._enforce_bound()

    def _update_features(self, features: torch.Tensor) -> None:
        present = torch.ones_like(features[..., :1])
        if self.feature_sum is None:
            self.feature_sum, self.feature_count = features, present
        else:
            old = self.feature_sum.shape[1]
            self.feature_sum = torch.cat(
                [self.feature_sum + features[:, :old], features[:, old:]], dim=1
            )
            self.feature_count = torch.cat(
                [self.feature_count + present[:, :old], present[:, old:]], dim=1
            )
        self.local_feature = features

    def _enforce_bound(self) -> None:
        if not self.max_frames:
            return
        while sum(not e.permanent for e in self.entries) > self.max_frames:
            oldest = next(i for i, e in enumerate(self.entries) if not e.permanent)
            del self.entries[oldest]

    @property
    def global_feature(self) -> torch.Tensor:
        """Mean eq.-1 feature over all past frames, per object. (B, N, Cv)."""
        return self.feature_sum / self.feature_count

    def readable(self) -> list[MemoryEntry]:
        """Memory frames plus the previous frame (when it is not already one of them)."""
        out = list(self.entries)
        if self.previous is not None and (not out or out[-1] is not self.previous):
            out.append(self.previous)
        return out

    def groups(self) -> list[tuple[int, list[int]]]:
        """Objects grouped by the frame they appeared on: [(start_frame, [object ids])]."""
        starts: dict[int, list[int]] = {}
        for obj, start in enumerate(self.object_start):
            starts.setdefault(start, []).append(obj)
        return sorted(starts.items())

    @property
    def last_memory_index(self) -> int | None:
        """The frame index of the newest memory frame (None before the first)."""
        return self.entries[-1].frame_index if self.entries else None

    def per_group(self) -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor]]:
        """The memory each group of objects reads (those that appeared on one frame read
        the frames since then): (object indices, keys (B, Ck, T, h, w), values
        (B, n, Cv, T, h, w)). Both backends read through this loop."""
        for start, objects in self.groups():
            yield (objects, *self.stacked(start, objects))

    def stacked(self, start_frame: int, objects: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys (B, Ck, T, h, w) and values (B, n, Cv, T, h, w) of frames >= start_frame;
        the values' memory is (B, T, h, w, n, Cv), position-major (see `position_major`).
        While the same entries are read, the same keys tensor comes back (no new copy; a
        reader may keep what it derived from it: `lgdk.models.memory_int8.KeyPacks`); the
        values, one to many objects' worth, are stacked anew (a bank keeps no second copy
        of them: sessions of `lgdk app` keep their banks)."""
        chosen = [e for e in self.readable() if e.frame_index >= start_frame]
        keys = self._keys_of(start_frame, chosen)
        values = [e.value for e in chosen]
        if objects != list(range(values[-1].shape[1])):
            index = torch.tensor(objects, device=keys.device)
            values = [v.index_select(1, index) for v in values]
        rows = torch.stack([v.permute(0, 3, 4, 1, 2) for v in values], dim=1)  # (B,T,h,w,n,Cv)
        return keys, rows.permute(0, 4, 5, 1, 2, 3)

    def _keys_of(self, start_frame: int, chosen: list[MemoryEntry]) -> torch.Tensor:
        """The chosen entries' keys stacked (B, Ck, T, h, w): the tensor made last time
        for these entries, or a new one."""
        held = self.stacked_keys.get(start_frame)
        if held is not None and len(held[0]) == len(chosen) and all(
                a is b for a, b in zip(held[0], chosen)):
            return held[1]
        keys = torch.stack([e.key for e in chosen], dim=2)
        self.stacked_keys[start_frame] = (chosen, keys)
        return keys

    def nbytes(self) -> int:
        tensors = [t for e in self.readable() for t in (e.key, e.value)]
        tensors += [t for t in (self.feature_sum, self.feature_count, self.local_feature) if
                    t is not None]
        return sum(t.numel() * t.element_size() for t in tensors)


@dataclass(frozen=True)
class MemoryPolicy:
    """Which frames go through the memory encoder, and which of those become memory frames;
    the same rule for training's unrolled clips and the streaming predictor.

    A frame with a given mask, or `mem_every` frames after the last memory frame, becomes
    a memory frame; every `encode_every`-th frame (0: none) is also encoded, as the local
    (previous-frame) memory and O_{t-1}. The defaults (1, 1) store every frame, as in
    training."""

    mem_every: int = 1
    encode_every: int = 1

    def plan(self, frame_index: int, bank: MemoryBank, given: bool) -> tuple[bool, bool]:
        """-> (encode the frame, keep it as a memory frame)."""
        last = bank.last_memory_index
        as_memory = given or last is None or frame_index - last >= self.mem_every
        every = self.encode_every
        return as_memory or bool(every and frame_index % every == 0), as_memory
