"""Frame decoding and mask writing beside the model, in background threads.

JPEG/video decoding and PNG encoding (about 4 and 3 ms a 480p frame here) release
Python's GIL, so a thread can do them while PyTorch computes the next frame.
Errors are raised in the caller's thread, at the point where the item is needed.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

_DONE = object()


def prefetch(items: Iterable, depth: int = 2) -> Iterator:
    """Iterate `items` in a background thread, keeping up to `depth` items ready."""
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry) -> bool:
        while not stop.is_set():
            try:
                ready.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((_DONE, None))
        except BaseException as exc:  # handed to the consumer
            put((_DONE, exc))

    thread = threading.Thread(target=produce, name="lgdk-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item, error = ready.get()
            if error is not None:
                raise error
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()


class BackgroundWriter:
    """Runs write calls in one background thread, in order, at most `pending` queued;
    `finish()` waits for all of them and raises the first error."""

    def __init__(self, pending: int = 4) -> None:
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lgdk-write")
        self.futures: deque[Future] = deque()
        self.pending = pending

    def submit(self, write: Callable, *args) -> None:
        while len(self.futures) >= self.pending:
            self.futures.popleft().result()
        self.futures.append(self.pool.submit(write, *args))

    def finish(self) -> None:
        try:
            while self.futures:
                self.futures.popleft().result()
        finally:
            self.pool.shutdown(wait=True)

    def abort(self) -> None:
        for future in self.futures:
            future.cancel()
        self.pool.shutdown(wait=True)
        self.futures.clear()
