"""The propagation queue of `lgdk app`: at most `slots` propagations run at once, the
others wait in the order they asked; a waiting one knows its place and may leave."""

from __future__ import annotations

import threading
from collections import deque
from contextlib import contextmanager


class Cancelled(Exception):
    """Left the queue before its turn."""


class PropagationQueue:
    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError("a propagation queue needs at least one slot")
        self.slots = slots
        self.running = 0
        self.waiting: deque[object] = deque()
        self.changed = threading.Condition()

    def position(self, ticket: object) -> int:
        """1 for the next to run, 2 after it, ...; 0 when not waiting."""
        with self.changed:
            try:
                return self.waiting.index(ticket) + 1
            except ValueError:
                return 0

    @contextmanager
    def turn(self, ticket: object, cancel: threading.Event):
        """Wait for a free slot in line as `ticket` (raise Cancelled if `cancel` is set
        first); hold the slot inside the block."""
        with self.changed:
            self.waiting.append(ticket)
            try:
                while not (self.waiting[0] is ticket and self.running < self.slots):
                    if cancel.is_set():
                        raise Cancelled
                    self.changed.wait(0.2)
            finally:
                self.waiting.remove(ticket)
                self.changed.notify_all()
            self.running += 1
        try:
            yield
        finally:
            with self.changed:
                self.running -= 1
                self.changed.notify_all()
