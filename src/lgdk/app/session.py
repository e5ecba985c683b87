"""One user's video in the web app: its frames, the masks the user gives (boxes, clicks,
brush), propagation in a background thread, and the downloads. No web code here: the
server (`lgdk.app.server`) maps requests to these calls, and tests call them directly.

Everything lives in the session's own temporary folder (`lgdk.app.store`: the source
the model reads, a JPEG of each frame for the page), results as indexed PNGs (memory
stays flat on long videos), outputs built on demand. Propagation is the video job of
`lgdk segment` (`lgdk.video.job`): from each frame the user gave a mask on, both ways.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lgdk.app import downloads
from lgdk.app.brush import check_stroke, stroke_pixels
from lgdk.app.limits import AppSettings, DiskBudget
from lgdk.app.queue import Cancelled, PropagationQueue
from lgdk.app.store import FrameStore
from lgdk.app.vouched import merged, unchanged, vouched_mask
from lgdk.data.masks import VOID, object_ids, read_mask, write_mask
from lgdk.errors import UserError
from lgdk.infer.doubt import FrameDoubt, ObjectMeasure, frame_doubts
from lgdk.infer.predictor import Streaming
from lgdk.prompts import mask_from_object_prompts, with_others_clicks
from lgdk.prompts.correct import box_around, far_from, local_edit
from lgdk.prompts.grabcut import click_radius
from lgdk.prompts.refine import pin_radius
from lgdk.prompts.spec import Box, Click, ObjectPrompt, PromptError, check_prompts
from lgdk.video.frames import Spill
from lgdk.video.job import Reach, VideoJob, check_direction, plan
from lgdk.video.video_io import FrameSource

SPILL_IN_MEMORY = 96 << 20  # bytes of frames a propagation keeps in memory


class SessionError(UserError):
    pass


@dataclass
class Progress:
    running: bool = False
    done: int = 0
    total: int = 0
    fps: float = 0.0
    cancelled: bool = False
    error: str | None = None


class Session:
    """make_predictor() -> a fresh streaming predictor (the shipped model's by default).
    `settings` bound what one edit may ask (objects, clicks, brush) before any work starts.
    With a `queue`, a propagation waits for its turn; with a `disk` budget, a video whose
    frames would not fit is refused (checked before and while they are written)."""

    def __init__(self, folder: Path, make_predictor: Callable[[], Streaming],
                 settings: AppSettings | None = None, queue: PropagationQueue | None = None,
                 disk: DiskBudget | None = None) -> None:
        self.folder = Path(folder)
        self.make_predictor = make_predictor
        self.settings = settings = settings or AppSettings()
        self.queue, self.disk = queue, disk
        self.store = FrameStore(self.folder, settings.max_frames, disk)
        self.given: dict[int, np.ndarray] = {}  # frame -> (H, W) ids the user gave
        self.prompts: dict[tuple[int, int], ObjectPrompt] = {}  # (frame, object) -> prompt
        self.correcting: set[tuple[int, int]] = set()  # (frame, object): clicks correct
        # frame -> the objects the user edited there: a given frame vouches for these;
        # the others on it (a propagation's results) are predicted again from its memory
        self.vouched: dict[int, set[int]] = {}
        self.edited: set[int] = set()  # given frames whose reach is to propagate again
        self.measures: dict[int, list[ObjectMeasure]] = {}  # frame -> how sure its objects are
        self.direction = "both"
        self.progress = Progress()
        self.lock = threading.RLock()
        self.last_used = time.monotonic()
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- frames ------------------------------------------------------------------------
    @property
    def frames(self) -> list[Path]:
        """The page's JPEG of each frame."""
        return self.store.shown

    @property
    def fps(self) -> float:
        return self.store.fps

    @property
    def size(self) -> tuple[int, int]:
        return self.store.size

    def load(self, frames: Iterator[np.ndarray], fps: float, announced: int = 0) -> None:
        """Replace the video: frames (H, W, 3) uint8, at most `max_frames` (`announced`:
        how many the source says it has, 0 if unknown). A video refused part-way leaves
        no frames behind."""
        with self.lock:
            self._reset()
            self.store.load_arrays(frames, fps, announced)

    def load_source(self, source: FrameSource) -> None:
        """Replace the video by a file or folder of frames (kept as it is: the model
        reads it as `lgdk segment` would)."""
        with self.lock:
            self._reset()
            self.store.load_source(source)

    def share(self, frames: list[Path], source: FrameSource, size: tuple[int, int]) -> None:
        """Show frames that other sessions share (the demo clip): read, never written."""
        with self.lock:
            self._reset()
            self.store.share(frames, source, size)

    def _reset(self) -> None:
        self.cancel(wait=True)
        shutil.rmtree(self.folder / "results", ignore_errors=True)
        (self.folder / "results").mkdir(parents=True)
        self.given, self.prompts, self.edited, self.measures = {}, {}, set(), {}
        self.correcting, self.vouched = set(), {}
        self.progress = Progress()

    def frame(self, index: int) -> np.ndarray:
        """Frame `index` as the model sees it."""
        return self.store.frame(self._check_index(index))

    def _check_index(self, index: int) -> int:
        if not 0 <= index < len(self.frames):
            raise SessionError(f"frame {index} does not exist; the video has "
                               f"{len(self.frames)} frames")
        return index

    # ---- masks -------------------------------------------------------------------------
    def labels(self, index: int) -> np.ndarray | None:
        """What the page shows on frame `index`: the given mask, else the result."""
        self._check_index(index)
        if index in self.given:
            return self.given[index]
        return self._result(index)

    def _result(self, index: int) -> np.ndarray | None:
        """The propagated labels of frame `index` (None: not propagated yet)."""
        path = self.folder / "results" / f"{index:05d}.png"
        return read_mask(path) if path.is_file() else None

    def object_ids(self) -> list[int]:
        ids = {int(i) for mask in self.given.values() for i in object_ids(mask)}
        return sorted(ids)

    def new_object_id(self) -> int:
        ids = self.object_ids()
        if len(ids) >= self.settings.max_objects:
            raise SessionError(f"{len(ids)} objects is this app's limit")
        return next(i for i in range(1, 256) if i not in ids)

    def _check_object(self, object_id: int) -> None:
        """An id a mask can hold, and room for it when it is new."""
        if not 1 <= object_id < VOID:
            raise SessionError(f"object {object_id} is not an object id; ids are "
                               f"1-{VOID - 1}")
        ids = self.object_ids()
        if object_id not in ids and len(ids) >= self.settings.max_objects:
            raise SessionError(f"{len(ids)} objects is this app's limit; edit one of "
                               f"objects {', '.join(map(str, ids))}")

    def box(self, index: int, object_id: int, box: tuple[float, float, float, float]) -> None:
        """A box around object `object_id` on frame `index` (a new box replaces its clicks)."""
        self._check_edit(index, object_id)
        self._apply_prompt(index, ObjectPrompt(object_id, box=Box(*box)))
        self.correcting.discard((index, object_id))

    def click(self, index: int, object_id: int, x: float, y: float, positive: bool) -> None:
        """A click; on an object that has a mask but no prompt here (a propagated result
        to correct), each click corrects that mask where it is (`lgdk.prompts.correct`)."""
        self._check_edit(index, object_id)
        key = (index, object_id)
        prompt = self.prompts.get(key)
        if prompt is None:
            current = self.labels(index)
            if current is not None and (current == object_id).any():
                self.correcting.add(key)
            prompt = ObjectPrompt(object_id)
        if len(prompt.clicks) >= self.settings.max_clicks:
            raise SessionError(f"{len(prompt.clicks)} clicks on object {object_id} of this "
                               "frame is this app's limit (--max-clicks); clear the frame or "
                               "draw a new box")
        clicks = [*prompt.clicks, Click(x, y, positive)]
        if key in self.correcting:
            self._apply_correction(index, ObjectPrompt(object_id, None, clicks))
        else:
            self._apply_prompt(index, ObjectPrompt(object_id, prompt.box, clicks))

    def paint(self, index: int, object_id: int, points: list[tuple[float, float]],
              radius: float, erase: bool = False) -> None:
        """A brush stroke through `points` (frame pixels): paints the object, or erases it."""
        self._check_edit(index, object_id)
        check_stroke(points, radius, self.size, self.settings)
        mask = self._editable(index)
        stroke = stroke_pixels(points, radius, mask.shape)
        if erase:
            mask[stroke & (mask == object_id)] = 0
        else:
            mask[stroke] = object_id
        self._set_given(index, mask, {object_id})

    def give_mask(self, index: int, labels: np.ndarray) -> None:
        """A whole mask of frame `index`: (H, W) object ids (0: background, 255: void,
        taken as background); its objects' prompts on that frame are forgotten."""
        self._check_idle()
        self._check_index(index)
        if labels.shape != self.size:
            raise SessionError(f"the mask is {labels.shape[1]}x{labels.shape[0]} but the "
                               f"frames are {self.size[1]}x{self.size[0]}")
        mask = np.where(labels == VOID, 0, labels).astype(np.uint8)
        ids = set(object_ids(mask))
        if len(ids | set(self.object_ids())) > self.settings.max_objects:
            raise SessionError(f"{len(ids | set(self.object_ids()))} objects is over this "
                               f"app's limit of {self.settings.max_objects}")
        with self.lock:
            self.prompts = {k: v for k, v in self.prompts.items() if k[0] != index}
            self.correcting = {k for k in self.correcting if k[0] != index}
            self.vouched.pop(index, None)
        self._set_given(index, mask, ids)

    def clear(self, index: int) -> None:
        """Forget what was given on frame `index`."""
        self._check_idle()
        with self.lock:
            self.given.pop(self._check_index(index), None)
            self.prompts = {k: v for k, v in self.prompts.items() if k[0] != index}
            self.correcting = {k for k in self.correcting if k[0] != index}
            self.vouched.pop(index, None)
            self._neighbours_edited(index)

    def _check_idle(self) -> None:
        if self.progress.running:
            raise SessionError("propagation is running: wait for it or cancel it before "
                               "editing masks")

    def _check_edit(self, index: int, object_id: int) -> None:
        """An edit of object `object_id` on frame `index` may start now."""
        self._check_idle()
        self._check_index(index)
        self._check_object(object_id)

    def _apply_prompt(self, index: int, prompt: ObjectPrompt) -> None:
        """The object's mask on the frame made again from its new prompt, which is kept
        once it made one (a refused prompt leaves the frame as it was)."""
        frame = self.frame(index)
        mask = self._editable(index)
        object_id = prompt.object_id
        on_frame = [p for (i, o), p in self.prompts.items() if i == index and o != object_id]
        ids = mask_from_object_prompts(frame, [with_others_clicks(prompt, on_frame)],
                                       self.settings.prompt_method, self.settings.max_objects,
                                       self.make_predictor, others=mask)
        self.prompts[(index, object_id)] = prompt
        mask[mask == object_id] = 0
        mask[ids == object_id] = object_id
        self._set_given(index, mask, {object_id})

    def _apply_correction(self, index: int, prompt: ObjectPrompt) -> None:
        """The prompt's last click applied to the object's mask on the frame, where it is:
        what the prompt network makes of all its clicks there decides the piece added or
        removed (`lgdk.prompts.correct.local_edit`); a positive click far from the mask
        starts the object anew from it."""
        frame, mask, object_id = self.frame(index), self._editable(index), prompt.object_id
        height, width = mask.shape
        check_prompts([ObjectPrompt(object_id, Box(0, 0, width, height), prompt.clicks)],
                      height, width, self.settings.max_objects)  # the clicks, first
        current = mask == object_id
        last = prompt.clicks[-1]
        if last.positive and far_from(current, last):  # it is there: anew from the click
            self._apply_prompt(index, ObjectPrompt(object_id, None, [last]))
            return
        box = box_around(current, prompt.clicks)
        if box is None:  # nothing left of it, and negative clicks alone
            raise PromptError(f"object {object_id} has no mask on this frame; click on it "
                              "(+) or draw a box")
        on_frame = [p for (i, o), p in self.prompts.items() if i == index and o != object_id]
        asked = with_others_clicks(ObjectPrompt(object_id, box, prompt.clicks), on_frame)
        try:
            ids = mask_from_object_prompts(frame, [asked], self.settings.prompt_method,
                                           self.settings.max_objects, self.make_predictor,
                                           others=mask)
        except PromptError:  # an empty mask: the click's disc decides
            ids = np.zeros_like(mask)
        radius = pin_radius(ObjectPrompt(object_id, box), mask, click_radius(*mask.shape))
        edited = local_edit(current, ids == object_id, prompt.clicks[-1:], radius)
        self.prompts[(index, object_id)] = prompt
        mask[current] = 0
        mask[edited] = object_id
        self._set_given(index, mask, {object_id})

    def _editable(self, index: int) -> np.ndarray:
        current = self.labels(index)
        return np.zeros(self.size, np.uint8) if current is None else current.copy()

    def _set_given(self, index: int, mask: np.ndarray, objects: set[int]) -> None:
        """Frame `index` given `mask`, the user having edited `objects` there."""
        with self.lock:
            if object_ids(mask):
                self.given[index] = mask
                self.vouched.setdefault(index, set()).update(objects)
                self.edited.add(index)
            else:
                self.given.pop(index, None)
                self.vouched.pop(index, None)
                self._neighbours_edited(index)

    def _vouched_mask(self, index: int) -> np.ndarray:
        return vouched_mask(self.given[index], self.vouched.get(index))

    def _neighbours_edited(self, index: int) -> None:
        """Frame `index` holds no given mask now: the given frames beside it reach over
        its frames instead."""
        self.edited.discard(index)
        self.edited |= {max((g for g in self.given if g < index), default=None),
                        min((g for g in self.given if g > index), default=None)} - {None}
        if not self.given:  # nothing to propagate from: the results are void
            shutil.rmtree(self.folder / "results", ignore_errors=True)
            (self.folder / "results").mkdir(parents=True)

    # ---- propagation -------------------------------------------------------------------
    def propagate(self, direction: str | None = None) -> None:
        """Start propagating in a background thread (waiting for its turn in the queue),
        from each given frame edited since the last run (all of them the first time),
        both ways unless `direction` says otherwise; other frames' results stand."""
        with self.lock:
            if self.progress.running:
                raise SessionError("propagation is already running; wait or cancel it")
            if not self.given:
                raise SessionError("no object yet: draw a box, click or paint on a frame "
                                   "first")
            if direction is not None:
                check_direction(direction)
                if direction != self.direction:
                    self.direction, self.edited = direction, set(self.given)
            edited = set(self.edited) or set(self.given)
            self.edited = set()
            reaches = [r for r in plan(list(self.given), self.direction) if r.given in edited]
            total = sum(self._reach_length(r) for r in reaches)
            self.progress = Progress(running=True, total=total)
            self._cancel.clear()
            self._thread = threading.Thread(target=self._queued_run, args=(edited,),
                                            daemon=True)
            self._thread.start()

    def _reach_length(self, reach: Reach) -> int:
        high = len(self.frames) if reach.forward_to is None else reach.forward_to
        return max(0, min(high, len(self.frames)) - reach.first)

    def status(self) -> dict:
        """The progress, with `queued`: the place in the queue while waiting (else 0)."""
        queued = self.queue.position(self) if self.queue is not None else 0
        return {**vars(self.progress), "queued": queued}

    def _queued_run(self, edited: set[int]) -> None:
        if self.queue is None:
            self._run(edited)
            return
        try:
            with self.queue.turn(self, self._cancel):
                self._run(edited)
        except Cancelled:  # left the queue: those frames stay to do
            with self.lock:
                self.edited |= edited
            self.progress.cancelled, self.progress.running = True, False

    def _run(self, edited: set[int]) -> None:
        # frames a backward pass keeps: a little in memory, the rest in the session's folder
        job = VideoJob(self.store.source, self.make_predictor,
                       Spill(budget=SPILL_IN_MEMORY, parent=self.folder))
        job.cancelled = self._cancel.is_set
        job.keep_measures = True
        reaches = [r for r in plan(list(self.given), self.direction) if r.given in edited]

        def vouched(index: int) -> set[int] | None:  # by the given frame it comes from
            given = next((r.given for r in reaches if r.covers(index)), None)
            return self.vouched.get(given)

        shown: dict[int, np.ndarray | None] = {}  # the frame's result before, read once

        def before(index: int) -> np.ndarray | None:
            if index not in shown:
                shown.clear()
                shown[index] = self._result(index)
            return shown[index]

        job.unchanged = lambda result: unchanged(before(result.index), result.labels,
                                                 vouched(result.index))
        try:
            for index in self.given:
                job.give(index, self._vouched_mask(index))
            began = time.perf_counter()
            for result in job.propagate(self.direction, only=edited, in_order=False):
                labels, measures = merged(before(result.index), result,
                                          self.measures.get(result.index, []),
                                          vouched(result.index))
                write_mask(self.folder / "results" / f"{result.index:05d}.png", labels)
                self.measures[result.index] = measures
                self.progress.done += 1
                self.progress.fps = self.progress.done / (time.perf_counter() - began)
            if self._cancel.is_set():
                self.progress.cancelled = True
                with self.lock:
                    self.edited |= edited  # what was not done stays to do
            else:  # a correction's passes stop where the frames are as they were
                self.progress.total = self.progress.done
        except Exception as exc:  # shown in the page; the server keeps running
            self.progress.error = str(exc) if isinstance(exc, UserError) else \
                f"propagation failed: {type(exc).__name__}: {exc}"
        finally:
            job.close()
            self.progress.running = False

    def doubts(self) -> list[FrameDoubt]:
        """Each frame's doubt (`lgdk.infer.doubt`): where to correct next."""
        frames = [self.measures.get(i) for i in range(len(self.frames))]
        return frame_doubts(frames, set(self.given))

    def cancel(self, wait: bool = False) -> None:
        self._cancel.set()
        if wait and self._thread is not None:
            self._thread.join()

    # ---- downloads ---------------------------------------------------------------------
    def final_labels(self) -> Iterator[np.ndarray]:
        for index in range(len(self.frames)):
            labels = self.labels(index)
            yield np.zeros(self.size, np.uint8) if labels is None else labels

    def masks_zip(self) -> Path:
        """A zip of every frame's indexed PNG (`lgdk.app.downloads`)."""
        return downloads.masks_zip(self)

    def video(self, kind: str, background: tuple[int, int, int] | None = None) -> Path:
        """The overlay or cut-out download of `kind` (`lgdk.app.downloads.KINDS`)."""
        return downloads.video(self, kind, background)

    def close(self) -> None:
        self.cancel(wait=True)
        self.store.close()
        shutil.rmtree(self.folder, ignore_errors=True)
