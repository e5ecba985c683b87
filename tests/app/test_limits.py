"""The app's limits: a cap on live sessions (least recently used idle one closed, busy
past it), the demo clip's frames shared, the propagation queue (its order, its places,
cancel while waiting), the disk budget, and what a killed server left behind."""

import threading
import time

import numpy as np
import pytest

from lgdk.app.limits import AppSettings, DiskBudget, DiskFull, claim_root
from lgdk.app.queue import PropagationQueue
from lgdk.app.registry import AppBusy, Sessions
from lgdk.app.session import Session, SessionError
from lgdk.config import InferenceConfig
from lgdk.errors import UserError
from lgdk.infer.predictor import Predictor
from tests.app.conftest import clip


class Gate:
    """Predictors that wait at their first frame until opened, counting how many run."""

    def __init__(self, model):
        self.model, self.open, self.lock = model, threading.Event(), threading.Lock()
        self.made = self.running = self.most = 0

    def __call__(self):
        gate = self

        class Gated(Predictor):
            def step(self, frame, mask=None):
                if self.frame_index == 0:
                    with gate.lock:
                        gate.running += 1
                        gate.most = max(gate.most, gate.running)
                    gate.open.wait(60)
                try:
                    return super().step(frame, mask)
                finally:
                    if self.frame_index == 1:
                        with gate.lock:
                            gate.running -= 1

        with self.lock:
            self.made += 1
        return Gated(self.model, InferenceConfig(size=0))


def settings(tmp_path, **changes):
    return AppSettings(root=tmp_path, prompt_method="grabcut", **{"demo_frames": 3, **changes})


def until(condition, seconds=60):
    end = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


def start(session):
    session.paint(0, 1, [(30, 30)], radius=10)
    session.propagate()


def test_past_the_cap_the_least_recently_used_session_is_closed(tmp_path, tiny_model):
    sessions = Sessions(Gate(tiny_model), settings(tmp_path, max_sessions=3))
    sids = [sessions.create()[0] for _ in range(3)]
    sessions.get(sids[0])  # used: now the most recent
    folders = {sid: sessions.items[sid].folder for sid in sids}
    new, _ = sessions.create()
    assert list(sessions.items) == [sids[2], sids[0], new]
    assert not folders[sids[1]].exists()
    with pytest.raises(SessionError, match="least recently used of the 3 pages"):
        sessions.get(sids[1])
    sessions.shutdown()
    assert not sessions.root.exists()


def test_many_sessions_share_one_copy_of_the_demo_clip(tmp_path, tiny_model):
    sessions = Sessions(Gate(tiny_model), settings(tmp_path, max_sessions=4, demo_frames=30))
    demo = sum(p.stat().st_size for p in (sessions.root / "demo").rglob("*") if p.is_file())
    for _ in range(40):
        sid, session = sessions.create()
        assert session.frames == sessions.demo and session.frame(2).shape == (360, 640, 3)
    assert len(sessions.items) == 4
    assert sessions.disk.used() < demo + 64 * 1024  # sessions' own folders are near empty
    assert all(p.stat().st_mode & 0o222 == 0 for p in sessions.demo)  # read-only
    sessions.shutdown()


def test_when_every_session_is_propagating_a_new_page_is_told_the_app_is_busy(
        tmp_path, tiny_model):
    gate = Gate(tiny_model)
    sessions = Sessions(gate, settings(tmp_path, max_sessions=2, max_running=2))
    busy = [sessions.create()[1] for _ in range(2)]
    for session in busy:
        start(session)
    with pytest.raises(AppBusy, match="busy"):
        sessions.create()
    gate.open.set()
    until(lambda: not any(s.progress.running for s in busy))
    sessions.create()  # room again: an idle one is closed
    assert len(sessions.items) == 2
    sessions.shutdown()


def test_the_queue_runs_one_at_a_time_in_order_and_a_waiting_one_can_leave(
        tmp_path, tiny_model):
    gate = Gate(tiny_model)
    sessions = Sessions(gate, settings(tmp_path, max_running=1))
    first, second, third = (sessions.create()[1] for _ in range(3))
    for session in (first, second, third):
        start(session)
        time.sleep(0.05)  # in this order
    until(lambda: gate.running == 1)
    assert [s.status()["queued"] for s in (first, second, third)] == [0, 1, 2]
    assert all(s.status()["running"] for s in (first, second, third))
    third.cancel()
    until(lambda: not third.progress.running)
    assert third.progress.cancelled and third.progress.done == 0 and gate.made == 1
    assert second.status()["queued"] == 1
    gate.open.set()
    until(lambda: not (first.progress.running or second.progress.running))
    assert gate.most == 1 and gate.made == 2
    for session in (first, second):
        assert session.progress.done == session.progress.total == 3
        assert session.progress.error is None and not session.progress.cancelled
    start(third)  # what was cancelled in the queue can be asked again
    until(lambda: not third.progress.running)
    assert third.progress.done == 3
    sessions.shutdown()


