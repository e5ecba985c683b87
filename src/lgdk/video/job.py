"""One video job: a video, the masks (or prompts) given on any of its frames, and
propagation from each given frame forwards and backwards. `lgdk segment`, its prompted
path and `lgdk app` all drive it.

    job = VideoJob(open_frames("video.mp4"), make_predictor)
    job.give(25, mask)                      # (H, W) object ids on frame 25
    for result in job.propagate("both"):    # every frame, in order
        result.index, result.labels         # (H, W) uint8 ids

Which given frame a frame's result comes from (`plan`): the nearer one in time (on a
tie, the earlier); frames before the first given frame from it, backwards; frames after
the last, forwards. Every pass from a given frame starts with the given frames around it
in memory (`SEEDS` earlier ones, whose objects carry on, and `LATER_SEEDS` later ones),
so that a frame between two given frames reads both. The backward pass starts from the
forward pass's labels of the given frame itself. With `forward` alone there is one pass
from the first given frame, taking each later given mask as it comes (the DAVIS /
YouTube-VOS protocol). After a correction (`propagate(only=...)`, with `unchanged`), a
pass stops once `AGREE_RUN` frames in a row come out as they were.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from lgdk.data.masks import object_ids, only_objects
from lgdk.errors import UserError
from lgdk.infer.doubt import ObjectMeasure, measure
from lgdk.video.frames import Frames, Spill
from lgdk.video.video_io import FrameSource

if TYPE_CHECKING:  # the job runs any predictor it is given; torch is not needed to plan
    from lgdk.infer.predictor import Streaming

DIRECTIONS = ("both", "forward", "backward")
SEEDS = 3  # earlier given frames a pass starts with in memory
LATER_SEEDS = 1  # later given frames a pass starts with in memory
AGREE_RUN = 3  # after a correction, a pass stops after this many frames as they were
AGREE_IOU = 0.95  # ... each object's mask this close (IoU) to what it was

Given = np.ndarray | Callable[[np.ndarray], np.ndarray]  # a mask, or frame -> mask


@dataclass(frozen=True)
class Reach:
    """The frames one given frame labels: `back_to`..`given` - 1 backwards (none when
    `back_to` is None), `given`..`forward_to` - 1 forwards (to the end when None)."""

    given: int
    back_to: int | None
    forward_to: int | None

    @property
    def first(self) -> int:
        """The lowest frame it labels."""
        return self.given if self.back_to is None else self.back_to

    def covers(self, index: int) -> bool:
        return self.first <= index and (self.forward_to is None or index < self.forward_to)


def check_direction(direction: str) -> None:
    if direction not in DIRECTIONS:
        raise UserError(f"--direction must be one of {', '.join(DIRECTIONS)}, not "
                        f"'{direction}'")


def plan(given: list[int], direction: str = "both") -> list[Reach]:
    """The reach of each given frame (in order) so that every frame, or with one
    direction every frame on that side of a given frame, is labelled exactly once."""
    check_direction(direction)
    frames = sorted(set(given))
    if not frames:
        return []
    if direction == "forward":
        return [Reach(frames[0], None, None)]
    reaches = []
    for i, g in enumerate(frames):
        before = frames[i - 1] if i else None
        after = frames[i + 1] if i + 1 < len(frames) else None
        if direction == "backward":
            back = 0 if before is None else before + 1
            reaches.append(Reach(g, back if back < g else None, g + 1))
            continue
        back = 0 if before is None else (before + g) // 2 + 1
        forward = None if after is None else (g + after) // 2 + 1
        reaches.append(Reach(g, back if back < g else None, forward))
    return reaches


@dataclass
class Result:
    index: int
    name: str
    frame: np.ndarray  # (H, W, 3) uint8
    labels: np.ndarray  # (H, W) uint8 object ids
    probs: np.ndarray | None  # (1+N, H, W) float16 over background + `object_ids`
    object_ids: list[int]
    measures: list[ObjectMeasure] | None = None  # how sure each object is (`doubt`)


class VideoJob:
    """make_predictor() -> a fresh streaming predictor, one a pass."""

    def __init__(self, source: FrameSource, make_predictor: Callable[[], Streaming],
                 spill: Spill | None = None, later_seeds: int | None = None) -> None:
        self.frames = Frames(source, spill)
        self.make_predictor = make_predictor
        # later given frames each pass holds in memory
        self.later_seeds = LATER_SEEDS if later_seeds is None else later_seeds
        self.given: dict[int, Given] = {}
        self.cancelled: Callable[[], bool] = lambda: False  # checked between frames
        self.keep_probs = False  # Result.probs: the probabilities, else None
        self.keep_measures = False  # Result.measures: how sure each object is, else None
        # whether a result is as its frame was before this propagation: with it, a
        # correction's passes (`propagate(only=...)`) stop where frames come out as they were
        self.unchanged: Callable[[Result], bool] | None = None
        self._released = 0  # frames below this one are released (but given ones)
        self._later = self.later_seeds  # of this propagation (none going forward)
        self._stop_early = False  # of this propagation: a correction's, with `unchanged`

    def give(self, index: int, mask: Given) -> None:
        """The mask of frame `index` ((H, W) ids), or a function of the frame that makes
        it (boxes and clicks), called when the frame is first read."""
        if index < 0:
            raise UserError(f"frame {index} does not exist; frames count from 0")
        self.given[index] = mask

    def mask(self, index: int) -> np.ndarray:
        mask = self.given[index]
        if callable(mask):
            frame = self.frames.get(index)
            if frame is None:
                raise UserError(f"frame {index} does not exist; the video has "
                                f"{self.frames.count} frames")
            mask = self.given[index] = mask(frame)
        return mask

    def propagate(self, direction: str = "both", only: set[int] | None = None,
                  in_order: bool = True) -> Iterator[Result]:
        """Every frame's result (`in_order`: by frame number, frames no reach covers as
        empty masks; else as made: only the frames the reaches cover, and less kept in
        memory). `only`: the reaches of these given frames alone (after a correction)."""
        self._later = 0 if direction == "forward" else self.later_seeds  # the protocol's
        reaches = [r for r in plan(list(self.given), direction)
                   if only is None or r.given in only]
        self._stop_early = only is not None and self.unchanged is not None
        results = self._run(reaches)
        if not in_order:
            return results
        return _in_order(results, self.frames, lambda i: any(r.covers(i) for r in reaches))

    def _run(self, reaches: list[Reach]) -> Iterator[Result]:
        for i, reach in enumerate(reaches):
            nxt = reaches[i + 1] if i + 1 < len(reaches) else None
            yield from self._reach(reach, nxt)
            self._release_below(nxt)
            if self.cancelled():
                return

    def _reach(self, reach: Reach, nxt: Reach | None) -> Iterator[Result]:
        g = reach.given
        forward = self.make_predictor()
        self._seed(forward, g)
        if self.frames.get(g) is None:
            count = self.frames.count
            raise UserError(f"frame {g} is given a mask or prompts, but {self.frames.source.path}"
                            f" has only {count} frames; give a frame number below {count}")
        first = self._step(forward, g, self.mask(g))
        yield first
        if reach.back_to is not None:
            yield from self._backward(g, reach.back_to, first.labels)
        index, agreed = g + 1, 0
        while (reach.forward_to is None or index < reach.forward_to) and not self.cancelled():
            given = self.mask(index) if index in self.given else None
            result = self._step(forward, index, given)
            if result is None:
                return  # the end of the video
            same = self._as_before(result)  # before the caller writes the result
            yield result
            if index not in self.given:
                self.frames.release(index)  # used: out in order by now
            agreed = agreed + 1 if same else 0
            if agreed >= AGREE_RUN:
                return
            index += 1

    def _backward(self, g: int, back_to: int, labels: np.ndarray) -> Iterator[Result]:
        backward = self.make_predictor()
        self._seed(backward, g)
        backward.step(self.frames.get(g), labels)
        agreed = 0
        for index in range(g - 1, back_to - 1, -1):
            if self.cancelled():
                return
            result = self._step(backward, index, None)
            same = self._as_before(result)
            yield result
            agreed = agreed + 1 if same else 0
            if agreed >= AGREE_RUN:
                return

    def _as_before(self, result: Result) -> bool:
        """After a correction: whether the frame's new labels are as they were."""
        return (self._stop_early and result.index not in self.given
                and self.unchanged(result))

    def _seed(self, predictor: Streaming, g: int) -> None:
        """Put the given frames around frame `g` in a fresh predictor's memory: the
        earlier ones in order, then the later ones holding only the objects known by
        frame `g` (an object given first later is not claimed before it is given)."""
        earlier, later = self._seeds(g)
        for seed in earlier:
            predictor.step(self.frames.get(seed), self.mask(seed))
        known = {*predictor.object_ids, *object_ids(self.mask(g))}
        for seed in later:
            frame = self.frames.get(seed)
            if frame is None:
                continue  # past the end: refused when its own reach starts
            mask = self.mask(seed)
            predictor.step(frame, only_objects(mask, known))

    def _seeds(self, g: int) -> tuple[list[int], list[int]]:
        """The given frames a pass from frame `g` starts with in memory: (earlier, later)."""
        frames = sorted(self.given)
        earlier = [s for s in frames if s < g][-SEEDS:]
        later = [s for s in frames if s > g][:self._later]
        return earlier, later

    def _step(self, predictor: Streaming, index: int, mask) -> Result | None:
        frame = self.frames.get(index)
        if frame is None:
            return None
        measures = None
        if mask is None and not predictor.object_ids:
            labels, probs = np.zeros(frame.shape[:2], np.uint8), None
        else:
            if mask is not None and not object_ids(mask) and not predictor.object_ids:
                raise UserError(f"the mask of frame {self.frames.name(index)} holds no "
                                "object; draw at least one")
            out = predictor.step(frame, mask)
            labels = predictor.labels(out)
            probs = out.float().cpu().numpy().astype(np.float16) if self.keep_probs else None
            if self.keep_measures:
                measures = measure(out, predictor.object_ids)
        return Result(index, self.frames.name(index), frame, labels, probs,
                      list(predictor.object_ids), measures)

    def _release_below(self, nxt: Reach | None) -> None:
        """Frames below the next reach's first frame are read no more, but for given
        frames (later passes start with them in memory)."""
        low = self.frames.decoded if nxt is None else nxt.first
        for index in range(self._released, low):
            if index not in self.given or nxt is None:
                self.frames.release(index)
        if nxt is None:
            for index in self.given:
                self.frames.release(index)
        self._released = max(self._released, low)

    def close(self) -> None:
        self.frames.close()


