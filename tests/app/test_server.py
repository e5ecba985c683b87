"""The HTTP API of `lgdk app` on a live server (tiny model): sessions kept apart, bad
input as a readable JSON error (never a stack trace), upload limits."""

import json
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

from lgdk.app.server import AppSettings, create_app
from tests.app.conftest import serve


@pytest.fixture
def server(make_tiny_predictor):
    url, stop = serve(create_app(make_tiny_predictor, AppSettings(
        max_upload_mb=1, demo_frames=4, prompt_method="grabcut")))
    yield url
    stop()


def call(url, path, body=None, data=None, headers=None, method=None):
    if body is not None:
        data, headers = json.dumps(body).encode(), {"Content-Type": "application/json"}
    request = urllib.request.Request(url + path, data=data, headers=headers or {},
                                     method=method or ("POST" if data is not None else "GET"))
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def upload(url, sid, name, payload):
    boundary = "lgdkboundary"
    data = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename="
            f"\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode() + \
        payload + f"\r\n--{boundary}--\r\n".encode()
    return call(url, f"/api/{sid}/upload", data=data,
                headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})


def test_page_sessions_and_masks_stay_apart(server):
    status, page = call(server, "/")
    assert status == 200 and b"lgdk" in page
    a = json.loads(call(server, "/api/session", data=b"")[1])
    b = json.loads(call(server, "/api/session", data=b"")[1])
    assert a["session"] != b["session"] and a["frames"] == 4
    status, _ = call(server, f"/api/{a['session']}/paint",
                     {"frame": 0, "object": 1, "points": [[100, 100]], "radius": 30})
    assert status == 200
    masks = {}
    for s in (a, b):
        status, png = call(server, f"/api/{s['session']}/mask/0.png")
        assert status == 200
        masks[s["session"]] = np.array(Image.open(__import__("io").BytesIO(png)))
    assert masks[a["session"]][100, 100, 3] > 0 and masks[b["session"]][..., 3].max() == 0
    assert call(server, f"/api/{b['session']}/propagate", data=b"")[0] == 400
    status, _ = call(server, f"/api/{a['session']}/close", data=b"")
    assert status == 200
    status, body = call(server, f"/api/{a['session']}/mask/0.png")
    assert status == 400 and b"reload the page" in body


@pytest.mark.parametrize("name, payload, code, message", [
    ("notes.txt", b"hello", 400, b"give a video"),
    ("clip.mp4", b"not a video at all", 400, b"clip.mp4"),
    ("big.mp4", b"0" * (1 << 20) + b"1", 413, b"over 1 MB"),
])
def test_bad_uploads_are_readable_errors(server, name, payload, code, message):
    sid = json.loads(call(server, "/api/session", data=b"")[1])["session"]
    status, body = upload(server, sid, name, payload)
    assert status == code
    error = json.loads(body)["error"]
    assert message.decode() in error and "Traceback" not in error
    assert call(server, "/")[0] == 200  # still serving