def test_a_queue_of_two_slots_runs_two(tmp_path):
    queue, cancel = PropagationQueue(2), threading.Event()
    with queue.turn("a", cancel), queue.turn("b", cancel):
        assert queue.running == 2
    assert queue.running == 0
    with pytest.raises(ValueError):
        PropagationQueue(0)


def test_frames_past_the_disk_budget_are_refused_and_none_stay(tmp_path, tiny_model):
    c = clip(frames=40, height=128, width=192)
    disk = DiskBudget(tmp_path, budget_mb=1, margin_mb=0)
    s = Session(tmp_path / "s", Gate(tiny_model), disk=disk)
    noisy = [np.random.default_rng(i).integers(0, 256, f.shape, np.uint8) for i, f in
             enumerate(c.frames)]  # about 60 KB a frame as JPEG: 40 of them pass 1 MB
    with pytest.raises(DiskFull, match="--disk-budget-mb"):
        s.load(iter(noisy), fps=10, announced=40)
    assert s.frames == [] and not list((tmp_path / "s").rglob("*.jpg"))
    s.load(iter(c.frames[:5]), fps=10, announced=5)  # a short one fits
    assert len(s.frames) == 5
    with pytest.raises(DiskFull, match="free"):
        DiskBudget(tmp_path, budget_mb=10, margin_mb=1 << 30).check(1)


def test_a_killed_servers_folder_is_removed_at_the_next_start(tmp_path):
    root, handle = claim_root(tmp_path)
    (root / "s1").mkdir()
    other, other_handle = claim_root(tmp_path)  # a running server's folder is kept
    assert root.exists()
    handle.close()  # as when the process dies: its lock is released
    third, third_handle = claim_root(tmp_path)
    assert not root.exists() and other.exists() and third.exists()
    (tmp_path / "lgdk-app-not-ours").mkdir()  # no lock file: not a server's root, kept
    other_handle.close()
    third_handle.close()
    claim_root(tmp_path)[1].close()
    assert (tmp_path / "lgdk-app-not-ours").exists() and not other.exists()


def test_limits_must_be_positive():
    with pytest.raises(UserError, match="--max-sessions must be positive"):
        AppSettings(max_sessions=0)
    with pytest.raises(UserError, match="--max-running"):
        AppSettings(max_running=-1)


def test_edits_past_the_limits_are_refused_before_any_pixel_changes(tmp_path, tiny_model):
    s = Session(tmp_path / "s", Gate(tiny_model), AppSettings(
        prompt_method="grabcut", max_points=3, max_radius=10, max_clicks=2, max_objects=2))
    s.load(iter(clip().frames), fps=10)
    s.paint(0, 1, [(20, 20)], radius=5)
    before = s.labels(0).copy()
    refusals = [
        (lambda: s.paint(0, 1, [(1, 1)] * 4, 3), "--max-points"),
        (lambda: s.paint(0, 1, [(1, 1)], 11), "--max-radius"),
        (lambda: s.paint(0, 1, [(1, 1)], float("nan")), "--max-radius"),
        (lambda: s.paint(0, 1, [(0, 0), (1e12, 5)], 3), "far off"),
        (lambda: s.paint(0, 255, [(1, 1)], 3), "ids are 1-254"),
        (lambda: s.box(0, 0, (1, 1, 9, 9)), "ids are 1-254"),
        (lambda: s.paint(5, 2, [(60, 40)], 3) or s.paint(0, 3, [(70, 40)], 3),
         "2 objects is this app's limit"),
        (lambda: s.click(0, 1, float("nan"), 5, True), "outside the 96x64 frame"),
    ]
    for edit, message in refusals:
        with pytest.raises(UserError, match=message):
            edit()
        assert (s.labels(0) == before).all()
    s.click(0, 1, 22, 22, True)  # the refused click was not kept
    s.click(0, 1, 80, 50, False)
    with pytest.raises(SessionError, match="--max-clicks"):
        s.click(0, 1, 24, 24, True)


def test_a_brush_stroke_covers_what_lies_within_its_radius(tmp_path, tiny_model):
    s = Session(tmp_path / "s", Gate(tiny_model))
    s.load(iter(clip(height=120, width=160).frames), fps=10)
    points, radius = [(10.5, 20.25), (90, 70), (150, 30)], 7.5
    s.paint(0, 4, points, radius)
    yy, xx = np.mgrid[:120, :160]
    distance = np.full((120, 160), np.inf)
    for (x0, y0), (x1, y1) in zip(points, points[1:]):  # to each segment, exactly
        t = np.clip(((xx - x0) * (x1 - x0) + (yy - y0) * (y1 - y0))
                    / ((x1 - x0) ** 2 + (y1 - y0) ** 2), 0, 1)
        distance = np.minimum(distance, np.hypot(xx - x0 - t * (x1 - x0),
                                                 yy - y0 - t * (y1 - y0)))
    painted = s.labels(0) == 4
    assert painted[distance <= radius - 1].all() and not painted[distance > radius + 1].any()
