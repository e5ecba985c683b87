"""A live `lgdk app` server on a free port, and a session on a generated clip."""

import socket
import threading
import time

import numpy as np
import pytest

from lgdk.config import InferenceConfig
from lgdk.data.procedural import generate_clip
from lgdk.infer.predictor import Predictor

SETTINGS = InferenceConfig(size=0)


def clip(frames=8, seed=3, height=64, width=96):
    return generate_clip(np.random.default_rng(seed), height, width, frames, 2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tight_box(labels: np.ndarray, object_id: int) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(labels == object_id)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


@pytest.fixture
def make_tiny_predictor(tiny_model):
    return lambda: Predictor(tiny_model, SETTINGS)


def serve(app):
    """Run a FastAPI app with uvicorn in a thread; returns (base URL, stop())."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)

    def stop():
        server.should_exit = True
        thread.join(timeout=10)

    return f"http://127.0.0.1:{port}", stop