def labels_agree(a: np.ndarray, b: np.ndarray, iou: float) -> bool:
    """Whether every object of two (H, W) id maps has masks at least `iou` alike."""
    for o in set(object_ids(a)) | set(object_ids(b)):
        x, y = a == o, b == o
        if (x & y).sum() < iou * (x | y).sum():
            return False
    return True


def _in_order(results: Iterator[Result], frames: Frames,
              covered: Callable[[int], bool]) -> Iterator[Result]:
    """Results by frame number: a backward pass's results wait (their masks and
    probabilities in the job's spill store, where their frames are kept already) until
    the frames before them are out. A frame no reach covers comes out as an empty mask."""
    spill, waiting, expected = frames.spill, {}, 0
    for result in results:
        while expected < result.index and not covered(expected):
            yield _empty(frames, expected)
            expected += 1
        if result.index != expected:
            spill.put(("labels", result.index), result.labels)
            if result.probs is not None:
                spill.put(("probs", result.index), result.probs)
            waiting[result.index] = (result.name, result.object_ids, result.measures)
            continue
        yield result
        expected += 1
        while expected in waiting:
            name, ids, measures = waiting.pop(expected)
            out = Result(expected, name, frames.get(expected), spill.get(("labels", expected)),
                         spill.get(("probs", expected)), ids, measures)
            spill.pop(("labels", expected))
            spill.pop(("probs", expected))
            yield out
            expected += 1
    while not covered(expected):  # after the last reach (the backward direction)
        result = _empty(frames, expected)
        if result is None:
            return
        yield result
        frames.release(expected)
        expected += 1


def _empty(frames: Frames, index: int) -> Result | None:
    frame = frames.get(index)
    if frame is None:
        return None
    return Result(index, frames.name(index), frame, np.zeros(frame.shape[:2], np.uint8),
                  None, [])
